"""The inbound queue: messages received and not yet handed to callbacks (docs/contract.md, promise 13).

``max_inbound`` bounds it. A *droppable* entry (QoS 0) beyond the bound makes room by dropping the
OLDEST droppable entry, counted in ``stats.dropped_inbound``, with one WARNING per episode (an
episode ends when the queue is empty again). Other entries (QoS 1, retained replays, control
entries) are never dropped here: the connector applies backpressure for them (the broker holds QoS 1
messages it has not been allowed to send), so the queue exceeds the bound only by what was already on
its way.
"""

from __future__ import annotations

__all__ = ["InboundQueue"]

import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ..connector import ConnectorStats
from .settings import check_int

E = TypeVar("E")


class InboundQueue(Generic[E]):
    """A FIFO of received entries with the ``max_inbound`` policy and exact counters.

    `is_kept` says whether an entry must never be dropped (QoS 1, replays, control entries): what
    `append_kept` queues must satisfy it, what `append` queues must not. `kept` counts the queued
    kept entries (a number, not a record per entry: a backlog costs nothing here per message).

    Dispatchers take entries with `popleft`. A hot path may inline it: pop from `queue` itself and
    ``kept -= 1`` when `kept` is not 0 and the entry is kept, then call `episode_over` when the
    queue is empty. Likewise a droppable entry may be appended to `queue` directly while
    ``len(queue) < max_inbound``.
    """

    __slots__ = ("_log", "_name", "_warned", "is_kept", "kept", "max_inbound", "queue", "stats")

    def __init__(
        self,
        max_inbound: int,
        stats: ConnectorStats,
        logger: logging.Logger,
        name: str = "connector",
        *,
        is_kept: Callable[[E], bool],
    ) -> None:
        self.max_inbound = check_int("max_inbound", max_inbound, 1)
        self.stats = stats
        self.queue: deque[E] = deque()
        self.is_kept = is_kept
        self.kept = 0  # queued entries that must not be dropped
        self._log = logger
        self._name = name
        self._warned = False

    def __len__(self) -> int:
        return len(self.queue)

    @property
    def full(self) -> bool:
        """Whether the queue holds `max_inbound` entries or more (time for backpressure)."""
        return len(self.queue) >= self.max_inbound

    def append(self, entry: E) -> None:
        """Queue a droppable (QoS 0) entry; beyond the bound the oldest droppable one is dropped."""
        queue = self.queue
        if len(queue) >= self.max_inbound:
            self._make_room(entry)
            return
        queue.append(entry)

    def append_kept(self, entry: E) -> None:
        """Queue an entry that is never dropped (QoS 1, replay, control); it makes room if full."""
        if len(self.queue) >= self.max_inbound and self.kept < len(self.queue):
            self._make_room(None)
        self.queue.append(entry)
        self.kept += 1

    def _make_room(self, new: E | None) -> None:
        queue = self.queue
        if not self.kept:
            queue.popleft()
        else:
            is_kept = self.is_kept
            for i, old in enumerate(queue):
                if not is_kept(old):
                    del queue[i]
                    break
            else:
                new = None  # nothing droppable is queued: the new droppable entry is the one dropped
                self._count_drop()
                return
        self._count_drop()
        if new is not None:
            queue.append(new)

    def _count_drop(self) -> None:
        self.stats.dropped_inbound += 1
        if not self._warned:
            self._warned = True
            self._log.warning(
                "%s: inbound backlog full (max_inbound=%d; callbacks are slower than the messages "
                "arrive): dropping the oldest QoS 0 messages",
                self._name,
                self.max_inbound,
            )

    def popleft(self) -> E:
        """Take the oldest entry. Raises `IndexError` if empty."""
        entry = self.queue.popleft()
        if self.kept and self.is_kept(entry):
            self.kept -= 1
        if not self.queue:
            self._warned = False  # the episode is over
        return entry

    def episode_over(self) -> None:
        """The queue is empty again (for dispatchers that pop from `queue` directly)."""
        self._warned = False

    def discard_all(self, counts: Callable[[E], bool] | None = None) -> int:
        """Remove every entry (the session ends); those `counts` accepts (default: all) are counted in
        ``stats.dropped_inbound``. Returns how many were counted.
        """
        items = list(self.queue)
        self.queue.clear()
        self.kept = 0
        self._warned = False
        counted = len(items) if counts is None else sum(1 for item in items if counts(item))
        self.stats.dropped_inbound += counted
        return counted

    def __repr__(self) -> str:
        return f"InboundQueue({len(self.queue)}/{self.max_inbound}, kept={self.kept})"
