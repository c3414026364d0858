"""The types of the outbound pipeline: what a QoS 1 message waits for (`Ack`), the send side of a
connection (`Wire`) and the record of a QoS 0 batch not yet confirmed (`Unconfirmed`).
"""

from __future__ import annotations

__all__ = ["Ack", "AckKind", "Entry", "Unconfirmed", "Wire", "Written"]

import asyncio
import enum
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from cascade.connectors.protocol.core import Outgoing


class AckKind(enum.Enum):
    """What a QoS 1 message is for."""

    USER = "user"  # a caller's publish(qos=1)
    PRESENCE = "presence"  # online / offline status
    MARKER = "marker"  # a sync marker (end of a retained replay)
    CONFIRM = "confirm"  # proves earlier QoS 0 batches arrived
    PROBE = "probe"  # the retained probe (_probe.py) and its clearing


class Ack:
    """The completion of one QoS 1 message."""

    __slots__ = ("expiry", "future", "kind", "reason", "sent", "seq")

    def __init__(self, future: asyncio.Future[None] | None, kind: AckKind, seq: int = 0) -> None:
        self.future = future
        self.kind = kind
        self.seq = seq  # the sync marker's number
        self.sent = 0  # position in the connection's send order
        self.reason = 0  # the PUBACK reason code
        self.expiry: int | None = None  # MQTT 5 message expiry, seconds (presence offline)


Entry = Outgoing[Ack]


class Written(Protocol):
    """A handed-over QoS 0 batch: whether it is written to the socket yet."""

    def is_published(self) -> bool:
        """True once written."""
        ...


class Wire(Protocol):
    """The send side of one connection (the transport's `Link`)."""

    @property
    def lost(self) -> bool:
        """Whether the connection is gone."""
        ...

    def send_qos0(self, batch: Sequence[tuple[str, bytes, bool, object]]) -> Written | None:
        """Queue a batch as one write; None if the connection is gone."""
        ...

    def publish_qos1(self, topic: str, payload: bytes, retain: bool, expiry: int | None = None) -> int | None:
        """Hand over one QoS 1 message (`expiry`: seconds, MQTT 5 message expiry); its message id,
        or None if the connection is gone.
        """
        ...

    def write_now(self) -> None:
        """Write what is queued now, as far as the socket takes it."""
        ...


class Unconfirmed(NamedTuple):
    """A QoS 0 batch handed to the wire and not yet confirmed by a later PUBACK."""

    sent: int  # send position of the batch
    batch: list[Entry]
    size: int  # bytes of topics and payloads
    written: Written  # whether the batch left for the socket
