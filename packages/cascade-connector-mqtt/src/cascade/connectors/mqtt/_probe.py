"""The retained probe: does this broker replay retained messages to wildcard subscriptions, and before
the sync marker behind the SUBSCRIBE?

`subscribe()` returns once the sync marker behind its SUBSCRIBE is back (docs/contract.md, promise 5),
which only means "the retained state arrived" if the broker replays retained messages to the filter
and sends them before the marker. Two brokers of the matrix cannot (docs/brokers.md): RabbitMQ 3.10
never replays retained messages to a wildcard filter, aedes 1.2 lets the marker overtake all but the
first retained message of a replay. Absence cannot be seen without a probe, so the first wildcard
subscription of a connector on an MQTT 3.1.1 connection (every MQTT 5 broker of the matrix replays
them in order) starts one, in the background (it never delays `subscribe()`): `PROBES` retained
messages on the connector's private topics ``cascade/_sync/{client}/retained-probe-{i}``, acknowledged,
then a SUBSCRIBE of ``cascade/_sync/{client}/+`` and a sync marker behind it. All before the marker:
fine. Some after it: markers overtake replays (one WARNING). None within `PROBE_GRACE` s after it:
no retained messages for wildcards (one WARNING). Then the probe filter is unsubscribed and the
retained messages cleared. The probe never reaches callbacks or the user-visible stats (the connector
drops its private namespace before routing).
"""

from __future__ import annotations

__all__ = ["PROBES", "PROBE_GRACE", "ProbeOutcome", "RetainedProbe"]

import asyncio
import enum
import logging
from typing import Any, Final

from cascade.connectors.protocol.core import Outgoing

from ._client import SUBSCRIBE_LOST, Link, MqttVersion
from ._covering import covers
from ._outbound import Ack, AckKind
from ._session import Session
from ._subscriptions import SyncState

PROBES: Final = 3  # retained probe messages (aedes delivers the first before the marker, the rest after)
PROBE_GRACE: Final = 1.0  # s the probe messages may still arrive after their sync marker
_PAYLOAD: Final = b"1"
_WAIT: Final = 10.0  # s at most for each broker answer (PUBACKs, SUBACK, marker)


class ProbeOutcome(enum.Enum):
    """What the retained probe found."""

    REPLAYED = "replayed"  # retained messages reach wildcard subscriptions before the marker
    LATE = "late"  # some arrive after the marker: subscribe() may return before them
    NOT_REPLAYED = "not replayed"  # they never arrive on wildcard subscriptions
    UNKNOWN = "unknown"  # no answer from the broker, refused, or partly replayed: nothing concluded


class RetainedProbe:
    """One probe per connector (see the module doc); `outcome` is None until it concluded."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.outcome: ProbeOutcome | None = None
        self.topics: tuple[str, ...] = ()  # while a probe runs: its retained messages' topics
        self._marker: asyncio.Future[None] | None = None
        self._listening = False  # the probe filter's SUBSCRIBE is sent: arrivals count
        self._arrived: dict[str, bool] = {}  # topic -> whether it arrived before the marker
        self._all: asyncio.Future[None] | None = None  # resolved once every probe message arrived
        self._live_copies = False  # a broker filter of the connector covers the probe topics

    def wanted(self, session: Session, link: Link, topic_filter: str) -> bool:
        """Whether subscribing `topic_filter` on `link` should start the probe now."""
        return (
            self.outcome is None
            and not self.topics
            and ("+" in topic_filter or "#" in topic_filter)
            and link.protocol is MqttVersion.V311
            and session.registry.fallback is not None
            and session.registry.sync is SyncState.AVAILABLE
        )

    def start(self, session: Session, link: Link) -> None:
        """Run the probe in the background on `link` (the task is the session's: ended with it)."""
        base = session.registry.fallback
        assert base is not None
        self.topics = tuple(f"{base}/retained-probe-{i}" for i in range(PROBES))
        session.probe_task = asyncio.get_running_loop().create_task(
            self._run(session, link, f"{base}/+"), name="cascade-mqtt-retained-probe"
        )

    def seen(self, topic: str, payload: bytes | bytearray, retain: bool) -> None:
        """An inbound message on the connector's private namespace (called in dispatch order)."""
        # A probe message arriving unflagged is still the replay (amqtt 0.12 replays with RETAIN 0),
        # unless one of the connector's own filters covers the probe topics: then it may be the live
        # copy of the probe's publish, and only a message flagged retained counts.
        if not self._listening or not payload or topic in self._arrived:
            return
        if not retain and self._live_copies:
            return
        if topic not in self.topics:
            return
        marker = self._marker
        self._arrived[topic] = marker is None or not marker.done()
        every = self._all
        if len(self._arrived) == len(self.topics) and every is not None and not every.done():
            every.set_result(None)

    def abandon(self, session: Session) -> None:
        """The session is ending: clear the retained probe now, while the connection still sends."""
        task = session.probe_task
        if task is not None and not task.done():
            self._clear(session)

    def _clear(self, session: Session) -> list[asyncio.Future[None]]:
        """Queue a zero-byte retained publish on every probe topic; their PUBACK futures."""
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[None]] = []
        for topic in self.topics:
            ack: asyncio.Future[None] = loop.create_future()
            session.outbound.send_control(Outgoing(topic, b"", True, Ack(ack, AckKind.PROBE)))
            acks.append(ack)
        return acks

    async def _run(self, session: Session, link: Link, probe_filter: str) -> None:
        cleared = False
        try:
            outcome = await self._probe(session, link, probe_filter)
            if not _gone(link):  # clear before concluding: a finished probe leaves nothing behind
                self._listening = False
                link.unsubscribe(probe_filter).add_done_callback(_ignore)
                acks = self._clear(session)
                cleared = True
                await asyncio.wait(acks, timeout=_WAIT)
        finally:
            if not cleared and not _gone(link) and session.link is link:
                if self._listening:
                    link.unsubscribe(probe_filter).add_done_callback(_ignore)
                self._clear(session)
            self._marker = self._all = None
            self._listening = False
            self._arrived = {}
            self.topics = ()
        if outcome is None:
            return  # the connection was lost: the next wildcard subscription probes again
        self.outcome = outcome
        if outcome is ProbeOutcome.NOT_REPLAYED:
            self._log.warning(
                "this broker sends no retained messages to wildcard subscriptions (RabbitMQ 3.10 does "
                "not): subscribe() with a wildcard filter returns without the retained state, which "
                "never arrives; subscribe to the exact topics whose retained state you need, with no "
                "wildcard filter of this connector covering them (docs/brokers.md)"
            )
        elif outcome is ProbeOutcome.LATE:
            self._log.warning(
                "this broker delivers retained messages after the sync marker behind their SUBSCRIBE "
                "(aedes does): subscribe() may return before the retained state arrived (it arrives "
                "later); wait for the state you need (docs/brokers.md)"
            )
        else:
            self._log.debug("retained probe: %s", outcome.value)

    async def _probe(self, session: Session, link: Link, probe_filter: str) -> ProbeOutcome | None:
        """The probe's outcome; None if `link` was lost first (nothing learnt)."""
        loop = asyncio.get_running_loop()
        stored: list[asyncio.Future[None]] = []
        for topic in self.topics:
            ack: asyncio.Future[None] = loop.create_future()
            session.outbound.send_control(Outgoing(topic, _PAYLOAD, True, Ack(ack, AckKind.PROBE)))
            stored.append(ack)
        await asyncio.wait(stored, timeout=_WAIT)
        if _gone(link) or not all(ack.done() for ack in stored):
            return None if _gone(link) else ProbeOutcome.UNKNOWN
        self._all = every = loop.create_future()
        self._live_copies = any(covers(f, self.topics[0]) for f in session.registry.by_filter)
        self._listening = True
        suback = link.subscribe(probe_filter, 1, None)
        self._marker = marker = session.registry.marker_waiter()
        if marker is None:
            return ProbeOutcome.UNKNOWN  # no sync markers on this connection
        if not await _answered(link, suback):
            return None if _gone(link) else ProbeOutcome.UNKNOWN
        code = suback.result()
        if code == SUBSCRIBE_LOST or code >= 0x80:
            return None if _gone(link) else ProbeOutcome.UNKNOWN
        if not await _answered(link, marker):
            return None if _gone(link) else ProbeOutcome.UNKNOWN
        if not every.done():
            await asyncio.wait({every}, timeout=PROBE_GRACE)
        if _gone(link):
            return None
        arrived = self._arrived
        if not arrived:
            return ProbeOutcome.NOT_REPLAYED
        if not all(arrived.values()):
            return ProbeOutcome.LATE
        return ProbeOutcome.REPLAYED if len(arrived) == len(self.topics) else ProbeOutcome.UNKNOWN


async def _answered(link: Link, fut: asyncio.Future[Any]) -> bool:
    """Wait for `fut` at most `_WAIT` s (without cancelling it); whether it is done on a live `link`."""
    await asyncio.wait({fut}, timeout=_WAIT)
    return fut.done() and not _gone(link)


def _gone(link: Link) -> bool:
    return link.lost


def _ignore(fut: asyncio.Future[int]) -> None:
    fut.result()
