"""`InMemoryConnector`: a `Connector` over an `InMemoryBroker`, built on the shared connector core.

Asynchronous in the same places as a real connector, so a test that passes against it also holds on
MQTT: ``publish(qos=0)`` validates and encodes in the caller and appends to the outbound buffer; one
*sender* task per session hands queued messages to the broker; one *dispatcher* task per session runs
the callbacks in arrival order (through the core's `Delivery`). No task per message, no sleeps.
"""

from __future__ import annotations

__all__ = ["InMemoryConnector"]

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from cascade.connectors.protocol import (
    Callback,
    ConnectionFailedError,
    ConnectorStats,
    NotConnectedError,
    PayloadError,
    encode_payload,
    utc_now_iso,
    validate_filter,
)
from cascade.connectors.protocol.core import (
    Backoff,
    ConnectOnEnter,
    ConnectorState,
    ContextGuard,
    Delivery,
    OutboundBuffer,
    Outgoing,
    Presence,
    StateMachine,
    TopicCache,
    check_callback,
    check_delay_range,
    check_int,
    check_seconds,
    default_source,
    unsent_at_disconnect,
)

from ._broker import InMemoryBroker
from ._inbox import Inbox
from ._subscription import InMemorySubscription

logger = logging.getLogger("cascade.connectors.testing")

_SEND_BATCH: Final = 4096  # messages the sender hands over before it yields to the loop
_YIELD_BACKLOG: Final = 1024  # a connected publisher yields once when its queue is at least this long
_CONNECTED: Final = ConnectorState.CONNECTED
_RECONNECTING: Final = ConnectorState.RECONNECTING
# Builds an `Outgoing` without the named tuple's Python-level __new__ (a frame per publish).
_new_outgoing: Final = tuple.__new__


class InMemoryConnector(ConnectOnEnter):
    """A `Connector` over an `InMemoryBroker`, keeping every promise of docs/contract.md.

    `broker`: the broker to join (a private one is made when omitted; see `broker`). `source`: the
    presence name (default ``{hostname}-{pid}-{random}``; `TopicError` if it cannot be a topic level).
    `max_buffered`: bound on messages accepted by `publish` and not yet handed to the broker (when
    full, the oldest QoS 0 message is dropped and counted). `max_inbound`: bound on messages received
    and not yet handed to callbacks (beyond it the oldest QoS 0 message is dropped and counted in
    ``stats.dropped_inbound``; QoS 1 waits at the broker). `presence_expiry`: seconds the broker
    keeps the retained ``offline`` presence (last will and graceful), like MQTT 5 message expiry
    (default 24 h; None: forever). `reconnect_min_delay` /
    `reconnect_max_delay`: seconds, capped exponential backoff with full jitter after a lost
    connection. `flush_timeout`: seconds `disconnect` waits to send what is queued. Raises
    `ValueError` for invalid settings (NaN included). Also an async context manager (reusable, not
    re-entrant).
    """

    def __init__(
        self,
        broker: InMemoryBroker | None = None,
        source: str | None = None,
        *,
        max_buffered: int = 10_000,
        max_inbound: int = 10_000,
        presence_expiry: float | None = 86_400.0,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 1.0,
        flush_timeout: float = 5.0,
    ) -> None:
        self._min_delay, self._max_delay = check_delay_range(reconnect_min_delay, reconnect_max_delay)
        self._flush_timeout = check_seconds("flush_timeout", flush_timeout)
        self._broker = broker if broker is not None else InMemoryBroker()
        self.source: str = source if source is not None else default_source()
        self._presence = Presence(self.source)  # validates the source (TopicError)
        self._presence_expiry = (
            None
            if presence_expiry is None
            else check_seconds("presence_expiry", presence_expiry, positive=True)
        )
        self._online_ts = ""  # the time of the current connection: its online and its will carry it
        self._stats = ConnectorStats()
        self._out: OutboundBuffer[asyncio.Future[None]] = OutboundBuffer(
            max_buffered, self._stats, logger, f"connector {self.source}"
        )
        self._yield_backlog = min(_YIELD_BACKLOG, max(1, max_buffered // 2))

        self._machine = StateMachine()
        self._online = False  # holds a session at the broker right now
        self._gen = 0  # bumps at each connect/disconnect; stale tasks exit
        self._closing: asyncio.Future[None] | None = None  # set while disconnect() runs
        self._guard = ContextGuard("InMemoryConnector")
        self._delivery = Delivery(self._stats, logger)

        self._inbox = Inbox(self, check_int("max_inbound", max_inbound, 1))
        self._sender_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._sender: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._topics = TopicCache()
        self._known_topics = self._topics.known  # the hot path's membership test
        self._broker._members.add(self)

    def __repr__(self) -> str:
        idle = self._machine.state is ConnectorState.IDLE
        shown = "connected" if self._online else "disconnected" if idle else "reconnecting"
        return f"InMemoryConnector(source={self.source!r}, {shown}, subscriptions={len(self._inbox.subs)})"

    @property
    def broker(self) -> InMemoryBroker:
        """The broker this connector talks to (pass it to other connectors to share it)."""
        return self._broker

    @property
    def stats(self) -> ConnectorStats:
        """A snapshot copy of the counters (see `ConnectorStats`)."""
        return replace(self._stats)

    @property
    def state(self) -> ConnectorState:
        """Where the connector is in its lifecycle."""
        return self._machine.state

    @property
    def connected(self) -> bool:
        """True while the connector holds a connection (False during an outage or when disconnected)."""
        return self._online

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Connect and publish retained ``online`` presence. Idempotent.

        Raises `ConnectionFailedError` (reason ``unreachable``) if the broker is stopped.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
        if self._machine.state is not ConnectorState.IDLE:
            return
        if not self._broker._running:
            raise ConnectionFailedError("unreachable", "the in-memory broker is stopped")
        self._machine.to(ConnectorState.CONNECTING)
        loop = asyncio.get_running_loop()
        self._gen += 1
        gen = self._gen
        self._delivery = Delivery(self._stats, logger)
        self._sender = loop.create_task(self._send_loop(gen), name=f"cascade-memory-send[{self.source}]")
        self._inbox.start(gen)
        self._machine.to(ConnectorState.CONNECTED)
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
        if not self._machine.accepting:
            return
        self._machine.to(ConnectorState.CLOSING)
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
        if not self._out:
            return
        self._wake_sender()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._flush_timeout):
                while self._out:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._drain_waiters.append(waiter)
                    await waiter
        except TimeoutError:
            logger.warning(
                "connector %s: disconnect gave up flushing after %g s; %d queued messages dropped",
                self.source,
                self._flush_timeout,
                len(self._out),
            )

    def _shutdown(self) -> list[asyncio.Task[None]]:
        """Tear the session down synchronously (state CLOSING -> IDLE); return the tasks to wait for."""
        self._gen += 1
        self._delivery.close()
        broker = self._broker
        for entry in self._out.take_all():
            self._stats.dropped += 1
            fut = entry.ack
            if fut is not None and not fut.done():
                fut.set_exception(unsent_at_disconnect())
                fut.exception()  # the caller may be gone; never "exception never retrieved"
        if self._online:
            offline = self._presence.offline()
            broker._route(self._presence.topic, offline, 1, True, self.source, expiry=self._presence_expiry)
            broker._close_session(self)
            self._online = False
        self._machine.to(ConnectorState.IDLE)
        dispatcher = self._inbox.end()  # a graceful disconnect ends every subscription of the session
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        current = asyncio.current_task()
        tasks: list[asyncio.Task[None]] = []
        for task in (self._reconnector, self._sender, dispatcher):
            if task is not None and task is not current and not task.done():
                task.cancel()
                tasks.append(task)
        self._reconnector = self._sender = None
        self._sender_waiter = None
        broker._poke()
        return tasks

    def _attach(self) -> None:
        """Open a session at the (running) broker: presence, re-subscriptions, then queued sends."""
        broker = self._broker
        broker._open_session(self)
        self._online = True
        self._out.new_episode()
        self._online_ts = utc_now_iso()
        broker._route(self._presence.topic, self._presence.online(self._online_ts), 1, True, self.source)
        self._inbox.resubscribe()
        self._wake_sender()
        broker._poke()

    def _connection_lost(self) -> bytes:
        """Called by the broker (stop/drop). Returns the last will payload."""
        self._online = False
        if self._machine.state is _CONNECTED:
            self._machine.to(ConnectorState.RECONNECTING)
        if self._machine.state is not ConnectorState.IDLE and (
            self._reconnector is None or self._reconnector.done()
        ):
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect_loop(self._gen), name=f"cascade-memory-reconnect[{self.source}]"
            )
        logger.info("connector %s lost its connection; reconnecting", self.source)
        return self._presence.offline(self._online_ts)

    async def _reconnect_loop(self, gen: int) -> None:
        backoff = Backoff(self._min_delay, self._max_delay)
        while self._gen == gen:
            await asyncio.sleep(backoff.next_delay())
            if self._gen != gen:
                return
            if self._broker._running and not self._online:
                self._stats.reconnects += 1
                if self._machine.state is _RECONNECTING:
                    self._machine.to(ConnectorState.CONNECTED)
                self._attach()  # also while CLOSING: disconnect() is still flushing
                logger.info("connector %s reconnected", self.source)
                return

    def _busy(self, broker_running: bool) -> str | None:
        if self._machine.state is ConnectorState.IDLE:
            return None
        inbound = self._inbox.busy()
        if inbound is not None:
            return inbound
        if self._online and self._out:
            return f"connector {self.source}: {len(self._out)} outbound messages queued"
        if broker_running and not self._online:
            return f"connector {self.source}: waiting to reconnect"
        return None

    # ------------------------------------------------------------------ publish

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        """Publish a JSON object.

        ``qos=0`` returns once queued (never raises because of an outage); ``qos=1`` returns once the
        broker accepted the message, waiting across an outage if need be. Raises `NotConnectedError`
        (also for a ``qos=1`` publish still waiting when `disconnect` ends the session), `TopicError`,
        `PayloadError` (all before anything is queued), or `ValueError` for a qos other than 0 or 1.
        """
        state = self._machine.state
        if state is not _CONNECTED and state is not _RECONNECTING:
            raise NotConnectedError("publish")
        if topic not in self._known_topics:
            self._topics.add(topic)
        if qos != 0 and qos != 1:
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        raw = encode_payload(payload)
        if self._broker.max_packet_size is not None and self._broker.refuses(topic, raw, qos):
            raise PayloadError(
                f"{len(raw)} bytes encoded for {topic!r}: more than the broker's Maximum Packet Size "
                f"({self._broker.max_packet_size} bytes) allows; send smaller messages"
            )
        self._stats.published += 1
        out = self._out
        if not qos:
            queue = out.queue
            if len(queue) >= out.max_buffered and not out.make_room():
                self._stats.dropped += 1  # only QoS 1 is queued: this message is the oldest QoS 0
                return
            queue.append(_new_outgoing(Outgoing, (topic, raw, retain, None)))
            if self._online:
                if self._sender_waiter is not None:
                    self._wake_sender()
                elif len(queue) >= self._yield_backlog:
                    await asyncio.sleep(0)  # let the sender catch up; never waits for the network
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        out.append_qos1(Outgoing(topic, raw, retain, future))
        if self._online:
            self._wake_sender()
        await future

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
        out = self._out
        while self._gen == gen:
            if not out or not self._online:
                if not out and self._drain_waiters:
                    waiters, self._drain_waiters = self._drain_waiters, []
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
                waiter = self._sender_waiter = loop.create_future()
                broker._poke()
                await waiter
                continue
            queue = out.queue
            popleft = queue.popleft  # the deque's own: no call per message beyond it
            for _ in range(min(len(queue), _SEND_BATCH)):
                topic, raw, retain, future = popleft()
                if future is None:
                    route(topic, raw, 0, retain, source)
                else:
                    out.qos1_queued -= 1
                    route(topic, raw, 1, retain, source)
                    if not future.done():
                        future.set_result(None)
                # No await in this loop: the connection cannot be lost half-way through a batch.
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ subscribe

    async def subscribe(self, topic: str, callback: Callback) -> InMemorySubscription:
        """Subscribe `callback` (a function or coroutine function) to the filter `topic`.

        Returns once the retained messages matching it have been delivered to `callback` (only to
        it). During an outage it registers the subscription and returns at once; the retained state
        arrives after the reconnect. Raises `NotConnectedError`, `TopicError` or `TypeError` (not
        callable).
        """
        if not self._machine.accepting:
            raise NotConnectedError("subscribe")
        validate_filter(topic)
        check_callback(callback)
        return await self._inbox.subscribe(topic, callback)
