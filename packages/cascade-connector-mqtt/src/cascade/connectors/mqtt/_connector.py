"""`MqttConnector`: the production Cascade connector over MQTT 5 (see docs/mqtt.md for the design).

One long-lived task per connection lifetime (the *supervisor*) owns the MQTT connection: it reconnects
with capped exponential backoff and full jitter, re-subscribes, and dispatches inbound messages to
callbacks one at a time. Outbound messages go through one bounded deque; a ``call_soon`` callback (not a
task, not one per message) hands them to the MQTT client in batches, with a bounded window of unwritten
QoS 0 packets and a bounded number of QoS 1 messages awaiting PUBACK.
"""

from __future__ import annotations

__all__ = ["MqttConnector", "MqttSubscription"]

import asyncio
import dataclasses
import functools
import logging
import os
import random
import re
import secrets
import socket
import ssl
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from cascade.connectors.protocol import (
    Callback,
    ConnectorError,
    ConnectorStats,
    NotConnectedError,
    PayloadError,
    StatusMessage,
    SubscriptionIndex,
    SubscriptionRefusedError,
    decode_payload,
    encode_payload,
    status_topic,
    validate_filter,
    validate_topic,
)

from ._client import SUBSCRIBE_LOST, Link, LinkSettings, Sent, reason_text
from ._url import InvalidUrlError, parse_url, redact_url

_log = logging.getLogger("cascade.connectors.mqtt")

# Connector states.
_IDLE: Final = 0  # never connected, or disconnected
_RUNNING: Final = 1  # connected, or reconnecting after a loss
_CLOSING: Final = 2  # disconnect() in progress

# Kinds of QoS 1 messages.
_USER: Final = 0
_PRESENCE: Final = 1
_MARKER: Final = 2
_CONFIRM: Final = 3

_SYNC_SID: Final = 1  # subscription identifier of the private sync topic
_SYNC_RETRY: Final = 0.5  # seconds without the awaited sync marker before another one is sent
_MAX_SID: Final = 268_435_455  # MQTT 5 limit on subscription identifiers
_MAX_INFLIGHT: Final = 20  # QoS 1 messages awaiting PUBACK (also capped by the broker's Receive Maximum)
_MAX_UNWRITTEN: Final = 8  # QoS 0 batches handed to the client but not yet written to the socket
_UNCONFIRMED_BYTES: Final = 4 * 1024 * 1024  # QoS 0 bytes kept for a resend until the broker has them
_BATCH_BYTES: Final = 64 * 1024  # a batch closes once it holds this many bytes of topics and payloads
_TOPIC_CACHE: Final = 4096  # validated publish topics remembered
_MAX_PAYLOAD: Final = 268_435_455 - 65_535 - 16  # what still fits in one MQTT packet with the topic


class _Ack:
    """The completion of one QoS 1 message."""

    __slots__ = ("future", "kind", "reason", "sent", "seq")

    def __init__(self, future: asyncio.Future[None] | None, kind: int, seq: int = 0) -> None:
        self.future = future
        self.kind = kind
        self.seq = seq  # the sync marker's number
        self.sent = 0  # position in the connection's send order (see MqttConnector._sent)
        self.reason = 0


# (topic, payload, retain, ack): ack is None for QoS 0.
_Entry = tuple[str, bytes, bool, _Ack | None]


class _BrokerSub:
    """One subscription at the broker (one per distinct filter), shared by local subscriptions.

    Each SUBSCRIBE for the filter gives it a fresh subscription identifier (`sid`, the current one), so
    the retained replay of one SUBSCRIBE can be told from another's; `sids` keeps every identifier
    it had (copies in flight may still carry an older one).
    """

    __slots__ = ("filter", "sid", "sids", "subs")

    def __init__(self, topic_filter: str, sid: int) -> None:
        self.filter = topic_filter
        self.sid = sid
        self.sids = [sid]
        self.subs: dict[MqttSubscription, None] = {}


class MqttSubscription:
    """What `MqttConnector.subscribe` returns: `unsubscribe()` ends it (idempotent)."""

    __slots__ = ("_broker", "_connector", "_sync_sid", "active", "callback")

    def __init__(self, connector: MqttConnector, broker: _BrokerSub, callback: Callback) -> None:
        self._connector = connector
        self._broker = broker
        self._sync_sid = broker.sid  # the identifier of the SUBSCRIBE whose retained replay it waits for
        self.callback = callback
        self.active = True

    @property
    def topic(self) -> str:
        """The subscription filter."""
        return self._broker.filter

    async def unsubscribe(self) -> None:
        """End this subscription: once this returns its callback is not called again. Idempotent.

        Other subscriptions, even on the same filter, are unaffected; the broker subscription is removed
        when the last local subscription on its filter goes (waits for the UNSUBACK, bounded).
        """
        if not self.active:
            return
        self.active = False
        await self._connector._remove(self)

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"MqttSubscription({self._broker.filter!r}, {state})"


def _safe_segment(text: str) -> str:
    return re.sub(r"[/+#\x00\s]", "_", text) or "host"


class MqttConnector:
    """A Cascade `Connector` over MQTT 5 (Mosquitto 2 or any MQTT 5 broker), built on aiomqtt.

    - `hostname`, `port`: the broker. `username`/`password`: credentials (never shown in repr, logs or
      errors). `tls`: an `ssl.SSLContext`, ``True`` (system CAs, host name verified) or ``None``.
    - `client_id`: the MQTT client id; default unique per instance. `source`: the name used for presence
      on ``cascade/status/{source}``; default ``{hostname}-{pid}-{random}``, unique per instance.
    - `keepalive`: seconds between keepalive pings (a dead link is detected after 1.5x that).
    - `max_buffered`: messages accepted by `publish` and not yet handed to the broker; when full, the
      oldest QoS 0 message is dropped and counted in ``stats.dropped``. QoS 1 is never dropped.
    - `reconnect_min_delay`, `reconnect_max_delay`: seconds; capped exponential backoff with full jitter.
    - `connect_timeout`: seconds for each of TCP connect, TLS handshake and CONNACK (and other waits on
      the broker, such as UNSUBACK). `flush_timeout`: seconds `disconnect` spends sending what is queued.

    Raises `ValueError` (or `TopicError` for `source`) for invalid settings. Use as
    ``async with MqttConnector(...) as connector:`` or call `connect`/`disconnect`.
    """

    def __init__(
        self,
        hostname: str = "localhost",
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        keepalive: int = 60,
        source: str | None = None,
        max_buffered: int = 10_000,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 1.0,
        connect_timeout: float = 5.0,
        flush_timeout: float = 5.0,
    ) -> None:
        if not isinstance(hostname, str) or not hostname:
            raise ValueError("hostname must be a non-empty str")
        _check_int("port", port, 1, 65535)
        _check_int("keepalive", keepalive, 0, 65535)
        _check_int("max_buffered", max_buffered, 1, None)
        _check_float("reconnect_min_delay", reconnect_min_delay, 0.0, strict=False)
        _check_float("reconnect_max_delay", reconnect_max_delay, 0.0, strict=True)
        if reconnect_max_delay < reconnect_min_delay:
            raise ValueError(
                f"reconnect_max_delay ({reconnect_max_delay:g}) must be at least "
                f"reconnect_min_delay ({reconnect_min_delay:g})"
            )
        _check_float("connect_timeout", connect_timeout, 0.0, strict=True)
        _check_float("flush_timeout", flush_timeout, 0.0, strict=False)
        if username is not None and not isinstance(username, str):
            raise ValueError("username must be a str or None")
        if password is not None:
            if not isinstance(password, str):
                raise ValueError("password must be a str or None")
            if username is None:
                raise ValueError("a password needs a username")
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError("client_id must be a non-empty str or None")
        if tls is True:
            tls = ssl.create_default_context()
        elif tls is False:
            tls = None
        if tls is not None and not isinstance(tls, ssl.SSLContext):
            raise ValueError(f"tls must be an ssl.SSLContext, True or None, not {type(tls).__name__}")

        token = secrets.token_hex(4)
        host = _safe_segment(socket.gethostname())
        if source is None:
            source = f"{host}-{os.getpid()}-{token}"
        self._status_topic = status_topic(source)  # validates source (TopicError)
        if client_id is None:
            client_id = f"cascade-{source}-{token}" if not source.endswith(token) else f"cascade-{source}"
        sync_id = client_id if re.fullmatch(r"[^/+#\x00]{1,200}", client_id) else token
        self._sync_topic = f"$cascade/sync/{sync_id}"

        self._hostname = hostname
        self._port = port
        self._username = username
        self._password = password
        self._client_id = client_id
        self._tls: ssl.SSLContext | None = tls
        self._keepalive = keepalive
        self._source = source
        self._max_buffered = max_buffered
        self._min_delay = float(reconnect_min_delay)
        self._max_delay = float(reconnect_max_delay)
        self._connect_timeout = float(connect_timeout)
        self._flush_timeout = float(flush_timeout)

        self._stats = ConnectorStats()
        self._state = _IDLE
        self._lock: asyncio.Lock | None = None
        self._in_context = False
        self._topics_ok: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        """Per-session state (a session runs from connect() to disconnect())."""
        self._task: asyncio.Task[None] | None = None
        self._link: Link | None = None
        self._stopping = False
        self._closing = False
        self._reconnecting = False
        self._wake: asyncio.Event | None = None
        # outbound
        self._queue: deque[_Entry] = deque()
        self._control: deque[_Entry] = deque()
        self._qos1_queued = 0
        self._inflight: dict[int, _Entry] = {}
        self._unwritten: deque[Sent] = deque()  # QoS 0 batches handed to the client, maybe not written
        # QoS 0 batches handed over but not yet confirmed (see _flush): (send position, batch, bytes)
        self._unconfirmed: deque[tuple[int, list[_Entry], int]] = deque()
        self._unconfirmed_bytes = 0
        self._sent = 0  # send positions: every QoS 0 batch and QoS 1 message handed over takes the next
        self._confirm_pending = False
        self._max_inflight = _MAX_INFLIGHT
        self._flush_scheduled = False
        self._idle_waiter: asyncio.Future[None] | None = None
        self._overflow_logged = False
        # inbound and subscriptions
        self._inbound: deque[tuple[str, bytes | bytearray, bool, Sequence[int]]] = deque()
        self._by_filter: dict[str, _BrokerSub] = {}
        self._by_sid: dict[int, _BrokerSub] = {}
        self._index: SubscriptionIndex[_BrokerSub] = SubscriptionIndex()
        self._next_sid = _SYNC_SID + 1
        self._syncing: dict[MqttSubscription, int] = {}
        self._sync_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._marker_seq = 0
        self._sync_available = True
        self._last_malformed: tuple[str, bytes | bytearray, bool, set[int]] | None = None
        self._markers_unseen: deque[int] = deque()  # markers sent on this connection, not yet back
        self._marker_retry_seen = 0
        self._sync_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ construction from a URL

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConnector:
        """Build a connector from ``mqtt://[user[:password]@]host[:port][?option=value&...]``.

        ``mqtts://`` enables TLS with certificate and host name verification (port 8883 by default);
        its options ``ca_file``, ``cert_file`` and ``key_file`` name PEM files. Other options:
        ``client_id``, ``source``, ``keepalive``, ``max_buffered``, ``reconnect_min_delay``,
        ``reconnect_max_delay``, ``connect_timeout``, ``flush_timeout``. Keyword `overrides` win over the
        URL. Raises `InvalidUrlError` (a `ValueError`) naming the problem; the password is never shown.
        """
        options = parse_url(url)
        options.update(overrides)
        try:
            return cls(**options)
        except ValueError as exc:  # a bad option value: report it against the (redacted) URL
            raise InvalidUrlError(redact_url(url), str(exc)) from exc

    # ------------------------------------------------------------------ public properties

    @property
    def source(self) -> str:
        """The presence name (``cascade/status/{source}``)."""
        return self._source

    @property
    def client_id(self) -> str:
        """The MQTT client id."""
        return self._client_id

    @property
    def stats(self) -> ConnectorStats:
        """A snapshot of the counters (published, delivered, dropped, malformed, callback_errors,
        reconnects).
        """
        return dataclasses.replace(self._stats)

    @property
    def connected(self) -> bool:
        """Whether a connection to the broker is up right now (False during an outage)."""
        link = self._link
        return link is not None and not link.lost

    def __repr__(self) -> str:
        state = {_IDLE: "idle", _RUNNING: "connected" if self.connected else "reconnecting"}.get(
            self._state, "closing"
        )
        user = f", username={self._username!r}" if self._username is not None else ""
        return (
            f"MqttConnector({self._hostname!r}, {self._port}{user}, tls={self._tls is not None}, "
            f"client_id={self._client_id!r}, source={self._source!r}, {state})"
        )

    # ------------------------------------------------------------------ lifecycle

    def _settings(self) -> LinkSettings:
        offline = StatusMessage(status="offline", source=self._source)
        return LinkSettings(
            hostname=self._hostname,
            port=self._port,
            client_id=self._client_id,
            username=self._username,
            password=self._password,
            tls=self._tls,
            keepalive=self._keepalive,
            connect_timeout=self._connect_timeout,
            will_topic=self._status_topic,
            will_payload=encode_payload(offline.to_dict()),
        )

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def connect(self) -> None:
        """Connect and publish retained ``online`` presence. Idempotent.

        Raises `ConnectionFailedError` (reason unreachable, timeout, auth, tls or refused) if the broker
        cannot be reached or refuses; takes at most about `connect_timeout` per connection step. Later
        losses are not raised: the connector reconnects by itself.
        """
        async with self._get_lock():
            if self._state == _RUNNING:
                return
            self._reset()
            self._wake = asyncio.Event()
            link = await Link.open(self._settings(), self)
            self._state = _RUNNING
            presence = self._adopt(link)
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(link), name=f"cascade-mqtt-{self._client_id}"
            )
            _log.info("connected to %s:%s as %s", self._hostname, self._port, self._client_id)
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await presence
            except TimeoutError:
                _log.warning("the broker did not acknowledge the online presence in time")

    async def disconnect(self) -> None:
        """Send what is queued (up to `flush_timeout` s), publish retained ``offline``, disconnect.

        Idempotent; a no-op before `connect`. After it returns no callback runs, every subscription has
        ended, and messages that could not be sent were counted in ``stats.dropped`` (a `qos=1` publish
        still waiting raises `ConnectorError`).
        """
        async with self._get_lock():
            if self._state != _RUNNING:
                return
            self._state = _CLOSING
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._flush_timeout
            try:
                await self._drain(deadline)
                link = self._link
                if link is not None and not link.lost:
                    offline = StatusMessage(status="offline", source=self._source)
                    ack = _Ack(loop.create_future(), _PRESENCE)
                    self._control.append((self._status_topic, encode_payload(offline.to_dict()), True, ack))
                    self._schedule_flush()
                    grace = max(deadline - loop.time(), 0.5)
                    try:
                        async with asyncio.timeout(grace):
                            await ack.future  # type: ignore[misc]
                    except TimeoutError:
                        _log.warning("the broker did not acknowledge the offline presence in time")
                    self._stopping = True  # the supervisor must not treat our DISCONNECT as a loss
                    await link.close(max(deadline - loop.time(), 0.5))
            finally:
                await self._stop_supervisor()
                self._finish()
                self._state = _IDLE
            _log.info("disconnected from %s:%s", self._hostname, self._port)

    async def _drain(self, deadline: float) -> None:
        """Wait until everything queued has been written / acknowledged, or until `deadline`."""
        loop = asyncio.get_running_loop()
        self._idle_waiter = loop.create_future()
        self._check_idle()
        self._schedule_flush()
        try:
            async with asyncio.timeout_at(deadline):
                await self._idle_waiter
        except TimeoutError:
            _log.warning(
                "disconnect: %d message(s) could not be sent within flush_timeout=%g s",
                len(self._queue) + len(self._inflight),
                self._flush_timeout,
            )
        finally:
            self._idle_waiter = None

    async def _stop_supervisor(self) -> None:
        self._stopping = True
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        if self._reconnecting:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=self._flush_timeout + self._connect_timeout)
        if not done:
            _log.warning("a subscription callback did not return; cancelling it")
            task.cancel()
            await asyncio.wait({task})

    def _finish(self) -> None:
        """After the supervisor stopped: account for what was never sent, end every subscription."""
        link = self._link
        if link is not None:
            link.abort()
        self._link = None
        leftovers = list(self._inflight.values()) + list(self._control) + list(self._queue)
        leftovers += [entry for _sent, batch, _size in self._unconfirmed for entry in batch]
        self._unconfirmed.clear()
        self._unconfirmed_bytes = 0
        self._inflight.clear()
        self._control.clear()
        self._queue.clear()
        self._qos1_queued = 0
        for _topic, _data, _retain, ack in leftovers:
            if ack is None or ack.kind == _USER:
                self._stats.dropped += 1
            if ack is not None and ack.future is not None and not ack.future.done():
                if ack.kind == _USER:
                    ack.future.set_exception(
                        ConnectorError("disconnect() ran before the broker acknowledged this qos=1 publish")
                    )
                    ack.future.exception()  # the caller may be gone; never "exception never retrieved"
                else:
                    ack.future.set_result(None)
        self._release_sync_waiters()
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        for bsub in self._by_filter.values():
            for sub in bsub.subs:
                sub.active = False
        self._by_filter.clear()
        self._by_sid.clear()
        self._index.clear()
        self._syncing.clear()
        self._inbound.clear()

    async def __aenter__(self) -> MqttConnector:
        """`connect()`; reusable after the block ends, but not re-entrant (`ConnectorError`)."""
        if self._in_context:
            raise ConnectorError("MqttConnector is not re-entrant: it is already inside 'async with'")
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

    # ------------------------------------------------------------------ the supervisor task

    async def _supervise(self, link: Link) -> None:
        attempt = 0
        try:
            while True:
                await self._serve(link)
                if self._task is not asyncio.current_task():
                    return  # disconnect() and connect() ran inside a callback: a new supervisor took over
                self._release_sync_waiters()
                if self._stopping:
                    return
                _log.warning("lost the connection to %s:%s; reconnecting", self._hostname, self._port)
                self._reconnecting = True
                try:
                    while True:
                        if await self._pause(self._backoff(attempt)):
                            return
                        attempt += 1
                        try:
                            link = await Link.open(self._settings(), self)
                            break
                        except ConnectorError as exc:
                            level = logging.WARNING if attempt == 1 or attempt % 30 == 0 else logging.DEBUG
                            _log.log(level, "reconnect attempt %d failed: %s", attempt, exc)
                finally:
                    self._reconnecting = False
                if self._stop_requested():
                    link.abort()
                    return
                attempt = 0
                self._stats.reconnects += 1
                _log.info("reconnected to %s:%s", self._hostname, self._port)
                self._adopt(link)
        except Exception:
            _log.exception("internal error in the MQTT connector; it stopped working")
            raise

    def _stop_requested(self) -> bool:
        return self._stopping

    def _backoff(self, attempt: int) -> float:
        cap = min(self._max_delay, self._min_delay * (2.0 ** min(attempt, 32)))
        return random.uniform(self._min_delay, max(cap, self._min_delay))

    async def _pause(self, delay: float) -> bool:
        """Sleep `delay` s unless asked to stop; return whether we must stop."""
        if self._stopping:
            return True
        wake = self._wake
        assert wake is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._stop_requested():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await wake.wait()
            except TimeoutError:
                return self._stop_requested()
        return True

    async def _serve(self, link: Link) -> None:
        """Dispatch inbound messages until `link` is lost (after delivering what it received) or we stop."""
        inbound = self._inbound
        wake = self._wake
        assert wake is not None
        me = asyncio.current_task()
        while self._task is me:
            if inbound:
                if self._closing:
                    inbound.clear()
                    continue
                topic, payload, retain, sids = inbound.popleft()
                await self._dispatch(topic, payload, retain, sids)
                continue
            if link.lost or self._stopping:
                return
            wake.clear()
            if inbound or link.lost or self._stopping:
                continue
            await wake.wait()

    def _adopt(self, link: Link) -> asyncio.Future[None]:
        """A new connection: presence, the sync topic, every live subscription, then the queue."""
        loop = asyncio.get_running_loop()
        self._link = link
        self._max_inflight = max(1, min(_MAX_INFLIGHT, link.receive_maximum))
        self._overflow_logged = False
        self._sync_available = True
        self._markers_unseen.clear()
        sync = link.subscribe(self._sync_topic, 1, _SYNC_SID)
        sync.add_done_callback(self._sync_subscribed)
        online = StatusMessage(status="online", source=self._source)
        presence = _Ack(loop.create_future(), _PRESENCE)
        self._control.append((self._status_topic, encode_payload(online.to_dict()), True, presence))
        if self._by_filter:
            for bsub in list(self._by_filter.values()):
                fut = link.subscribe(bsub.filter, 1, bsub.sid)
                fut.add_done_callback(functools.partial(self._resubscribed, bsub.filter))
            seq = self._send_marker()
            for bsub in self._by_filter.values():
                for sub in bsub.subs:
                    sub._sync_sid = bsub.sid
                    self._syncing[sub] = seq
        self._schedule_flush()
        assert presence.future is not None
        return presence.future

    def _sync_subscribed(self, fut: asyncio.Future[int]) -> None:
        code = fut.result()
        if code != SUBSCRIBE_LOST and code >= 0x80:
            self._sync_unavailable(f"subscribing to {self._sync_topic!r} was refused: {reason_text(code)}")

    def _resubscribed(self, topic_filter: str, fut: asyncio.Future[int]) -> None:
        code = fut.result()
        if code != SUBSCRIBE_LOST and code >= 0x80:
            _log.error(
                "after reconnecting, the broker refused the subscription %r: %s",
                topic_filter,
                reason_text(code),
            )

    def _sync_unavailable(self, why: str) -> None:
        if not self._sync_available:
            return
        self._sync_available = False
        _log.warning(
            "%s; subscribe() can no longer wait for retained messages (allow this client to publish and "
            "subscribe to %r)",
            why,
            self._sync_topic,
        )
        self._syncing.clear()
        self._release_sync_waiters()

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        """Publish a JSON object on `topic`.

        ``qos=0`` only queues the message and returns at once (the hot path; never waits on the network,
        never raises because of an outage). ``qos=1`` returns once the broker acknowledged it, waiting
        across an outage if need be (bound it with `asyncio.timeout`; a message whose caller gave up is
        still sent). Raises `NotConnectedError`, `TopicError`, `PayloadError`, `ValueError` (qos not 0/1),
        or `ConnectorError` if the broker refuses a qos=1 message or `disconnect` runs first.
        """
        if self._state != _RUNNING:
            raise NotConnectedError("publish")
        topics_ok = self._topics_ok
        if topic not in topics_ok:
            validate_topic(topic)
            if len(topics_ok) >= _TOPIC_CACHE:
                topics_ok.clear()
            topics_ok.add(topic)
        data = encode_payload(payload)
        if len(data) > _MAX_PAYLOAD:
            raise PayloadError(f"{len(data)} bytes encoded, more than one MQTT packet can carry")
        queue = self._queue
        if qos == 0:
            if len(queue) >= self._max_buffered:
                # Connected: a producer that never yields to the event loop gets its messages written
                # here (non-blocking); only what the socket cannot take is dropped. In an outage: drop.
                if self._link is not None:
                    self._write_now()
                if len(queue) >= self._max_buffered and not self._overflow():
                    self._stats.published += 1
                    self._stats.dropped += 1
                    return
            queue.append((topic, data, retain, None))
            self._stats.published += 1
            if not self._flush_scheduled and self._link is not None:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
            return
        if qos != 1:
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        loop = asyncio.get_running_loop()
        ack = _Ack(loop.create_future(), _USER)
        if len(queue) >= self._max_buffered:
            self._overflow()
        queue.append((topic, data, retain, ack))
        self._qos1_queued += 1
        self._stats.published += 1
        self._schedule_flush()
        assert ack.future is not None
        await ack.future

    def _overflow(self) -> bool:
        """Drop the oldest queued QoS 0 message; False if there is none (only QoS 1 is queued)."""
        queue = self._queue
        if not self._qos1_queued or queue[0][3] is None:
            queue.popleft()
        else:
            for i, entry in enumerate(queue):
                if entry[3] is None:
                    del queue[i]
                    break
            else:
                return False
        self._stats.dropped += 1
        if not self._overflow_logged:
            self._overflow_logged = True
            _log.warning(
                "outbound buffer full (max_buffered=%d): dropping the oldest QoS 0 messages",
                self._max_buffered,
            )
        return True

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._link is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Hand queued messages to the client: QoS 0 in batches (one socket write each), QoS 1 one by one
        within the bound on messages awaiting PUBACK.

        Flow control: at most `_MAX_UNWRITTEN` batches wait in the client for the socket; the rest stays
        in the queue (where `max_buffered` applies).

        QoS 0 has no acknowledgement, but the broker handles a client's packets in order, so the PUBACK of
        any QoS 1 message sent after a batch proves the broker received the batch. Batches are kept in
        `_unconfirmed` until such a PUBACK (a small QoS 1 "confirm" publish is sent when none is under
        way) and go back to the queue if the connection dies first: messages published after the broker
        died but before the loss was noticed are sent again rather than lost. That memory is bounded
        (`_UNCONFIRMED_BYTES`, the oldest batches are forgotten first).
        """
        self._flush_scheduled = False
        link = self._link
        if link is None or link.lost:
            return
        inflight = self._inflight
        max_inflight = self._max_inflight
        control = self._control
        while control and len(inflight) < max_inflight:
            if not self._send_qos1(link, control[0]):
                return
            control.popleft()
        queue = self._queue
        unconfirmed = self._unconfirmed
        unwritten = self._unwritten
        while unwritten and unwritten[0].is_published():
            unwritten.popleft()
        while queue:
            if queue[0][3] is None:
                if len(unwritten) >= _MAX_UNWRITTEN:
                    break
                batch: list[_Entry] = []
                size = 0
                while queue and queue[0][3] is None and size < _BATCH_BYTES:
                    entry = queue.popleft()
                    batch.append(entry)
                    size += len(entry[1]) + len(entry[0])
                sent = link.send_qos0(batch)
                if sent is None:  # the connection is going away: keep them queued
                    queue.extendleft(reversed(batch))
                    return
                unwritten.append(sent)
                self._sent += 1
                unconfirmed.append((self._sent, batch, size))
                self._unconfirmed_bytes += size
                while self._unconfirmed_bytes > _UNCONFIRMED_BYTES:
                    self._unconfirmed_bytes -= unconfirmed.popleft()[2]
            else:
                if control or len(inflight) >= max_inflight:
                    break
                if not self._send_qos1(link, queue[0]):
                    return
                queue.popleft()
                self._qos1_queued -= 1
        if unconfirmed and not self._confirm_pending:
            self._confirm_pending = True
            confirm: _Entry = (self._sync_topic, b"", False, _Ack(None, _CONFIRM))
            if control or len(inflight) >= max_inflight or not self._send_qos1(link, confirm):
                control.append(confirm)  # sent by a later flush, still after the batches
        if self._idle_waiter is not None:
            self._check_idle()

    def _confirmed(self, upto: int) -> None:
        """The broker has everything handed over before send position `upto`."""
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[0][0] < upto:
            self._unconfirmed_bytes -= unconfirmed.popleft()[2]

    def _write_now(self) -> None:
        """Hand what fits to the client and let it write to the socket now (non-blocking)."""
        link = self._link
        if link is None:
            return
        for _ in range(8):
            before = len(self._queue)
            self._flush()
            link.write_now()
            self._flush()
            if link.lost or len(self._queue) < self._max_buffered // 2 or len(self._queue) >= before:
                return

    def _send_qos1(self, link: Link, entry: _Entry) -> bool:
        mid = link.publish_qos1(entry[0], entry[1], entry[2])
        if mid is None:
            return False
        ack = entry[3]
        assert ack is not None
        self._sent += 1
        ack.sent = self._sent
        self._inflight[mid] = entry
        return True

    def _check_idle(self) -> None:
        waiter = self._idle_waiter
        if waiter is None or waiter.done():
            return
        # Idle: no message from publish() is waiting (queued, in flight or unwritten). During an outage
        # with nothing queued there is nothing to flush, so disconnect() need not wait for a reconnect.
        if self._queue or self._unconfirmed or self._qos1_inflight():
            return
        waiter.set_result(None)

    def _qos1_inflight(self) -> bool:
        return any(entry[3] is not None and entry[3].kind == _USER for entry in self._inflight.values())

    def _send_marker(self) -> int:
        self._marker_seq += 1
        seq = self._marker_seq
        self._control.append((self._sync_topic, str(seq).encode(), False, _Ack(None, _MARKER, seq)))
        self._markers_unseen.append(seq)
        self._schedule_flush()
        if self._sync_timer is None:
            self._sync_timer = asyncio.get_running_loop().call_later(_SYNC_RETRY, self._sync_retry)
        return seq

    def _sync_retry(self) -> None:
        """A broker may drop a marker (Mosquitto does when the client's queue is at max_queued_messages):
        while something still waits for one, send another; any later marker ends the same waits.
        """
        self._sync_timer = None
        link = self._link
        if link is None or link.lost or not self._sync_available:
            return
        if not (self._sync_waiters or self._syncing):
            return
        oldest = self._markers_unseen[0] if self._markers_unseen else None
        if oldest is None or oldest == self._marker_retry_seen:
            self._send_marker()  # the oldest marker has not come back for a whole interval
        else:
            self._marker_retry_seen = oldest
            self._sync_timer = asyncio.get_running_loop().call_later(_SYNC_RETRY, self._sync_retry)

    # ------------------------------------------------------------------ callbacks from the Link

    def _link_message(
        self, link: Link, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int]
    ) -> None:
        self._inbound.append((topic, payload, retain, sids))
        wake = self._wake
        if wake is not None:
            wake.set()

    def _link_published(self, link: Link, mid: int, reason: int) -> None:
        if link is not self._link:
            return
        if mid:
            entry = self._inflight.pop(mid, None)
            if entry is not None:
                ack = entry[3]
                assert ack is not None
                ack.reason = reason
                if self._unconfirmed:
                    self._confirmed(ack.sent)
                self._acked(entry)
        # A QoS 1 slot or some of the unconfirmed window freed (or a batch was written): hand over more.
        if not self._flush_scheduled and (
            self._queue or self._control or self._unconfirmed or self._idle_waiter is not None
        ):
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _acked(self, entry: _Entry) -> None:
        ack = entry[3]
        assert ack is not None
        refused = ack.reason >= 0x80
        if ack.kind == _CONFIRM:
            self._confirm_pending = False  # refused or not, it was answered in order
            return
        if ack.kind == _MARKER:
            if refused:
                self._sync_unavailable(
                    f"publishing to {self._sync_topic!r} was refused: {reason_text(ack.reason)}"
                )
            return
        fut = ack.future
        if refused:
            detail = f"the broker refused the qos=1 publish to {entry[0]!r}: {reason_text(ack.reason)}"
            if ack.kind == _PRESENCE:
                _log.warning("%s", detail)
            elif fut is not None and not fut.done():
                fut.set_exception(ConnectorError(detail))
                return
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _link_lost(self, link: Link) -> None:
        if link is not self._link:
            return
        self._link = None
        # Messages the broker may not have (QoS 1 without PUBACK, QoS 0 batches not confirmed) go back
        # to the front of the queue in the order they were sent: they are sent again after the reconnect.
        back: list[tuple[int, list[_Entry]]] = [(sent, batch) for sent, batch, _size in self._unconfirmed]
        qos1 = 0
        for entry in self._inflight.values():
            ack = entry[3]
            if ack is not None and ack.kind == _USER:
                back.append((ack.sent, [entry]))
                qos1 += 1
        back.sort(key=lambda item: item[0])
        for _sent, entries in reversed(back):
            self._queue.extendleft(reversed(entries))
        self._qos1_queued += qos1
        self._inflight.clear()
        self._unconfirmed.clear()
        self._unconfirmed_bytes = 0
        self._unwritten.clear()
        self._confirm_pending = False
        # Presence, sync markers and confirms are sent afresh on the next connection.
        for _topic, _data, _retain, ack in self._control:
            if ack is not None and ack.future is not None and not ack.future.done():
                ack.future.set_result(None)
        self._control.clear()
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ subscriptions and dispatch

    async def subscribe(self, topic: str, callback: Callback) -> MqttSubscription:
        """Subscribe `callback` to the filter `topic`; returns once every retained message matching it has
        been delivered to `callback` (during an outage: at once, retained state follows the reconnect).

        Raises `NotConnectedError`, `TopicError`, or `SubscriptionRefusedError` if the broker refuses.
        """
        if self._state != _RUNNING:
            raise NotConnectedError("subscribe")
        validate_filter(topic)
        if not callable(callback):
            raise TypeError("callback must be an async callable (topic, payload)")
        link = self._link
        online = link is not None and not link.lost
        bsub = self._by_filter.get(topic)
        if bsub is None:
            bsub = _BrokerSub(topic, self._new_sid())
            self._by_filter[topic] = bsub
            self._by_sid[bsub.sid] = bsub
            self._index.add(topic, bsub)
        elif online:
            # Another SUBSCRIBE for this filter: a new identifier tells its retained replay apart.
            bsub.sid = self._new_sid()
            bsub.sids.append(bsub.sid)
            self._by_sid[bsub.sid] = bsub
        sub = MqttSubscription(self, bsub, callback)
        bsub.subs[sub] = None
        if link is None or link.lost:
            return sub  # the reconnect re-subscribes it and delivers its retained state
        try:
            suback = link.subscribe(topic, 1, bsub.sid)
            waiter: asyncio.Future[None] | None = None
            if self._sync_available:
                seq = self._send_marker()
                self._syncing[sub] = seq
                waiter = asyncio.get_running_loop().create_future()
                self._sync_waiters.append((seq, waiter))
            code = await suback
            if code != SUBSCRIBE_LOST and code >= 0x80:
                sub.active = False
                self._detach(sub)
                raise SubscriptionRefusedError(topic, reason_text(code))
            if waiter is not None:
                await self._wait_synced(waiter, link)
        except asyncio.CancelledError:
            sub.active = False
            await asyncio.shield(self._remove(sub))
            raise
        return sub

    def _new_sid(self) -> int:
        sid = self._next_sid
        while sid in self._by_sid or sid == _SYNC_SID:
            sid = sid + 1 if sid < _MAX_SID else _SYNC_SID + 1
        self._next_sid = sid + 1 if sid < _MAX_SID else _SYNC_SID + 1
        return sid

    async def _wait_synced(self, waiter: asyncio.Future[None], link: Link) -> None:
        if asyncio.current_task() is not self._task:
            await waiter
            return
        # subscribe() called from a callback: the supervisor is busy running that callback, so deliver
        # what arrives from here until the sync marker is through (same order as the supervisor would).
        wake = self._wake
        assert wake is not None
        inbound = self._inbound
        while not waiter.done():
            if inbound and not self._closing:
                await self._dispatch(*inbound.popleft())
                continue
            if link.lost or self._stopping:
                return
            wake.clear()
            if inbound or waiter.done():
                continue
            await wake.wait()

    def _detach(self, sub: MqttSubscription) -> _BrokerSub | None:
        """Forget `sub` locally; return its broker subscription if that has no subscriber left."""
        self._syncing.pop(sub, None)
        bsub = sub._broker
        bsub.subs.pop(sub, None)
        if bsub.subs or self._by_filter.get(bsub.filter) is not bsub:
            return None
        del self._by_filter[bsub.filter]
        for sid in bsub.sids:
            self._by_sid.pop(sid, None)
        self._index.remove(bsub)
        return bsub

    async def _remove(self, sub: MqttSubscription) -> None:
        bsub = self._detach(sub)
        link = self._link
        if bsub is None or link is None or link.lost or self._state != _RUNNING:
            return
        fut = link.unsubscribe(bsub.filter)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await fut
        except TimeoutError:
            _log.warning("no UNSUBACK for %r within %g s", bsub.filter, self._connect_timeout)

    def _release_sync_waiters(self) -> None:
        waiters, self._sync_waiters = self._sync_waiters, []
        for _seq, fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _marker(self, payload: bytes | bytearray) -> None:
        try:
            seq = int(payload)
        except ValueError:
            return
        unseen = self._markers_unseen
        skipped = 0
        while unseen and unseen[0] <= seq:
            skipped += unseen.popleft() != seq
        if skipped:
            _log.warning(
                "the broker dropped %d sync marker(s), so it may also have dropped retained messages "
                "(on Mosquitto, raise max_queued_messages)",
                skipped,
            )
        syncing = self._syncing
        for sub in [s for s, until in syncing.items() if until <= seq]:
            del syncing[sub]
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for until, fut in self._sync_waiters:
            if until <= seq:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((until, fut))
        self._sync_waiters = keep

    def _malformed(
        self, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int], exc: PayloadError
    ) -> None:
        """Count and log a malformed message once, not once per copy.

        A broker may send one copy per matching subscription (Mosquitto does); the copies of one
        publish arrive back to back with the same bytes and disjoint subscription identifiers.
        """
        last = self._last_malformed
        if last is not None and sids and last[0] == topic and last[1] == payload and last[2] == retain:
            seen = last[3]
            if seen.isdisjoint(sids):
                seen.update(sids)
                return
        self._last_malformed = (topic, payload, retain, set(sids))
        self._stats.malformed += 1
        _log.warning("skipped a malformed message on %r: %s", topic, exc.problem)

    async def _dispatch(
        self, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int]
    ) -> None:
        if topic == self._sync_topic:
            self._marker(payload)
            return
        # A message flagged retained is a replay caused by a (re)subscription: it goes only to the
        # subscriptions still waiting for the retained state of that very SUBSCRIBE (DESIGN §7.2).
        replay = retain and self._sync_available
        targets: list[MqttSubscription]
        if sids:
            by_sid = self._by_sid
            if replay:
                syncing = self._syncing
                targets = [
                    sub
                    for sid in sids
                    if sid in by_sid
                    for sub in by_sid[sid].subs
                    if sub._sync_sid == sid and sub in syncing
                ]
            else:
                targets = [sub for sid in sids if sid in by_sid for sub in by_sid[sid].subs]
                if len(sids) > 1:
                    targets = list(dict.fromkeys(targets))
        else:
            bsubs = self._index.match(topic)
            syncing = self._syncing
            targets = [sub for bsub in bsubs for sub in bsub.subs if not replay or sub in syncing]
        if not targets:
            return
        try:
            data = decode_payload(payload)
        except PayloadError as exc:
            self._malformed(topic, payload, retain, sids, exc)
            return
        self._last_malformed = None
        stats = self._stats
        first = True
        for sub in targets:
            if not sub.active or self._closing:
                continue
            if not first:
                data = decode_payload(payload)  # a fresh dict for each callback
            first = False
            stats.delivered += 1
            try:
                await sub.callback(topic, data)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                stats.callback_errors += 1
                _log.error("subscription callback for %r was cancelled", topic)
            except Exception:
                stats.callback_errors += 1
                _log.exception("subscription callback for %r raised", topic)


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, not {value}")


def _check_float(name: str, value: object, low: float, *, strict: bool) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, not {value}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'more than' if strict else 'at least'} {low:g}, not {value:g}")
