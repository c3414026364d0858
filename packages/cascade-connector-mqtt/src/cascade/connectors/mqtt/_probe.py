"""The retained probe: does this broker replay retained messages to wildcard subscriptions, before the
sync marker behind the SUBSCRIBE?

`subscribe()` returns once the sync marker behind its SUBSCRIBE is back (docs/contract.md, promise 5),
which only means "the retained state arrived" if the broker replays retained messages to the filter
and sends them before the marker. Two brokers of the matrix cannot (docs/brokers.md): RabbitMQ 3.10
never replays retained messages to a wildcard filter, aedes 1.2 lets the marker overtake the replay.
Absence cannot be seen without a probe, so the first wildcard subscription of a connector on an
MQTT 3.1.1 connection (every MQTT 5 broker of the matrix replays them in order) starts one, in the
background (it never delays `subscribe()`): a retained message on the connector's private topic
``cascade/_sync/{client}/retained-probe``, acknowledged, then a SUBSCRIBE of ``cascade/_sync/{client}/+``
and a sync marker behind it. Before the marker: fine. After it: markers overtake replays (one
WARNING). Not within `PROBE_GRACE` s after it: no retained messages for wildcards (one WARNING).
Then the probe is unsubscribed and its retained message cleared. The probe never reaches callbacks
or the user-visible stats (the connector drops its private namespace before routing).
"""

from __future__ import annotations

__all__ = ["PROBE_GRACE", "ProbeOutcome", "RetainedProbe"]

import asyncio
import enum
import logging
from typing import Any, Final

from cascade.connectors.protocol.core import Outgoing

from ._client import SUBSCRIBE_LOST, Link, MqttVersion
from ._outbound import Ack, AckKind
from ._session import Session
from ._subscriptions import SyncState

PROBE_GRACE: Final = 1.0  # s the probe may still arrive after its sync marker
_PAYLOAD: Final = b"1"
_WAIT: Final = 10.0  # s at most for each broker answer (PUBACK, SUBACK, marker)


class ProbeOutcome(enum.Enum):
    """What the retained probe found."""

    REPLAYED = "replayed"  # retained messages reach wildcard subscriptions before the marker
    LATE = "late"  # they arrive after the marker: subscribe() may return before them
    NOT_REPLAYED = "not replayed"  # they never arrive on wildcard subscriptions
    UNKNOWN = "unknown"  # no answer from the broker, or the probe was refused: nothing concluded


class RetainedProbe:
    """One probe per connector (see the module doc); `outcome` is None until it concluded."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self.outcome: ProbeOutcome | None = None
        self.topic: str | None = None  # while a probe runs: its retained message's topic
        self._marker: asyncio.Future[None] | None = None
        self._arrival: asyncio.Future[bool] | None = None  # True: before the marker
        self._subscribed = False  # the probe filter is subscribed at the broker

    def wanted(self, session: Session, link: Link, topic_filter: str) -> bool:
        """Whether subscribing `topic_filter` on `link` should start the probe now."""
        return (
            self.outcome is None
            and self.topic is None
            and ("+" in topic_filter or "#" in topic_filter)
            and link.protocol is MqttVersion.V311
            and session.registry.fallback is not None
            and session.registry.sync is SyncState.AVAILABLE
        )

    def start(self, session: Session, link: Link) -> None:
        """Run the probe in the background on `link` (the task is the session's: ended with it)."""
        base = session.registry.fallback
        assert base is not None
        self.topic = f"{base}/retained-probe"
        session.probe_task = asyncio.get_running_loop().create_task(
            self._run(session, link, base), name="cascade-mqtt-retained-probe"
        )

    def seen(self, topic: str, payload: bytes | bytearray, retain: bool) -> None:
        """An inbound message on the connector's private namespace (in dispatch order)."""
        arrival = self._arrival
        if topic != self.topic or arrival is None or arrival.done() or not retain or not payload:
            return
        marker = self._marker
        arrival.set_result(marker is None or not marker.done())

    def abandon(self, session: Session) -> None:
        """The session is ending: clear the retained probe now, while the connection still sends."""
        if self.topic is not None and session.probe_task is not None and not session.probe_task.done():
            session.outbound.send_control(Outgoing(self.topic, b"", True, Ack(None, AckKind.PROBE)))

    async def _run(self, session: Session, link: Link, base: str) -> None:
        topic = self.topic
        assert topic is not None
        probe_filter = f"{base}/+"
        try:
            outcome = await self._probe(session, link, topic, probe_filter)
        finally:
            self._marker = self._arrival = None
            self.topic = None
            if not link.lost and session.link is link:
                if self._subscribed:
                    link.unsubscribe(probe_filter).add_done_callback(_ignore)
                session.outbound.send_control(Outgoing(topic, b"", True, Ack(None, AckKind.PROBE)))
            self._subscribed = False
        if outcome is None:
            return  # the connection was lost: the next wildcard subscription probes again
        self.outcome = outcome
        if outcome is ProbeOutcome.NOT_REPLAYED:
            self._log.warning(
                "this broker sends no retained messages to wildcard subscriptions (RabbitMQ 3.10 does "
                "not): subscribe() with a wildcard filter returns without the retained state, which "
                "never arrives; subscribe to the exact topics whose retained state you need "
                "(docs/brokers.md)"
            )
        elif outcome is ProbeOutcome.LATE:
            self._log.warning(
                "this broker delivers retained messages after the sync marker behind their SUBSCRIBE "
                "(aedes does): subscribe() may return before the retained state arrived (it arrives "
                "later); wait for the state you need (docs/brokers.md)"
            )
        else:
            self._log.debug("retained probe: %s", outcome.value)

    async def _probe(
        self, session: Session, link: Link, topic: str, probe_filter: str
    ) -> ProbeOutcome | None:
        """The probe's outcome; None if `link` was lost first (nothing learnt)."""
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()
        session.outbound.send_control(Outgoing(topic, _PAYLOAD, True, Ack(stored, AckKind.PROBE)))
        if not await _answered(link, stored):
            return None if _gone(link) else ProbeOutcome.UNKNOWN
        arrival: asyncio.Future[bool] = loop.create_future()
        self._arrival = arrival
        suback = link.subscribe(probe_filter, 1, None)
        self._subscribed = True
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
        if not arrival.done():
            await asyncio.wait({arrival}, timeout=PROBE_GRACE)
        if _gone(link):
            return None
        if not arrival.done():
            return ProbeOutcome.NOT_REPLAYED
        return ProbeOutcome.REPLAYED if arrival.result() else ProbeOutcome.LATE


async def _answered(link: Link, fut: asyncio.Future[Any]) -> bool:
    """Wait for `fut` at most `_WAIT` s (without cancelling it); whether it is done on a live `link`."""
    await asyncio.wait({fut}, timeout=_WAIT)
    return fut.done() and not _gone(link)


def _gone(link: Link) -> bool:
    return link.lost


def _ignore(fut: asyncio.Future[int]) -> None:
    fut.result()
