"""One session of an `MqttConnector`: everything that lives from ``connect()`` to ``disconnect()``.

A fresh `Session` per ``connect()`` replaces resetting dozens of attributes: the outbound pipeline,
the broker subscriptions, the inbound queue, the supervisor task and the current connection, plus
two explicit states: how far the session is from its end (`Ending`) and what the supervisor is doing
(`Phase`).
"""

from __future__ import annotations

__all__ = ["Ending", "Inbound", "Phase", "Session"]

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence

from cascade.connectors.protocol import ConnectorStats
from cascade.connectors.protocol.core import Delivery, InboundQueue, OutboundBuffer

from ._client import SUBSCRIBE_LOST, Link, MqttVersion
from ._outbound import Ack, Outbound
from ._settings import MqttSettings
from ._subscriptions import SYNC_SID, MalformedFilter, Registry

Inbound = tuple[str, bytes | bytearray, bool, Sequence[int], int, "Link"]
"""(topic, payload, retain flag, subscription identifiers, mid, link) of one inbound PUBLISH: `mid`
0 for QoS 0, else the QoS 1 message id to acknowledge on `link` once the callbacks ran."""


def _is_qos1(entry: Inbound) -> bool:
    """QoS 1 entries are never dropped from the inbound queue (the broker holds what we do not read)."""
    return entry[4] != 0


class Ending(enum.Enum):
    """How close the session is to its end."""

    OPEN = "open"  # serving; a lost connection is re-made
    STOPPING = "stopping"  # disconnect() closes the connection: the supervisor exits when it ends
    CLOSED = "closed"  # no callback runs any more; inbound messages are dropped


class Phase(enum.Enum):
    """What the supervisor task is doing."""

    SERVING = "serving"  # dispatching inbound messages of the current connection
    RECONNECTING = "reconnecting"  # backing off or opening a new connection


class Session:
    """The per-``connect()`` state of a connector (see the module doc)."""

    def __init__(
        self,
        settings: MqttSettings,
        stats: ConnectorStats,
        log: logging.Logger,
        reason_text: Callable[[int], str],
    ) -> None:
        buffer: OutboundBuffer[Ack] = OutboundBuffer(
            settings.max_buffered, stats, log, f"connector {settings.source}"
        )
        self._reason_text = reason_text
        self.outbound = Outbound(buffer, settings.sync_topic, log, self._marker_refused, reason_text)
        self.registry = Registry(settings.sync_topic, self.outbound, log, settings.sync_fallback)
        self._log = log
        self.delivery = Delivery(stats, log)
        self.malformed = MalformedFilter()
        self.inbound: InboundQueue[Inbound] = InboundQueue(
            settings.max_inbound, stats, log, f"connector {settings.source}", is_kept=_is_qos1
        )
        self.connected_at = 0.0  # loop time of the current connection's CONNACK
        self.presence_ts = ""  # the time of the connection being made (its online and its will)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.probe_task: asyncio.Task[None] | None = None  # the retained probe (_probe.py), if running
        self.link: Link | None = None
        self.ending = Ending.OPEN
        self.phase = Phase.SERVING

    @property
    def online(self) -> bool:
        """Whether a connection is up right now."""
        link = self.link
        return link is not None and not link.lost

    def stopping(self) -> bool:
        """Whether the session is ending (no reconnect: `Ending.STOPPING` or `Ending.CLOSED`)."""
        return self.ending is not Ending.OPEN

    def _marker_refused(self, reason: int, topic: str) -> None:
        if topic == self.registry.sync_topic:
            self.sync_refused(f"publishing to {topic!r} was refused: {self._reason_text(reason)}")

    def sync_refused(self, why: str) -> None:
        """The broker refused the sync topic (SUBSCRIBE or a marker): move the markers to the fallback
        topic under the connector's namespace if there is one (subscribe to it, send the awaited markers
        again), else `subscribe()` can no longer wait for retained state on this connection.
        """
        registry = self.registry
        link = self.link
        if not registry.can_fall_back() or link is None or link.lost:
            registry.unavailable(why)
            return
        self._log.warning("%s; sync markers go to %r from now on", why, registry.fallback)
        self.use_fallback(link)
        registry.resend()

    def use_fallback(self, link: Link) -> None:
        """Markers to the fallback topic on `link` (subscribed here; a refusal ends the waits)."""
        registry = self.registry
        registry.use_fallback()
        topic = registry.sync_topic
        fut = link.subscribe(topic, 1, SYNC_SID)
        fut.add_done_callback(lambda f: self._sync_subscribed(topic, f))

    def _sync_subscribed(self, topic: str, fut: asyncio.Future[int]) -> None:
        code = fut.result()
        if code != SUBSCRIBE_LOST and code >= 0x80 and topic == self.registry.sync_topic:
            self.sync_refused(f"subscribing to {topic!r} was refused: {self._reason_text(code)}")

    def subscribe_sync(self, link: Link) -> None:
        """A new connection: subscribe to the sync topic (on MQTT 3.1.1 straight to the fallback: a
        refused `$` marker cannot be told from a lost one there).
        """
        registry = self.registry
        if link.protocol is MqttVersion.V311 and registry.can_fall_back():
            self.use_fallback(link)
            return
        topic = registry.sync_topic
        fut = link.subscribe(topic, 1, SYNC_SID)
        fut.add_done_callback(lambda f: self._sync_subscribed(topic, f))

    def close(self) -> None:
        """No callback runs from now on (`Ending.CLOSED`); the supervisor is woken to exit."""
        self.ending = Ending.CLOSED
        self.delivery.close()
        if self.probe_task is not None:
            self.probe_task.cancel()
        self.wake.set()
