"""`InMemoryBroker`: an in-process MQTT-like broker, one world per instance (no process-global state).

It puts each accepted message once into the inbound queue of every connected connector with a matching
subscription (like an MQTT broker sending one copy per client), keeps retained state and the history,
and offers fault injection (`stop`, `start`, `drop`, `inject`) and `settle` for tests.
"""

from __future__ import annotations

__all__ = ["InMemoryBroker"]

import asyncio
import time
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cascade.connectors.protocol import (
    ConnectorError,
    PayloadError,
    SubscriptionIndex,
    decode_payload,
    validate_topic,
)

from ._records import PublishRecord, SettleTimeoutError

if TYPE_CHECKING:
    from ._connector import InMemoryConnector

_CACHE_LIMIT = 4096  # entries in the per-topic routing cache before it is reset


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
    `keep_history=False` stops recording `history` (for long benchmarks). `max_packet_size` plays
    an MQTT broker's Maximum Packet Size: a publish whose MQTT 5 PUBLISH packet would be larger
    raises `PayloadError` in the caller, as on MQTT.
    """

    def __init__(self, *, keep_history: bool = True, max_packet_size: int | None = None) -> None:
        if max_packet_size is not None and (
            not isinstance(max_packet_size, int) or isinstance(max_packet_size, bool) or max_packet_size < 64
        ):
            raise ValueError(
                f"max_packet_size must be an int of at least 64 or None, not {max_packet_size!r}"
            )
        self.max_packet_size = max_packet_size
        """The Maximum Packet Size this broker announces (bytes, whole MQTT 5 PUBLISH), or None."""
        self._running = True
        self._keep_history = keep_history
        self._members: weakref.WeakSet[InMemoryConnector] = weakref.WeakSet()
        self._sessions: dict[InMemoryConnector, dict[str, _BrokerSub]] = {}
        self._index: SubscriptionIndex[_BrokerSub] = SubscriptionIndex()
        self._route_cache: dict[str, list[InMemoryConnector]] = {}
        self._retained: dict[str, bytes] = {}
        self._expires: dict[str, float] = {}  # retained topic -> time.monotonic() when it expires
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
        self._expire()
        for topic, raw in self._retained.items():
            try:
                out[topic] = decode_payload(raw)
            except PayloadError:
                continue
        return MappingProxyType(out)

    @property
    def retained_raw(self) -> Mapping[str, bytes]:
        """A read-only copy of the retained state as raw bytes (malformed injected payloads included)."""
        self._expire()
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

    def _expire(self) -> None:
        """Forget retained messages whose MQTT 5 message expiry has passed (as a broker does)."""
        if not self._expires:
            return
        now = time.monotonic()
        for topic in [t for t, deadline in self._expires.items() if deadline <= now]:
            del self._expires[topic]
            self._retained.pop(topic, None)

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
        topic = connector._presence.topic
        self._route(topic, will, 1, True, connector.source, expiry=connector._presence_expiry)
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

    def refuses(self, topic: str, raw: bytes, qos: int) -> bool:
        """Whether a PUBLISH of `raw` to `topic` at `qos` exceeds `max_packet_size`."""
        limit = self.max_packet_size
        if limit is None:
            return False
        body = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + 1 + len(raw)  # + properties length
        varint = 1 if body < 128 else 2 if body < 16_384 else 3 if body < 2_097_152 else 4
        return 1 + varint + body > limit

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
        self._expire()
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
        self,
        topic: str,
        raw: bytes,
        qos: int,
        retain: bool,
        source: str | None,
        *,
        record: bool = True,
        expiry: float | None = None,
    ) -> None:
        """Accept one message: record it, update retained state, queue it once per subscribed connector.

        `expiry`: seconds a retained message is kept (MQTT 5 message expiry; None: forever).
        """
        if record and self._keep_history:
            self._history_raw.append((topic, raw, qos, retain, source))
        if retain:
            if raw:
                self._retained[topic] = raw
                if expiry is None:
                    self._expires.pop(topic, None)
                else:
                    self._expires[topic] = time.monotonic() + expiry
            else:
                self._retained.pop(topic, None)
                self._expires.pop(topic, None)
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
            inbox = conn._inbox
            queue = inbox.queue
            if qos or inbox.held or len(queue) >= inbox.max_inbound:
                inbox.offer(topic, raw, qos)
            else:  # the hot path of InboundQueue.append, inlined
                queue.append((topic, raw, None))
                if inbox.waiter is not None:
                    inbox.wake()
