"""The inbound side of one `InMemoryConnector`: its subscriptions and the one dispatcher task.

The broker hands ``(topic, raw, target)`` entries to `Inbox.offer`; the dispatcher runs the callbacks
in arrival order through the session's `Delivery` (the shared core), one message at a time.
``max_inbound`` bounds the queue with the core's `InboundQueue` (promise 13): QoS 0 beyond it drops
the oldest; QoS 1 beyond it waits in `held` with everything that arrives after it, which plays the
broker holding what the client does not read (the dispatcher takes them, in order, as it makes room).
"""

from __future__ import annotations

__all__ = ["Inbox"]

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from cascade.connectors.protocol import Callback, NotConnectedError, SubscriptionIndex
from cascade.connectors.protocol.core import InboundQueue

from ._subscription import InMemorySubscription

if TYPE_CHECKING:
    from ._connector import InMemoryConnector

_log = logging.getLogger("cascade.connectors.testing")
_CACHE_LIMIT: Final = 4096  # entries in the per-topic match cache before it is reset

# Inbound queue entries, unpacked as (topic, raw, target):
#   target None                 -> a live QoS 0 message, matched against the connector's subscriptions
#   target QOS1                 -> a live QoS 1 message, likewise (never dropped)
#   target InMemorySubscription -> a retained replay for that subscription only
#   topic None                  -> a control entry: target is a zero-argument callable run in order
# Every entry whose target is not None is kept (never dropped by the max_inbound policy).
Inbound = tuple[Any, Any, Any]
QOS1: Final = object()


def _is_kept(entry: Inbound) -> bool:
    return entry[2] is not None


def _resolve(future: asyncio.Future[None]) -> Callable[[], None]:
    def run() -> None:
        if not future.done():
            future.set_result(None)

    return run


class Inbox:
    """Subscriptions, the inbound queue and the dispatcher of one connector (sessions come and go)."""

    def __init__(self, owner: InMemoryConnector, max_inbound: int) -> None:
        self._owner = owner
        self.max_inbound = max_inbound
        self.inbound: InboundQueue[Inbound] = InboundQueue(
            max_inbound, owner._stats, _log, f"connector {owner.source}", is_kept=_is_kept
        )
        self.queue = self.inbound.queue
        self.held: deque[tuple[Inbound, int]] = deque()  # (entry, qos) the "broker" holds back
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.dispatching = False  # the dispatcher is working through its queue
        self.current_topic: str | None = None
        self.subs: dict[InMemorySubscription, None] = {}  # live subscriptions, in order
        self._index: SubscriptionIndex[InMemorySubscription] = SubscriptionIndex()
        self._match_cache: dict[str, list[InMemorySubscription]] = {}
        self._pending: set[asyncio.Future[None]] = set()

    def start(self, gen: int) -> None:
        """A new session: a fresh queue and dispatcher task."""
        owner = self._owner
        self.inbound = InboundQueue(
            self.max_inbound, owner._stats, _log, f"connector {owner.source}", is_kept=_is_kept
        )
        self.queue = self.inbound.queue
        self.held = deque()
        self.task = asyncio.get_running_loop().create_task(
            self._dispatch_loop(gen, self.inbound), name=f"cascade-memory-dispatch[{owner.source}]"
        )

    def offer(self, topic: str, raw: bytes, qos: int) -> None:
        """A live message from the broker (QoS 0 may be dropped past the bound; QoS 1 is held)."""
        entry = (topic, raw, QOS1 if qos else None)
        if self.held:  # the broker holds everything behind a held message: arrival order is kept
            self.held.append((entry, qos))
        elif not qos:
            self.inbound.append(entry)
        elif self.inbound.full:
            self.held.append((entry, qos))
        else:
            self.inbound.append_kept(entry)
        if self.waiter is not None:
            self.wake()

    def _refill(self) -> None:
        held = self.held
        inbound = self.inbound
        while held and not inbound.full:
            entry, qos = held.popleft()
            if qos:
                inbound.append_kept(entry)
            else:
                inbound.append(entry)

    def end(self) -> asyncio.Task[None] | None:
        """The session ended: every subscription ends; returns the dispatcher task (to cancel).

        Messages received and not yet dispatched are discarded and counted in ``dropped_inbound``.
        """
        self.inbound.discard_all(lambda entry: entry[0] is not None)
        self._owner._stats.dropped_inbound += len(self.held)
        self.held.clear()
        self.dispatching = False
        for sub in self.subs:
            sub.active = False
        self.subs.clear()
        self._index.clear()
        self._match_cache.clear()
        for fut in self._pending:
            if not fut.done():
                fut.set_exception(NotConnectedError("subscribe"))
        self._pending.clear()
        task, self.task, self.waiter = self.task, None, None
        return task

    def resubscribe(self) -> None:
        """After (re)connecting: replay the retained state of every live subscription to it."""
        broker = self._owner._broker
        for sub in self.subs:
            for topic, raw in broker._subscribe(self._owner, sub.topic_filter):
                self.inbound.append_kept((topic, raw, sub))
        if self.queue:
            self.wake()

    def busy(self) -> str | None:
        if self.queue or self.held or self.dispatching:
            topic = f" (callback running on {self.current_topic!r})" if self.dispatching else ""
            count = len(self.queue) + len(self.held)
            return f"connector {self._owner.source}: {count} inbound messages queued{topic}"
        return None

    async def subscribe(self, topic: str, callback: Callback) -> InMemorySubscription:
        """Register a subscription (checked by the connector); see `InMemoryConnector.subscribe`."""
        owner = self._owner
        sub = InMemorySubscription(owner, topic, callback)
        self.subs[sub] = None
        if self.task is not None and asyncio.current_task() is self.task:
            # Called from a callback: the dispatcher is busy running us, so deliver inline.
            self._activate(sub)
            if owner._online:
                for t, raw in owner._broker._subscribe(owner, topic):
                    await owner._delivery.deliver(t, raw, (sub,))
            return sub
        inbound = self.inbound
        inbound.append_kept((None, None, lambda: self._activate(sub)))
        if not owner._online:
            self.wake()
            return sub
        for t, raw in owner._broker._subscribe(owner, topic):
            inbound.append_kept((t, raw, sub))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        inbound.append_kept((None, None, _resolve(done)))
        self._pending.add(done)
        self.wake()
        try:
            await done
        finally:
            self._pending.discard(done)
        return sub

    def _activate(self, sub: InMemorySubscription) -> None:
        if sub.active:
            self._index.add(sub.topic_filter, sub)
            self._match_cache.clear()

    def remove(self, sub: InMemorySubscription) -> None:
        """`sub` unsubscribed: forget it here and at the broker."""
        self.subs.pop(sub, None)
        if self._index.remove(sub):
            self._match_cache.clear()
        owner = self._owner
        if owner._online:
            owner._broker._unsubscribe(owner, sub.topic_filter)

    def wake(self) -> None:
        """Wake the dispatcher if it waits for work."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _match(self, topic: str) -> list[InMemorySubscription]:
        subs = self._match_cache.get(topic)
        if subs is None:
            subs = self._index.match(topic)
            if len(self._match_cache) >= _CACHE_LIMIT:
                self._match_cache.clear()
            self._match_cache[topic] = subs
        return subs

    async def _dispatch_loop(self, gen: int, inbound: InboundQueue[Inbound]) -> None:
        """The one task that runs this session's callbacks, in arrival order."""
        owner = self._owner
        loop = asyncio.get_running_loop()
        broker = owner._broker
        queue = inbound.queue
        popleft = queue.popleft  # InboundQueue.popleft inlined (the kept count, the episode below)
        match = self._match
        cached = self._match_cache.get
        deliver = owner._delivery.deliver
        subs: list[InMemorySubscription] | tuple[InMemorySubscription]
        while owner._gen == gen:
            if not queue:
                inbound.episode_over()
                self.dispatching = False
                self.current_topic = None
                waiter = self.waiter = loop.create_future()
                broker._poke()
                await waiter
                continue
            self.dispatching = True
            for _ in range(len(queue)):
                if not queue:
                    break
                topic, raw, target = popleft()
                if self.held:
                    self._refill()
                if target is None:
                    subs = cached(topic) or match(topic)
                    if not subs:
                        continue
                else:
                    inbound.kept -= 1  # every entry with a target is kept
                    if target is QOS1:
                        subs = cached(topic) or match(topic)
                        if not subs:
                            continue
                    elif topic is None:
                        target()
                        continue
                    else:
                        subs = (target,)
                self.current_topic = topic
                await deliver(topic, raw, subs)
                if owner._gen != gen:
                    return
            await asyncio.sleep(0)
