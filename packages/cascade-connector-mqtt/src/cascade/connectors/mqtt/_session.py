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

from ._client import Link
from ._outbound import Ack, Outbound
from ._settings import MqttSettings
from ._subscriptions import MalformedFilter, Registry

Inbound = tuple[str, bytes | bytearray, bool, Sequence[int], int, "Link"]
"""(topic, payload, retain flag, subscription identifiers, mid, link) of one inbound PUBLISH: `mid`
0 for QoS 0, else the QoS 1 message id to acknowledge on `link` once the callbacks ran."""


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
        self.registry = Registry(settings.sync_topic, self.outbound, log)
        self.delivery = Delivery(stats, log)
        self.malformed = MalformedFilter()
        self.inbound: InboundQueue[Inbound] = InboundQueue(
            settings.max_inbound, stats, log, f"connector {settings.source}"
        )
        self.connected_at = 0.0  # loop time of the current connection's CONNACK
        self.presence_ts = ""  # the time of the connection being made (its online and its will)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
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

    def _marker_refused(self, reason: int) -> None:
        self.registry.unavailable(
            f"publishing to {self.registry.sync_topic!r} was refused: {self._reason_text(reason)}"
        )

    def close(self) -> None:
        """No callback runs from now on (`Ending.CLOSED`); the supervisor is woken to exit."""
        self.ending = Ending.CLOSED
        self.delivery.close()
        self.wake.set()
