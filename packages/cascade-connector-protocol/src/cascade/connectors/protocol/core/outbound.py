"""The outbound buffer: messages accepted by ``publish`` and not yet handed to the backend.

The policy every connector keeps (docs/contract.md, promises 11 and 12): ``max_buffered`` bounds every
accepted message not yet handed over; when the buffer is full the OLDEST QoS 0 message is dropped and
counted in ``stats.dropped``; QoS 1 is never dropped (it may exceed the bound); one WARNING per
overflow episode (an episode ends at `new_episode`, which connectors call on each new connection).
"""

from __future__ import annotations

__all__ = ["OutboundBuffer", "Outgoing", "unsent_at_disconnect"]

import logging
from collections import deque
from collections.abc import Iterable
from typing import Generic, NamedTuple, TypeVar

from ..connector import ConnectorStats
from ..errors import NotConnectedError
from .settings import check_int

A = TypeVar("A")


class Outgoing(NamedTuple, Generic[A]):
    """One accepted message: `ack` is None for QoS 0, else the connector's completion object.

    The field order (topic, data, retain, ack) lets a transport unpack it as a plain 4-tuple.
    """

    topic: str
    data: bytes
    retain: bool
    ack: A | None

    @property
    def qos(self) -> int:
        """0 or 1."""
        return 0 if self.ack is None else 1


def unsent_at_disconnect() -> NotConnectedError:
    """The error a ``qos=1`` publish still waiting at `disconnect()` raises, in every connector."""
    return NotConnectedError("publish", "disconnect() ran before the backend acknowledged this qos=1 publish")


class OutboundBuffer(Generic[A]):
    """A FIFO of `Outgoing` entries with the overflow policy and exact counters.

    The hot path (QoS 0 publish) is inlined by connectors::

        if len(buf.queue) >= buf.max_buffered and not buf.make_room():
            ...  # only QoS 1 is queued: count the new message as dropped
        buf.queue.append(entry)

    `queue` is the deque itself (read it, append QoS 0 entries to it); QoS 1 entries go through
    `append_qos1` so `qos1_queued` stays exact. Counts ``dropped`` in the shared `stats`.
    """

    __slots__ = ("_log", "_name", "_warned", "max_buffered", "qos1_queued", "queue", "stats")

    def __init__(
        self, max_buffered: int, stats: ConnectorStats, logger: logging.Logger, name: str = "connector"
    ) -> None:
        self.max_buffered = check_int("max_buffered", max_buffered, 1)
        self.stats = stats
        self.queue: deque[Outgoing[A]] = deque()
        self.qos1_queued = 0
        self._log = logger
        self._name = name
        self._warned = False

    def __len__(self) -> int:
        return len(self.queue)

    def __bool__(self) -> bool:
        return bool(self.queue)

    def append_qos0(self, entry: Outgoing[A]) -> bool:
        """Queue a QoS 0 entry, making room if full; False (and counted dropped) if only QoS 1 is queued."""
        if len(self.queue) >= self.max_buffered and not self.make_room():
            self.stats.dropped += 1
            return False
        self.queue.append(entry)
        return True

    def append_qos1(self, entry: Outgoing[A]) -> None:
        """Queue a QoS 1 entry (never dropped: if full, the oldest QoS 0 entry makes room, if any)."""
        if len(self.queue) >= self.max_buffered:
            self.make_room()
        self.queue.append(entry)
        self.qos1_queued += 1

    def make_room(self) -> bool:
        """Drop the oldest queued QoS 0 entry (counted, logged once per episode); False if none is queued."""
        queue = self.queue
        if not self.qos1_queued or queue[0].ack is None:
            if not queue:
                return False
            queue.popleft()
        else:
            for i, entry in enumerate(queue):
                if entry.ack is None:
                    del queue[i]
                    break
            else:
                return False
        self.stats.dropped += 1
        if not self._warned:
            self._warned = True
            self._log.warning(
                "%s: outbound buffer full (max_buffered=%d): dropping the oldest QoS 0 messages",
                self._name,
                self.max_buffered,
            )
        return True

    def popleft(self) -> Outgoing[A]:
        """Take the oldest entry (to hand it to the backend). Raises `IndexError` if empty."""
        entry = self.queue.popleft()
        if entry.ack is not None:
            self.qos1_queued -= 1
        return entry

    def push_front(self, entries: Iterable[Outgoing[A]]) -> None:
        """Put entries back at the front, in the given order (e.g. not confirmed before a loss).

        The bound holds for them too: beyond `max_buffered`, the oldest QoS 0 entries are dropped
        (counted, logged once per episode), exactly as if they had never left the buffer.
        """
        items = list(entries)
        self.queue.extendleft(reversed(items))
        self.qos1_queued += sum(1 for entry in items if entry.ack is not None)
        while len(self.queue) > self.max_buffered and self.make_room():
            pass

    def take_all(self) -> list[Outgoing[A]]:
        """Remove and return every entry (for the accounting at disconnect)."""
        items = list(self.queue)
        self.queue.clear()
        self.qos1_queued = 0
        return items

    def new_episode(self) -> None:
        """A new connection: the next overflow logs its WARNING again."""
        self._warned = False

    def __repr__(self) -> str:
        return f"OutboundBuffer({len(self.queue)}/{self.max_buffered}, qos1={self.qos1_queued})"
