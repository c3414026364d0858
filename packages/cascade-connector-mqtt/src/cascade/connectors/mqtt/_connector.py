"""`MqttConnector`: the production Cascade connector over MQTT 5 (see docs/mqtt.md for the design).

A thin facade over its layers: `MqttSettings` (checked, frozen), a `Session` per ``connect()`` holding
the outbound pipeline (`_outbound`), the broker subscriptions (`_subscriptions`) and the inbound
queue, the transport (`_client.Link`), and the shared core (state machine, backoff, delivery). One
long-lived *supervisor* task per session dispatches inbound messages to callbacks one at a time and
reconnects after a loss; the lifecycle lives in `_lifecycle`.
"""

from __future__ import annotations

__all__ = ["MqttConnector", "MqttSubscription"]

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Mapping
from typing import Any, Final

from cascade.connectors.protocol import (
    Callback,
    ConnectorStats,
    NotConnectedError,
    PayloadError,
    SubscriptionRefusedError,
    encode_payload,
    validate_filter,
)
from cascade.connectors.protocol.core import (
    ConnectOnEnter,
    ConnectorState,
    ContextGuard,
    Outgoing,
    Presence,
    StateMachine,
    TopicCache,
    check_callback,
)

from ._client import SUBSCRIBE_LOST, Link, reason_text
from ._lifecycle import Lifecycle
from ._link_types import DEFAULT_MAX_INBOUND_PACKET_SIZE
from ._outbound import Ack, AckKind
from ._session import Session
from ._settings import DEFAULT_PRESENCE_EXPIRY, MqttSettings
from ._subscriptions import MqttSubscription
from ._url import InvalidUrlError, parse_url, redact_url

_log = logging.getLogger("cascade.connectors.mqtt")

_MAX_PAYLOAD: Final = 268_435_455 - 65_535 - 16  # what still fits in one MQTT packet with the topic
_CONNECTED: Final = ConnectorState.CONNECTED
_RECONNECTING: Final = ConnectorState.RECONNECTING


class MqttConnector(Lifecycle, ConnectOnEnter):
    """A Cascade `Connector` over MQTT 5 (Mosquitto 2 or any MQTT 5 broker), built on aiomqtt.

    - `hostname`, `port`: the broker. `username`/`password`: credentials (never shown in repr, logs or
      errors). `tls`: an `ssl.SSLContext`, ``True`` (system CAs, host name verified) or ``None``.
    - `client_id`: the MQTT client id; default unique per instance. `source`: the name used for presence
      on ``cascade/status/{source}``; default ``{hostname}-{pid}-{random}``, unique per instance.
    - `keepalive`: seconds between keepalive pings (a dead link is detected after 1.5x that).
    - `max_buffered`: messages accepted by `publish` and not yet handed to the broker; when full, the
      oldest QoS 0 message is dropped and counted in ``stats.dropped``. QoS 1 is never dropped.
    - `max_inbound`: messages received and not yet handed to callbacks. Beyond it the oldest QoS 0
      message is dropped and counted in ``stats.dropped_inbound``; QoS 1 is held by the broker (we
      announce it as our Receive Maximum and acknowledge a message only after its callbacks ran).
    - `max_inbound_packet_size`: bytes; the Maximum Packet Size we announce (default 1 MiB): the
      broker drops larger messages for us; a larger packet ends the connection.
    - `presence_expiry`: seconds the broker keeps our retained ``offline`` presence (MQTT 5 message
      expiry, default 24 h; None: forever), so a source that is gone disappears from ``status``.
    - `reconnect_min_delay`, `reconnect_max_delay`: seconds; capped exponential backoff with full jitter.
    - `connect_timeout`: seconds for each of TCP connect, TLS handshake and CONNACK (and other waits on
      the broker, such as UNSUBACK). `flush_timeout`: seconds `disconnect` spends sending what is queued.

    The checked values are `settings` (an `MqttSettings`). Raises `ValueError` (or `TopicError` for
    `source`) for invalid settings. Use as ``async with MqttConnector(...) as connector:`` or call
    `connect`/`disconnect`.
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
        max_inbound: int = 10_000,
        max_inbound_packet_size: int = DEFAULT_MAX_INBOUND_PACKET_SIZE,
        presence_expiry: float | None = DEFAULT_PRESENCE_EXPIRY,
        reconnect_min_delay: float = 0.1,
        reconnect_max_delay: float = 1.0,
        connect_timeout: float = 5.0,
        flush_timeout: float = 5.0,
    ) -> None:
        settings = MqttSettings(
            hostname,
            port,
            username=username,
            password=password,
            client_id=client_id,
            tls=tls,
            keepalive=keepalive,
            source=source,
            max_buffered=max_buffered,
            max_inbound=max_inbound,
            max_inbound_packet_size=max_inbound_packet_size,
            presence_expiry=presence_expiry,
            reconnect_min_delay=reconnect_min_delay,
            reconnect_max_delay=reconnect_max_delay,
            connect_timeout=connect_timeout,
            flush_timeout=flush_timeout,
        )
        self._init(settings)

    def _init(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._presence = Presence(settings.source)
        self._stats = ConnectorStats()
        self._machine = StateMachine()
        self._lock: asyncio.Lock | None = None
        self._guard = ContextGuard("MqttConnector")
        self._topics = TopicCache()
        self._known_topics = self._topics.known  # the hot path's membership test
        self._session: Session | None = None
        self._out = self._new_session().outbound  # replaced at each connect()

    @classmethod
    def from_settings(cls, settings: MqttSettings) -> MqttConnector:
        """A connector with these (already checked) `settings`."""
        connector = cls.__new__(cls)
        connector._init(settings)
        return connector

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConnector:
        """Build a connector from ``mqtt://[user[:password]@]host[:port][?option=value&...]``.

        ``mqtts://`` enables TLS with certificate and host name verification (port 8883 by default);
        its options ``ca_file``, ``cert_file`` and ``key_file`` name PEM files. Other options:
        ``client_id``, ``source``, ``keepalive``, ``max_buffered``, ``max_inbound``,
        ``max_inbound_packet_size``, ``presence_expiry`` (seconds, or ``none``), ``reconnect_min_delay``,
        ``reconnect_max_delay``, ``connect_timeout``, ``flush_timeout``. Keyword `overrides` win over the
        URL. Raises `InvalidUrlError` (a `ValueError`) naming the problem; the password is never shown.
        """
        options = parse_url(url)
        options.update(overrides)
        try:
            settings = MqttSettings(**options)
        except ValueError as exc:  # a bad option value: report it against the (redacted) URL
            raise InvalidUrlError(redact_url(url), str(exc)) from exc
        return cls.from_settings(settings)

    # ------------------------------------------------------------------ public properties

    @property
    def settings(self) -> MqttSettings:
        """The connector's checked, frozen settings (the password is not in its repr)."""
        return self._settings

    @property
    def source(self) -> str:
        """The presence name (``cascade/status/{source}``)."""
        return self._settings.source

    @property
    def client_id(self) -> str:
        """The MQTT client id."""
        return self._settings.client_id

    @property
    def state(self) -> ConnectorState:
        """Where the connector is in its lifecycle."""
        return self._machine.state

    @property
    def stats(self) -> ConnectorStats:
        """A snapshot of the counters (published, delivered, dropped, malformed, callback_errors,
        reconnects).
        """
        return dataclasses.replace(self._stats)

    @property
    def connected(self) -> bool:
        """Whether a connection to the broker is up right now (False during an outage)."""
        session = self._session
        return session is not None and session.online

    @property
    def _link(self) -> Link | None:
        """The current connection (the transport's `Link`), None during an outage (for tests)."""
        session = self._session
        return session.link if session is not None else None

    def __repr__(self) -> str:
        state = self._machine.state
        shown = "reconnecting" if state is _CONNECTED and not self.connected else state.value
        s = self._settings
        user = f", username={s.username!r}" if s.username is not None else ""
        return (
            f"MqttConnector({s.hostname!r}, {s.port}{user}, tls={s.tls is not None}, "
            f"client_id={s.client_id!r}, source={s.source!r}, {shown})"
        )

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        """Publish a JSON object on `topic`.

        ``qos=0`` only queues the message and returns at once (the hot path; never waits on the network,
        never raises because of an outage). ``qos=1`` returns once the broker acknowledged it, waiting
        across an outage if need be (bound it with `asyncio.timeout`; a message whose caller gave up is
        still sent). Raises `NotConnectedError` (also when `disconnect` runs before the broker
        acknowledged a qos=1 message), `TopicError`, `PayloadError` (also for a message larger than the
        broker's Maximum Packet Size, once known), `ValueError` (qos not 0/1), or `ConnectorError` if
        the broker refuses a qos=1 message (or closed the connection twice for it: quarantined).
        """
        state = self._machine.state
        if state is not _CONNECTED and state is not _RECONNECTING:
            raise NotConnectedError("publish")
        if topic not in self._known_topics:
            self._topics.add(topic)
        data = encode_payload(payload)
        if len(data) > _MAX_PAYLOAD:
            raise PayloadError(f"{len(data)} bytes encoded, more than one MQTT packet can carry")
        out = self._out
        if out.max_packet_size is not None and out.too_large(topic, data, qos):
            raise PayloadError(
                f"{len(data)} bytes encoded for {topic!r}: more than the broker's Maximum Packet Size "
                f"({out.max_packet_size} bytes) allows; send smaller messages"
            )
        queue = out.queue
        if qos == 0:
            if len(queue) >= out.buffer.max_buffered:
                # Connected: a producer that never yields to the event loop gets its messages written
                # here (non-blocking); only what the socket cannot take is dropped. In an outage: drop.
                if out.wire is not None:
                    out.write_now()
                if len(queue) >= out.buffer.max_buffered and not out.buffer.make_room():
                    self._stats.published += 1
                    self._stats.dropped += 1
                    return
            queue.append(Outgoing(topic, data, retain, None))
            self._stats.published += 1
            if out.flush_handle is None and out.wire is not None:
                out.flush_handle = asyncio.get_running_loop().call_soon(out.flush)
            return
        if qos != 1:
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        out.buffer.append_qos1(Outgoing(topic, data, retain, Ack(future, AckKind.USER)))
        self._stats.published += 1
        out.schedule()
        await future

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, topic: str, callback: Callback) -> MqttSubscription:
        """Subscribe `callback` (a function or coroutine function) to the filter `topic`; returns once
        every retained message matching it has been delivered to `callback` (during an outage: at once,
        retained state follows the reconnect).

        Raises `NotConnectedError`, `TopicError`, `TypeError` (not callable), or
        `SubscriptionRefusedError` if the broker refuses.
        """
        state = self._machine.state
        session = self._session
        if (state is not _CONNECTED and state is not _RECONNECTING) or session is None:
            raise NotConnectedError("subscribe")
        validate_filter(topic)
        check_callback(callback)
        link = session.link
        online = link is not None and not link.lost
        registry = session.registry
        sub = registry.add(self, topic, callback, online)
        if link is None or link.lost:
            return sub  # the reconnect re-subscribes it and delivers its retained state
        try:
            suback = link.subscribe(topic, 1, sub._broker.sid)
            waiter = registry.wait_for_replay(sub)
            code = await suback
            if code != SUBSCRIBE_LOST and code >= 0x80:
                sub.active = False
                registry.detach(sub)
                raise SubscriptionRefusedError(topic, reason_text(code))
            if waiter is not None:
                if asyncio.current_task() is session.task:
                    # subscribe() called from a callback: the supervisor is busy running that callback,
                    # so deliver what arrives until the sync marker is through (same loop, same order).
                    await self._pump(session, link, waiter)
                else:
                    await waiter
        except asyncio.CancelledError:
            sub.active = False
            await asyncio.shield(self._remove(sub))
            raise
        return sub

    async def _remove(self, sub: MqttSubscription) -> None:
        session = self._session
        if session is None:
            return
        bsub = session.registry.detach(sub)
        link = session.link
        state = self._machine.state
        if bsub is None or link is None or link.lost:
            return
        if state is not _CONNECTED and state is not _RECONNECTING:
            return
        fut = link.unsubscribe(bsub.filter)
        timeout = self._settings.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            _log.warning("no UNSUBACK for %r within %g s", bsub.filter, timeout)
