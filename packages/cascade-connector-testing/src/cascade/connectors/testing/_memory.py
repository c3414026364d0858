"""`InMemoryBroker` and `InMemoryConnector`: a faithful, network-free fake of a Cascade connector.

The fake is asynchronous in the same places as a real connector, so a test that passes against it
also holds on MQTT:

- ``publish(qos=0)`` validates and encodes in the caller, appends to the connector's outbound queue and
  returns; one *sender* task per connector hands queued messages to the broker.
- The broker puts each message once into the inbound queue of every connected connector with a
  matching subscription (like an MQTT broker sending one copy per client); one *dispatcher* task per
  connector decodes it once and calls each matching callback, through a `SubscriptionIndex`.
- Retained replay, presence, last wills, outages with reconnect and bounded buffering behave as in
  DESIGN §3.2 and §7. No task per message, no sleeps, no process-global state.
"""

from __future__ import annotations

__all__ = [
    "InMemoryBroker",
    "InMemoryConnector",
    "InMemorySubscription",
    "PublishRecord",
    "SettleTimeoutError",
]

import asyncio
import logging
import os
import random
import secrets
import socket
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType, TracebackType
from typing import Any

from cascade.connectors.protocol import (
    Callback,
    ConnectionFailedError,
    ConnectorError,
    ConnectorStats,
    NotConnectedError,
    PayloadError,
    StatusMessage,
    SubscriptionIndex,
    decode_payload,
    encode_payload,
    status_topic,
    validate_filter,
    validate_topic,
)

logger = logging.getLogger("cascade.connectors.testing")

_CACHE_LIMIT = 4096  # entries in the per-topic routing caches before they are reset
_SEND_BATCH = 4096  # messages the sender hands over before it yields to the loop
_YIELD_BACKLOG = 1024  # a connected publisher yields once when its queue is at least this long


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One message the broker accepted (see `InMemoryBroker.history`).

    `payload` is the decoded JSON object (treat it as read-only); `source` is the publishing
    connector's source, or ``None`` for `InMemoryBroker.inject`. Presence messages and last wills
    are recorded too, with the connector's source.
    """

    topic: str
    payload: dict[str, Any]
    qos: int
    retain: bool
    source: str | None


class SettleTimeoutError(ConnectorError, TimeoutError):
    """`InMemoryBroker.settle` timed out; the message says what was still busy."""


# Inbound queue entries: (topic, raw, target).
#   target None               -> a live message, matched against the connector's subscriptions
#   target InMemorySubscription -> a retained replay for that subscription only
#   topic None                -> a control entry: target is a zero-argument callable run in order
_Inbound = tuple[Any, Any, Any]
# Outbound queue entries: (topic, raw, qos, retain, future-or-None)
_Outbound = tuple[str, bytes, int, bool, "asyncio.Future[None] | None"]


class _BrokerSub:
    """One filter of one connector at the broker (refcounted across that connector's subscriptions)."""

    __slots__ = ("__weakref__", "connector", "count", "topic_filter")

    def __init__(self, connector: InMemoryConnector, topic_filter: str) -> None:
        self.connector = connector
        self.topic_filter = topic_filter
        self.count = 0


class InMemoryBroker:
    """An in-process MQTT-like broker. Each instance is its own world (no shared state).

    Connectors join with ``InMemoryConnector(broker=...)``. Fault injection (`stop`, `start`, `drop`,
    `inject`) and inspection (`retained`, `history`, `settle`) are for tests.
    `keep_history=False` stops recording `history` (for long benchmarks).
    """

    def __init__(self, *, keep_history: bool = True) -> None:
        self._running = True
        self._keep_history = keep_history
        self._members: weakref.WeakSet[InMemoryConnector] = weakref.WeakSet()
        self._sessions: dict[InMemoryConnector, dict[str, _BrokerSub]] = {}
        self._index: SubscriptionIndex[_BrokerSub] = SubscriptionIndex()
        self._route_cache: dict[str, list[InMemoryConnector]] = {}
        self._retained: dict[str, bytes] = {}
        self._history_raw: list[tuple[str, bytes, int, bool, str | None]] = []
        self._history: list[PublishRecord] = []
        self._settle_waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return (
            f"InMemoryBroker({state}, connections={len(self._sessions)}, "
            f"retained={len(self._retained)}, history={len(self._history_raw)})"
        )

    # ------------------------------------------------------------------ inspection

    @property
    def running(self) -> bool:
        """False between `stop` and `start`."""
        return self._running

    @property
    def connected(self) -> tuple[InMemoryConnector, ...]:
        """The connectors that currently hold a connection to this broker."""
        return tuple(self._sessions)

    @property
    def retained(self) -> Mapping[str, dict[str, Any]]:
        """A read-only copy of the retained state: topic -> decoded payload.

        Retained bytes that are not a JSON object (only possible through `inject`) are left out; see
        `retained_raw`.
        """
        out: dict[str, dict[str, Any]] = {}
        for topic, raw in self._retained.items():
            try:
                out[topic] = decode_payload(raw)
            except PayloadError:
                continue
        return MappingProxyType(out)

    @property
    def retained_raw(self) -> Mapping[str, bytes]:
        """A read-only copy of the retained state as raw bytes (malformed injected payloads included)."""
        return MappingProxyType(dict(self._retained))

    @property
    def history(self) -> list[PublishRecord]:
        """Every message the broker accepted, oldest first (a new list; the records are shared).

        Includes presence and last-will messages, and injected payloads that are JSON objects.
        Retained replays to new subscriptions are deliveries, not publishes, and are not recorded.
        """
        records = self._history
        raw = self._history_raw
        for i in range(len(records), len(raw)):
            topic, data, qos, retain, source = raw[i]
            records.append(PublishRecord(topic, decode_payload(data), qos, retain, source))
        return list(records)

    def clear_history(self) -> None:
        """Forget the recorded history (for example after a test's set-up)."""
        self._history_raw.clear()
        self._history.clear()

    async def settle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (documented signature)
        """Return once every delivery in flight has been handled.

        That is: every connector's inbound queue is empty and its dispatcher is idle (no callback
        running), every connected connector's outbound queue is empty, and, while the broker runs,
        no connector is still waiting to reconnect. Deliveries triggered by callbacks are waited for
        too. Raises `SettleTimeoutError` (naming what is still busy) after `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while self._busy() is not None:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._settle_waiters.append(waiter)
                    await waiter
        except TimeoutError as exc:
            raise SettleTimeoutError(
                f"the in-memory broker did not settle within {timeout:g} s: {self._busy() or 'idle now'}"
            ) from exc

    def _busy(self) -> str | None:
        for conn in list(self._members):
            problem = conn._busy(self._running)
            if problem is not None:
                return problem
        return None

    def _poke(self) -> None:
        waiters = self._settle_waiters
        if waiters:
            self._settle_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # ------------------------------------------------------------------ fault injection

    async def stop(self) -> None:
        """Stop the broker: every connector loses its connection (no last will: the broker is down).

        Connectors keep buffering publishes and retry with backoff. Retained state survives.
        """
        if not self._running:
            return
        self._running = False
        for conn in list(self._sessions):
            self._close_session(conn)
            conn._connection_lost()
        self._poke()

    async def start(self) -> None:
        """Start the broker again. Connectors reconnect by themselves on their backoff schedule."""
        self._running = True
        self._poke()

    async def drop(self, connector: InMemoryConnector) -> None:
        """Abruptly cut `connector`'s connection: its retained ``offline`` last will is published, then
        it reconnects by itself. No-op if it is not connected right now.
        """
        if connector._broker is not self:
            raise ValueError(f"{connector!r} does not belong to this broker")
        if connector not in self._sessions:
            return
        self._close_session(connector)
        will = connector._connection_lost()
        self._route(status_topic(connector.source), will, 1, True, connector.source)
        self._poke()

    async def inject(self, topic: str, raw: bytes, retain: bool = False) -> None:
        """Publish raw bytes as a foreign (non-Cascade) client would, unchecked.

        Malformed bytes reach subscribers, who skip and count them. ``inject(topic, b"", retain=True)``
        clears the topic's retained state. Raises `TopicError` for an invalid topic and
        `ConnectorError` while the broker is stopped.
        """
        validate_topic(topic)
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise PayloadError(f"inject takes bytes, not {type(raw).__name__}")
        if not self._running:
            raise ConnectorError("cannot inject: the in-memory broker is stopped")
        data = bytes(raw)
        try:
            decode_payload(data)
        except PayloadError:
            record = False
        else:
            record = True
        self._route(topic, data, 0, retain, None, record=record)

    async def close(self) -> None:
        """Start the broker if it is stopped, then disconnect every connector still connected to it.

        Meant for teardown (the ``memory_broker`` fixture calls it).
        """
        await self.start()
        await asyncio.gather(*(conn.disconnect() for conn in list(self._members)))

    # ------------------------------------------------------------------ internals used by connectors

    def _open_session(self, conn: InMemoryConnector) -> None:
        self._sessions[conn] = {}

    def _close_session(self, conn: InMemoryConnector) -> None:
        subs = self._sessions.pop(conn, None)
        if subs:
            for bsub in subs.values():
                self._index.remove(bsub)
            self._route_cache.clear()

    def _subscribe(self, conn: InMemoryConnector, topic_filter: str) -> list[tuple[str, bytes]]:
        """Register `topic_filter` for `conn`; return the retained messages matching it."""
        subs = self._sessions[conn]
        bsub = subs.get(topic_filter)
        if bsub is None:
            bsub = subs[topic_filter] = _BrokerSub(conn, topic_filter)
            self._index.add(topic_filter, bsub)
            self._route_cache.clear()
        bsub.count += 1
        if not self._retained:
            return []
        matcher: SubscriptionIndex[int] = SubscriptionIndex()
        matcher.add(topic_filter, 0)
        return [(topic, raw) for topic, raw in self._retained.items() if matcher.match(topic)]

    def _unsubscribe(self, conn: InMemoryConnector, topic_filter: str) -> None:
        subs = self._sessions.get(conn)
        if subs is None:
            return
        bsub = subs.get(topic_filter)
        if bsub is None:
            return
        bsub.count -= 1
        if bsub.count <= 0:
            del subs[topic_filter]
            self._index.remove(bsub)
            self._route_cache.clear()

    def _route(
        self, topic: str, raw: bytes, qos: int, retain: bool, source: str | None, *, record: bool = True
    ) -> None:
        """Accept one message: record it, update retained state, queue it once per subscribed connector."""
        if record and self._keep_history:
            self._history_raw.append((topic, raw, qos, retain, source))
        if retain:
            if raw:
                self._retained[topic] = raw
            else:
                self._retained.pop(topic, None)
        targets = self._route_cache.get(topic)
        if targets is None:
            targets = []
            for bsub in self._index.match(topic):
                if bsub.connector not in targets:
                    targets.append(bsub.connector)
            if len(self._route_cache) >= _CACHE_LIMIT:
                self._route_cache.clear()
            self._route_cache[topic] = targets
        for conn in targets:
            conn._inq.append((topic, raw, None))
            if conn._dispatch_waiter is not None:
                conn._wake_dispatcher()


class InMemorySubscription:
    """The handle `InMemoryConnector.subscribe` returns."""

    __slots__ = ("__weakref__", "_connector", "active", "callback", "topic_filter")

    def __init__(self, connector: InMemoryConnector, topic_filter: str, callback: Callback) -> None:
        self._connector = connector
        self.topic_filter = topic_filter
        self.callback = callback
        self.active = True

    def __repr__(self) -> str:
        state = "active" if self.active else "unsubscribed"
        return f"<InMemorySubscription {self.topic_filter!r} {state}>"

    async def unsubscribe(self) -> None:
        """Stop this subscription; when this returns its callback gets nothing more. Idempotent."""
        if self.active:
            self.active = False
            self._connector._remove_subscription(self)


def _default_source() -> str:
    host = socket.gethostname() or "host"
    for ch in "/+#\x00":
        host = host.replace(ch, "-")
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def _resolve(future: asyncio.Future[None]) -> Callable[[], None]:
    def run() -> None:
        if not future.done():
            future.set_result(None)

    return run


class InMemoryConnector:
    """A `Connector` over an `InMemoryBroker`, keeping every promise of DESIGN §3.2.

    `broker`: the broker to join (a private one is made when omitted; see `broker`). `source`: the
    presence name (default ``{hostname}-{pid}-{random}``; `TopicError` if it cannot be a topic level).
    `max_buffered`: bound on messages accepted by `publish` and not yet handed to the broker (when
    full, the oldest QoS 0 message is dropped and counted). `reconnect_min_delay` /
    `reconnect_max_delay`: seconds, capped exponential backoff with jitter after a lost connection.
    `flush_timeout`: seconds `disconnect` waits to send what is queued. Also an async context manager
    (reusable, not re-entrant).
    """

    def __init__(
        self,
        broker: InMemoryBroker | None = None,
        source: str | None = None,
        *,
        max_buffered: int = 10_000,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 1.0,
        flush_timeout: float = 5.0,
    ) -> None:
        if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered must be an int >= 1, not {max_buffered!r}")
        if not 0 <= reconnect_min_delay <= reconnect_max_delay:
            raise ValueError(
                "need 0 <= reconnect_min_delay <= reconnect_max_delay, "
                f"got {reconnect_min_delay!r} and {reconnect_max_delay!r}"
            )
        if flush_timeout < 0:
            raise ValueError(f"flush_timeout must be >= 0, not {flush_timeout!r}")
        self._broker = broker if broker is not None else InMemoryBroker()
        self.source: str = source if source is not None else _default_source()
        self._status_topic = status_topic(self.source)  # validates the source
        self._max_buffered = max_buffered
        self._yield_backlog = min(_YIELD_BACKLOG, max(1, max_buffered // 2))
        self._min_delay = float(reconnect_min_delay)
        self._max_delay = float(reconnect_max_delay)
        self._flush_timeout = float(flush_timeout)
        self._stats = ConnectorStats()

        self._accepting = False  # publish/subscribe allowed (between connect and disconnect)
        self._wanted = False  # keep (re)connecting (until disconnect has flushed)
        self._online = False  # holds a session at the broker
        self._gen = 0  # bumps at each connect/disconnect; stale tasks exit
        self._closing: asyncio.Future[None] | None = None
        self._in_context = False

        self._outq: deque[_Outbound] = deque()
        self._qos1_queued = 0
        self._inq: deque[_Inbound] = deque()
        self._sender_waiter: asyncio.Future[None] | None = None
        self._dispatch_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._pending_subscribes: set[asyncio.Future[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._dispatching = False
        self._current_topic: str | None = None
        self._overflow_logged = False

        self._subs: dict[InMemorySubscription, None] = {}  # live subscriptions, in order
        self._index: SubscriptionIndex[InMemorySubscription] = SubscriptionIndex()
        self._match_cache: dict[str, list[InMemorySubscription]] = {}
        self._valid_topics: set[str] = set()
        self._broker._members.add(self)

    def __repr__(self) -> str:
        if self._online:
            state = "connected"
        elif self._wanted:
            state = "reconnecting"
        else:
            state = "disconnected"
        return f"InMemoryConnector(source={self.source!r}, {state}, subscriptions={len(self._subs)})"

    @property
    def broker(self) -> InMemoryBroker:
        """The broker this connector talks to (pass it to other connectors to share it)."""
        return self._broker

    @property
    def stats(self) -> ConnectorStats:
        """A snapshot copy of the counters (see `ConnectorStats`)."""
        return replace(self._stats)

    @property
    def connected(self) -> bool:
        """True while the connector holds a connection (False during an outage or when disconnected)."""
        return self._online

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> InMemoryConnector:
        if self._in_context:
            raise ConnectorError("InMemoryConnector is not re-entrant: it is already inside 'async with'")
        await self.connect()
        self._in_context = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._in_context = False
        await self.disconnect()

    async def connect(self) -> None:
        """Connect and publish retained ``online`` presence. Idempotent.

        Raises `ConnectionFailedError` (reason ``unreachable``) if the broker is stopped.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
        if self._wanted:
            return
        if not self._broker._running:
            raise ConnectionFailedError("unreachable", "the in-memory broker is stopped")
        loop = asyncio.get_running_loop()
        self._gen += 1
        gen = self._gen
        self._accepting = True
        self._wanted = True
        self._inq = deque()
        self._outq = deque()
        self._qos1_queued = 0
        self._sender = loop.create_task(self._send_loop(gen), name=f"cascade-memory-send[{self.source}]")
        self._dispatcher = loop.create_task(
            self._dispatch_loop(gen, self._inq), name=f"cascade-memory-dispatch[{self.source}]"
        )
        self._attach()

    async def disconnect(self) -> None:
        """Send what is queued (at most `flush_timeout` s), publish retained ``offline``, disconnect.

        Idempotent; a no-op before `connect`. When it returns no callback runs and every subscription
        has ended (a later `connect` starts a fresh session). Messages still queued after the
        timeout are dropped and counted; `qos=1` publishes still waiting raise `NotConnectedError`.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        if not self._wanted:
            return
        self._accepting = False
        closing = self._closing = asyncio.get_running_loop().create_future()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._flush()
        finally:
            try:
                tasks = self._shutdown()
            finally:
                self._closing = None
                closing.set_result(None)
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _flush(self) -> None:
        if not self._outq:
            return
        self._wake_sender()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._flush_timeout):
                while self._outq:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._drain_waiters.append(waiter)
                    await waiter
        except TimeoutError:
            logger.warning(
                "connector %s: disconnect gave up flushing after %g s; %d queued messages dropped",
                self.source,
                self._flush_timeout,
                len(self._outq),
            )

    def _shutdown(self) -> list[asyncio.Task[None]]:
        """Tear the session down synchronously; return the tasks to wait for."""
        self._wanted = False
        self._accepting = False
        self._gen += 1
        broker = self._broker
        if self._outq:
            self._stats.dropped += len(self._outq)
            for *_, fut in self._outq:
                if fut is not None and not fut.done():
                    fut.set_exception(NotConnectedError("publish"))
            self._outq.clear()
            self._qos1_queued = 0
        if self._online:
            offline = encode_payload(StatusMessage("offline", self.source).to_dict())
            broker._route(self._status_topic, offline, 1, True, self.source)
            broker._close_session(self)
            self._online = False
        self._inq.clear()
        self._dispatching = False
        for sub in self._subs:  # a graceful disconnect ends every subscription of the session
            sub.active = False
        self._subs.clear()
        self._index.clear()
        self._match_cache.clear()
        for fut in self._pending_subscribes:
            if not fut.done():
                fut.set_exception(NotConnectedError("subscribe"))
        self._pending_subscribes.clear()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        current = asyncio.current_task()
        tasks: list[asyncio.Task[None]] = []
        for task in (self._reconnector, self._sender, self._dispatcher):
            if task is not None and task is not current and not task.done():
                task.cancel()
                tasks.append(task)
        self._reconnector = self._sender = self._dispatcher = None
        self._sender_waiter = self._dispatch_waiter = None
        broker._poke()
        return tasks

    def _attach(self) -> None:
        """Open a session at the (running) broker: presence, re-subscriptions, then queued sends."""
        broker = self._broker
        broker._open_session(self)
        self._online = True
        self._overflow_logged = False
        online = encode_payload(StatusMessage("online", self.source).to_dict())
        broker._route(self._status_topic, online, 1, True, self.source)
        for sub in self._subs:
            for topic, raw in broker._subscribe(self, sub.topic_filter):
                self._inq.append((topic, raw, sub))
        if self._inq:
            self._wake_dispatcher()
        self._wake_sender()
        broker._poke()

    def _connection_lost(self) -> bytes:
        """Called by the broker (stop/drop). Returns the last will payload."""
        self._online = False
        will = encode_payload(StatusMessage("offline", self.source).to_dict())
        if self._wanted and (self._reconnector is None or self._reconnector.done()):
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect_loop(self._gen), name=f"cascade-memory-reconnect[{self.source}]"
            )
        logger.info("connector %s lost its connection; reconnecting", self.source)
        return will

    async def _reconnect_loop(self, gen: int) -> None:
        attempt = 0
        while self._gen == gen and self._wanted:
            cap = min(self._max_delay, self._min_delay * (2**attempt))
            await asyncio.sleep(random.uniform(self._min_delay, max(cap, self._min_delay)))
            if self._gen != gen or not self._wanted:
                return
            if self._broker._running and not self._online:
                self._stats.reconnects += 1
                self._attach()
                logger.info("connector %s reconnected", self.source)
                return
            attempt = min(attempt + 1, 30)

    def _busy(self, broker_running: bool) -> str | None:
        if not self._wanted:
            return None
        if self._inq or self._dispatching:
            topic = f" (callback running on {self._current_topic!r})" if self._dispatching else ""
            return f"connector {self.source}: {len(self._inq)} inbound messages queued{topic}"
        if self._online and self._outq:
            return f"connector {self.source}: {len(self._outq)} outbound messages queued"
        if broker_running and not self._online:
            return f"connector {self.source}: waiting to reconnect"
        return None

    # ------------------------------------------------------------------ publish

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        """Publish a JSON object.

        ``qos=0`` returns once queued (never raises because of an outage); ``qos=1`` returns once the
        broker accepted the message, waiting across an outage if need be. Raises `NotConnectedError`,
        `TopicError`, `PayloadError` (all before anything is queued), or `ValueError` for a qos other
        than 0 or 1.
        """
        if not self._accepting:
            raise NotConnectedError("publish")
        if topic not in self._valid_topics:
            validate_topic(topic)
            if len(self._valid_topics) >= _CACHE_LIMIT:
                self._valid_topics.clear()
            self._valid_topics.add(topic)
        if qos != 0 and qos != 1:
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        raw = encode_payload(payload)
        self._stats.published += 1
        queue = self._outq
        if not qos:
            queue.append((topic, raw, 0, retain, None))
            if len(queue) > self._max_buffered:
                self._overflow()
            if self._online:
                if self._sender_waiter is not None:
                    self._wake_sender()
                elif len(queue) >= self._yield_backlog:
                    await asyncio.sleep(0)  # let the sender catch up; never waits for the network
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append((topic, raw, 1, retain, future))
        self._qos1_queued += 1
        if len(queue) > self._max_buffered:
            self._overflow()
        if self._online:
            self._wake_sender()
        await future

    def _overflow(self) -> None:
        """Drop the oldest QoS 0 message (QoS 1 is never dropped; it may exceed the bound)."""
        queue = self._outq
        if queue[0][2] == 0:
            queue.popleft()
        elif self._qos1_queued >= len(queue):
            return
        else:
            for i, entry in enumerate(queue):
                if entry[2] == 0:
                    del queue[i]
                    break
        self._stats.dropped += 1
        if not self._overflow_logged:
            self._overflow_logged = True
            logger.warning(
                "connector %s: outbound buffer full (%d messages); dropping the oldest QoS 0 messages",
                self.source,
                self._max_buffered,
            )

    def _wake_sender(self) -> None:
        waiter = self._sender_waiter
        if waiter is not None:
            self._sender_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _send_loop(self, gen: int) -> None:
        loop = asyncio.get_running_loop()
        broker = self._broker
        source = self.source
        route = broker._route
        while self._gen == gen:
            queue = self._outq
            if not queue or not self._online:
                if not queue and self._drain_waiters:
                    waiters, self._drain_waiters = self._drain_waiters, []
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
                waiter = self._sender_waiter = loop.create_future()
                broker._poke()
                await waiter
                continue
            popleft = queue.popleft
            for _ in range(min(len(queue), _SEND_BATCH)):
                topic, raw, qos, retain, future = popleft()
                route(topic, raw, qos, retain, source)
                if future is not None:
                    self._qos1_queued -= 1
                    if not future.done():
                        future.set_result(None)
                # No await in this loop: the connection cannot be lost half-way through a batch.
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ subscribe and dispatch

    async def subscribe(self, topic: str, callback: Callback) -> InMemorySubscription:
        """Subscribe `callback` to the filter `topic`.

        Returns once the retained messages matching it have been delivered to `callback` (only to
        it). During an outage it registers the subscription and returns at once; the retained state
        arrives after the reconnect. Raises `NotConnectedError` or `TopicError`.
        """
        if not self._accepting:
            raise NotConnectedError("subscribe")
        validate_filter(topic)
        sub = InMemorySubscription(self, topic, callback)
        self._subs[sub] = None
        if self._dispatcher is not None and asyncio.current_task() is self._dispatcher:
            # Called from a callback: the dispatcher is busy running us, so deliver inline.
            self._activate(sub)
            if self._online:
                for t, raw in self._broker._subscribe(self, topic):
                    await self._deliver_one(t, raw, (sub,))
            return sub
        queue = self._inq
        queue.append((None, None, lambda: self._activate(sub)))
        if not self._online:
            self._wake_dispatcher()
            return sub
        for t, raw in self._broker._subscribe(self, topic):
            queue.append((t, raw, sub))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append((None, None, _resolve(done)))
        self._pending_subscribes.add(done)
        self._wake_dispatcher()
        try:
            await done
        finally:
            self._pending_subscribes.discard(done)
        return sub

    def _activate(self, sub: InMemorySubscription) -> None:
        if sub.active:
            self._index.add(sub.topic_filter, sub)
            self._match_cache.clear()

    def _remove_subscription(self, sub: InMemorySubscription) -> None:
        self._subs.pop(sub, None)
        if self._index.remove(sub):
            self._match_cache.clear()
        if self._online:
            self._broker._unsubscribe(self, sub.topic_filter)

    def _wake_dispatcher(self) -> None:
        waiter = self._dispatch_waiter
        if waiter is not None:
            self._dispatch_waiter = None
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

    def _malformed(self, topic: str, exc: PayloadError) -> None:
        self._stats.malformed += 1
        logger.warning(
            "connector %s skipped a malformed message on topic %r: %s", self.source, topic, exc.problem
        )

    def _callback_failed(self, sub: InMemorySubscription, topic: str) -> None:
        self._stats.callback_errors += 1
        logger.exception(
            "connector %s: callback %r for filter %r raised on topic %r",
            self.source,
            sub.callback,
            sub.topic_filter,
            topic,
        )

    async def _deliver_one(self, topic: str, raw: bytes, subs: Sequence[InMemorySubscription]) -> None:
        """Deliver one message to `subs` (used when subscribing from inside a callback)."""
        try:
            payload = decode_payload(raw)
        except PayloadError as exc:
            self._malformed(topic, exc)
            return
        first = True
        for sub in subs:
            if not sub.active:
                continue
            if first:
                first = False
            else:
                payload = decode_payload(raw)
            self._stats.delivered += 1
            try:
                await sub.callback(topic, payload)
            except Exception:
                self._callback_failed(sub, topic)

    async def _dispatch_loop(self, gen: int, queue: deque[_Inbound]) -> None:
        """The one task that runs this connector's callbacks, in arrival order."""
        loop = asyncio.get_running_loop()
        broker = self._broker
        stats = self._stats
        popleft = queue.popleft
        match = self._match
        cached = self._match_cache.get
        decode = decode_payload
        subs: Sequence[InMemorySubscription]
        while self._gen == gen:
            if not queue:
                self._dispatching = False
                self._current_topic = None
                waiter = self._dispatch_waiter = loop.create_future()
                broker._poke()
                await waiter
                continue
            self._dispatching = True
            for _ in range(len(queue)):
                if not queue:
                    break
                topic, raw, target = popleft()
                if target is None:
                    subs = cached(topic) or match(topic)
                    if not subs:
                        continue
                elif topic is None:
                    target()
                    continue
                else:
                    subs = (target,)
                self._current_topic = topic
                try:
                    payload = decode(raw)
                except PayloadError as exc:
                    self._malformed(topic, exc)
                    continue
                first = True
                for sub in subs:
                    if not sub.active:
                        continue
                    if first:
                        first = False
                    else:
                        payload = decode(raw)  # a fresh dict for every callback
                    stats.delivered += 1
                    try:
                        await sub.callback(topic, payload)
                    except Exception:
                        self._callback_failed(sub, topic)
                    except asyncio.CancelledError:
                        task = asyncio.current_task()
                        if self._gen != gen or (task is not None and task.cancelling()):
                            raise  # disconnect() is stopping this dispatcher
                        self._callback_failed(sub, topic)  # the callback's own cancellation
                    if self._gen != gen:
                        return
            await asyncio.sleep(0)
