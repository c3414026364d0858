"""`MqttConnector`: the production Cascade connector over MQTT 5 or 3.1.1 (see docs/mqtt.md for the design).

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
import functools
import logging
import ssl
from collections.abc import Mapping, Sequence
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
from ._dialer import Dialer
from ._lifecycle import Lifecycle
from ._link_types import DEFAULT_MAX_INBOUND_PACKET_SIZE
from ._outbound import Ack, AckKind
from ._probe import RetainedProbe
from ._session import Session
from ._settings import DEFAULT_PRESENCE_EXPIRY, MqttSettings
from ._subscriptions import MqttSubscription
from ._url import InvalidUrlError, parse_url, redact_url

_log = logging.getLogger("cascade.connectors.mqtt")

_REPLAY_WAIT: Final = 10.0  # s subscribe() waits at most for the sync marker behind its SUBSCRIBE
_MAX_PAYLOAD: Final = 268_435_455 - 65_535 - 16  # what still fits in one MQTT packet with the topic
_EAGER_WRITE: Final = 512  # QoS 0 messages queued in one turn of the event loop before publish() writes
_CONNECTED: Final = ConnectorState.CONNECTED
_RECONNECTING: Final = ConnectorState.RECONNECTING


class MqttConnector(Lifecycle, ConnectOnEnter):
    """A Cascade `Connector` over MQTT 5 or 3.1.1 (Mosquitto, RabbitMQ, EMQX ...), built on aiomqtt.

    - `hostname`, `port`: the broker. `addresses`: several brokers (a cluster) as ``[(host, port), ...]``
      instead, tried in order at the first connect and in turn after a loss.
    - `username`/`password`: credentials (never shown in repr, logs or
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
    - `protocol`: ``"auto"`` (MQTT 5, or 3.1.1 when the broker refuses 5; the result is kept for
      reconnects and shown by `protocol_version`), ``"5"`` or ``"3.1.1"``.
    - `sync_topic`: the private topic of the "retained state delivered" markers; default automatic
      (``$cascade/sync/{client}``, or ``cascade/_sync/{client}`` on MQTT 3.1.1 and when `$` is refused).

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
        protocol: str = "auto",
        addresses: Sequence[tuple[str, int]] | None = None,
        sync_topic: str | None = None,
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
            protocol=protocol,
            addresses=addresses,
            sync_topic=sync_topic,
        )
        self._init(settings)

    def _init(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._dialer = Dialer(settings)
        self._presence = Presence(settings.source)
        self._stats = ConnectorStats()
        self._machine = StateMachine()
        self._lock: asyncio.Lock | None = None
        self._guard = ContextGuard("MqttConnector")
        self._topics = TopicCache()
        self._known_topics = self._topics.known  # the hot path's membership test
        self._session: Session | None = None
        self._out = self._new_session().outbound  # replaced at each connect()
        self._probe = RetainedProbe(_log)  # once per connector: retained replay to wildcards (_probe.py)

    @classmethod
    def from_settings(cls, settings: MqttSettings) -> MqttConnector:
        """A connector with these (already checked) `settings`."""
        connector = cls.__new__(cls)
        connector._init(settings)
        return connector

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConnector:
        """Build a connector from ``mqtt://[user[:password]@]host[:port][,host2[:port2]...][?option=value]``.

        Several hosts (comma-separated) become `addresses`, tried in turn.
        ``mqtts://`` enables TLS with certificate and host name verification (port 8883 by default);
        its options ``ca_file``, ``cert_file`` and ``key_file`` name PEM files. Other options:
        ``protocol`` (``auto``, ``5``, ``3.1.1``), ``sync_topic``, ``client_id``, ``source``, ``keepalive``,
        ``max_buffered``, ``max_inbound``, ``max_inbound_packet_size``, ``presence_expiry`` (seconds, or
        ``none``), ``reconnect_min_delay``,
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
    def protocol_version(self) -> str | None:
        """The MQTT version of the latest connection, ``"5"`` or ``"3.1.1"`` (None before the first)."""
        version = self._dialer.version
        return None if version is None else version.value

    @property
    def broker_address(self) -> tuple[str, int]:
        """(host, port) of the broker of the latest connection (the first address before any)."""
        return self._dialer.address

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
            if out.wire is not None:
                if len(queue) >= _EAGER_WRITE:
                    # A producer that has not yielded to the event loop for this many messages: write
                    # them now (non-blocking), so that the broker works while the producer goes on.
                    out.write_now()
                elif out.flush_handle is None:
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
            # Without subscription ids (MQTT 3.1.1): the covering filter that serves `topic` at the broker.
            target = topic if link.subscription_ids else registry.cover(topic)
            suback = link.subscribe(target, 1, sub._broker.sid)
            waiter = registry.wait_for_replay(sub)
            if self._probe.wanted(session, link, topic):
                self._probe.start(session, link)  # in the background: never delays this subscribe()
            code = await suback
            if code != SUBSCRIBE_LOST and code >= 0x80:
                sub.active = False
                registry.detach(sub)
                if not link.subscription_ids and not link.lost:
                    await self._reconcile(session, link)
                raise SubscriptionRefusedError(topic, reason_text(code))
            if not link.subscription_ids and not link.lost:
                await self._reconcile(session, link)
            if waiter is not None:
                await self._await_replay(session, link, waiter)
        except asyncio.CancelledError:
            sub.active = False
            await asyncio.shield(self._remove(sub))
            raise
        return sub

    async def _await_replay(self, session: Session, link: Link, waiter: asyncio.Future[None]) -> None:
        """Wait for the sync marker behind a SUBSCRIBE, at most `_REPLAY_WAIT` s (one warning if not)."""
        loop = asyncio.get_running_loop()
        late: list[bool] = []
        timer = loop.call_later(_REPLAY_WAIT, _release, waiter, late)
        try:
            if asyncio.current_task() is session.task:
                # subscribe() called from a callback: the supervisor is busy running that callback,
                # so deliver what arrives until the sync marker is through (same loop, same order).
                await self._pump(session, link, waiter)
            else:
                await waiter
        finally:
            timer.cancel()
        if late and not link.lost and session.registry.replay_timeouts == 0:
            session.registry.replay_timeouts += 1
            _log.warning(
                "no sync marker came back through %r within %g s: subscribe() returned without knowing "
                "that the retained state was delivered (docs/brokers.md)",
                session.registry.sync_topic,
                _REPLAY_WAIT,
            )

    async def _reconcile(self, session: Session, link: Link) -> None:
        """Bring the broker's filters to the covering set of the local ones (connections without ids):
        SUBSCRIBE what is missing, then UNSUBSCRIBE what is no longer needed (UNSUBACKs bounded).
        """
        add, remove = session.registry.reconcile()
        for topic_filter in add:
            fut = link.subscribe(topic_filter, 1, None)
            fut.add_done_callback(functools.partial(_log_refused, topic_filter))
        await self._unsubscribe(link, remove)

    async def _unsubscribe(self, link: Link, filters: Sequence[str]) -> None:
        futures = [link.unsubscribe(topic_filter) for topic_filter in filters]
        if not futures:
            return
        timeout = self._settings.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*futures)
        except TimeoutError:
            _log.warning("no UNSUBACK for %s within %g s", ", ".join(map(repr, filters)), timeout)

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
        if not link.subscription_ids:
            await self._reconcile(session, link)
            return
        await self._unsubscribe(link, [bsub.filter])


def _release(waiter: asyncio.Future[None], late: list[bool]) -> None:
    if not waiter.done():
        late.append(True)
        waiter.set_result(None)


def _log_refused(topic_filter: str, fut: asyncio.Future[int]) -> None:
    code = fut.result()
    if code != SUBSCRIBE_LOST and code >= 0x80:
        _log.error("the broker refused the subscription %r: %s", topic_filter, reason_text(code))
