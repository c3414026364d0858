"""The only module that imports aiomqtt (and, through it, paho-mqtt).

A `Link` is ONE MQTT 5 connection: an ``aiomqtt.Client`` subclass whose paho callbacks are rerouted to
the owning connector. aiomqtt does the connecting (in an executor thread), wires paho's socket into the
asyncio loop (reader, writer, keepalive task) and disconnects; everything on the hot path talks to the
paho client directly, without one awaitable per message:

- ``send_qos0`` builds the PUBLISH packets of a whole batch of QoS 0 messages itself and queues them as
  ONE paho packet (one ``send`` syscall instead of one per message: with TCP_NODELAY each small send
  would be its own TCP segment); paho asks aiomqtt's writer callback to write it on the next loop
  iteration and reports the write through ``on_publish`` with message id 0.
- ``publish_qos1`` uses paho's ``publish`` (paho tracks the PUBACK); QoS 1 messages are the only ones
  that take paho message ids, so an id in ``on_publish`` names exactly one QoS 1 message in flight.
- inbound: paho's socket is wrapped in `_BufferedSocket` (one large ``recv`` serves paho's many tiny
  reads, and its ``pending()`` keeps aiomqtt's reader callback going until the buffer is empty), and
  PUBLISH packets are parsed by `Link._handle_publish` (topic, packet id, subscription identifiers,
  payload) instead of paho's decoder, which builds an ``MQTTMessage`` and MQTT 5 ``Properties`` object
  per message. The owner gets (topic, payload, retain flag, subscription identifiers); nothing here may
  raise (paho would re-raise into aiomqtt's reader, which would then consider the connection lost).

Pinned to aiomqtt 2.5 (``aiomqtt>=2.5,<3``, which pins paho-mqtt 2.x): this module relies on aiomqtt's
private ``_client`` (the paho client), ``_connected``/``_disconnected`` futures, ``_misc_task`` and
``_on_*`` callback methods, and on paho's ``_sock``, ``_in_packet``, ``_packet_queue``,
``_handle_publish`` and ``_send_puback``. The package tests exercise every one of them against Mosquitto.
"""

from __future__ import annotations

__all__ = [
    "Link",
    "LinkOwner",
    "LinkSettings",
    "Sent",
    "SUBSCRIBE_LOST",
    "reason_text",
]

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttCodeError, MqttConnectError
from cascade.connectors.protocol import ConnectionFailedError
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

_log = logging.getLogger("cascade.connectors.mqtt")
_paho_log = logging.getLogger("cascade.connectors.mqtt.paho")

SUBSCRIBE_LOST: Final = -1
"""The "reason code" a pending SUBSCRIBE/UNSUBSCRIBE resolves to when its connection is lost."""

# CONNACK reason codes meaning "who you are is not accepted": MQTT 3.1.1 (4 bad user name or password,
# 5 not authorised) and MQTT 5 (0x86 bad user name or password, 0x87 not authorized, 0x8C bad
# authentication method).
_AUTH_CODES: Final = frozenset({4, 5, 0x86, 0x87, 0x8C})

# Server "Receive Maximum" when the CONNACK does not say (MQTT 5 default).
_DEFAULT_RECEIVE_MAXIMUM: Final = 65535


_PUBLISH: Final = bytes((paho.PUBLISH,))
_PUBLISH_RETAIN: Final = bytes((paho.PUBLISH | 1,))
_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))


def _varint(n: int) -> bytes:
    """MQTT's variable byte integer (the remaining length of a packet)."""
    if n < 128:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        if n:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


_READ_SIZE: Final = 65536

# MQTT 5 PUBLISH properties: identifier -> how its value is encoded.
_BYTE, _INT2, _INT4, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PUBLISH_PROPERTIES: Final = {
    0x01: _BYTE,  # payload format indicator
    0x02: _INT4,  # message expiry interval
    0x03: _STRING,  # content type
    0x08: _STRING,  # response topic
    0x09: _BINARY,  # correlation data
    0x0B: _VARINT,  # subscription identifier
    0x23: _INT2,  # topic alias
    0x26: _PAIR,  # user property
}


def _read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("variable byte integer longer than 4 bytes")


def _subscription_ids(data: bytes | bytearray, pos: int, end: int) -> list[int] | None:
    """The subscription identifiers among the properties in ``data[pos:end]``; None if something is
    unexpected (a topic alias, an unknown property): then paho's own decoder handles the packet.
    """
    sids: list[int] = []
    while pos < end:
        ident = data[pos]
        pos += 1
        kind = _PUBLISH_PROPERTIES.get(ident)
        if kind is None or ident == 0x23:
            return None
        if kind == _VARINT:
            sid, pos = _read_varint(data, pos)
            sids.append(sid)
        elif kind == _BYTE:
            pos += 1
        elif kind == _INT2:
            pos += 2
        elif kind == _INT4:
            pos += 4
        elif kind == _PAIR:
            pos += 2 + int.from_bytes(data[pos : pos + 2], "big")
            pos += 2 + int.from_bytes(data[pos : pos + 2], "big")
        else:
            pos += 2 + int.from_bytes(data[pos : pos + 2], "big")
    if pos != end:
        return None
    return sids


class _BufferedSocket:
    """Wraps paho's socket so that its many tiny reads (1 byte of command, 1 per length byte, then the
    body) are served from one large ``recv``; ``pending()`` makes aiomqtt's reader callback keep calling
    paho until the buffer is empty (it does that for TLS sockets already). Everything else is delegated.
    """

    __slots__ = ("_buffer", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        pos = self._pos
        buffer = self._buffer
        if pos >= len(buffer):
            data: bytes = self._sock.recv(_READ_SIZE)  # may raise BlockingIOError / SSLWantReadError
            if len(data) <= size:
                return data
            self._buffer = buffer = data
            pos = 0
        end = pos + size
        if end >= len(buffer):
            self._buffer = b""
            self._pos = 0
            return buffer[pos:] if pos else buffer
        self._pos = end
        return buffer[pos:end]

    def pending(self) -> int:
        inner = self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0
        return len(self._buffer) - self._pos + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Sent(Protocol):
    """What `Link.send_qos0` returns (paho's ``MQTTMessageInfo``)."""

    def is_published(self) -> bool:
        """Whether paho wrote the batch to the socket."""
        ...


class LinkOwner(Protocol):
    """The callbacks a `Link` makes into its owner (all on the event loop thread, none may raise)."""

    def _link_message(
        self, link: Link, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int]
    ) -> None:
        """An inbound PUBLISH."""
        ...

    def _link_published(self, link: Link, mid: int, reason: int) -> None:
        """From paho's on_publish: a QoS 0 batch was written (mid 0), or a QoS 1 PUBACK arrived."""
        ...

    def _link_lost(self, link: Link) -> None:
        """The connection is gone (any cause, including our own DISCONNECT)."""
        ...


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything needed to open one connection. `password` never leaves this object (no repr)."""

    hostname: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None
    keepalive: int
    connect_timeout: float
    will_topic: str
    will_payload: bytes

    def __repr__(self) -> str:
        return (
            f"LinkSettings(hostname={self.hostname!r}, port={self.port}, client_id={self.client_id!r}, "
            f"username={self.username!r}, tls={self.tls is not None})"
        )


def reason_text(code: int) -> str:
    """A readable name for an MQTT 5 reason code (``"Not authorized (0x87)"``)."""
    try:
        name = ReasonCode(PacketTypes.SUBACK, identifier=code).getName()
    except Exception:  # unknown codes are just shown as numbers
        return f"reason code 0x{code:02X}"
    return f"{name} (0x{code:02X})"


class _ClosedBeforeConnack(aiomqtt.MqttError):
    """The broker closed the TCP connection before answering CONNECT."""


class _Client(aiomqtt.Client):
    """aiomqtt's client with paho's callbacks routed to a `Link` instead of aiomqtt's own queues."""

    def __init__(self, link: Link, **kwargs: Any) -> None:
        self._link = link
        self.connack_properties: Properties | None = None
        super().__init__(**kwargs)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.connack_properties = properties
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if not self._connected.done():
            # aiomqtt would ignore this and wait for a CONNACK that can no longer come.
            self._connected.set_exception(_ClosedBeforeConnack(f"closed before CONNACK ({reason_code})"))
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None = None,
    ) -> None:
        self._link._resolve(mid, reason_codes[0].value if reason_codes else 0x80)

    def _on_unsubscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None = None,
    ) -> None:
        self._link._resolve(mid, reason_codes[0].value if reason_codes else 0)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._link._message(message)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self._link._published(mid, reason_code)


class Link:
    """One MQTT 5 connection. Create with `Link.open`; it is never reused after it is lost."""

    def __init__(self, settings: LinkSettings, owner: LinkOwner) -> None:
        self._settings = settings
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._prefixes: dict[str, bytes] = {}
        self.lost = False
        self.closing = False
        self.receive_maximum = _DEFAULT_RECEIVE_MAXIMUM
        self.subscription_ids = True
        will = aiomqtt.Will(settings.will_topic, settings.will_payload, qos=1, retain=True)
        tls = settings.tls
        self._client = _Client(
            self,
            hostname=settings.hostname,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            identifier=settings.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            keepalive=settings.keepalive,
            timeout=settings.connect_timeout,
            tls_context=tls,
            # A context that does not check host names must not have paho check them either.
            tls_insecure=True if tls is not None and not tls.check_hostname else None,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            logger=_paho_log,
            # Our own bound on QoS 1 in flight is the only one: paho must never hold messages back.
            max_inflight_messages=0,
        )
        self._paho: paho.Client = self._client._client
        self._paho.connect_timeout = settings.connect_timeout
        # paho looks the handler up on the instance: inbound PUBLISH packets take the lean path below.
        self._paho._handle_publish = self._handle_publish  # type: ignore[method-assign]

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    async def open(cls, settings: LinkSettings, owner: LinkOwner) -> Link:
        """Connect; return once the broker accepted (CONNACK). Raises `ConnectionFailedError`.

        Bounded by about `connect_timeout` for each of TCP connect, TLS handshake and CONNACK. If the
        awaiting task is cancelled, the attempt is abandoned and any connection it made is closed.
        """
        link = cls(settings, owner)
        attempt = asyncio.ensure_future(link._client.__aenter__())
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            link._abandon()
            attempt.add_done_callback(link._reap_abandoned)
            raise
        except (aiomqtt.MqttError, OSError) as exc:  # OSError: from aiomqtt setting socket options
            link._close_socket()
            raise _connect_error(exc, settings) from exc
        link._started()
        return link

    def _abandon(self) -> None:
        # Cancelled mid-connect (Ctrl-C, a timeout): close now, since the loop may be closing and never
        # reach _reap_abandoned, and cut paho's socket callbacks into the loop, since paho's connect may
        # still be running in its executor thread and paho closes any socket it ends up with from
        # __del__, possibly after the loop is closed ("Event loop is closed").
        self._paho.on_socket_open = None
        self._paho.on_socket_close = None
        self._paho.on_socket_register_write = None
        self._paho.on_socket_unregister_write = None
        self._close_socket()

    def _reap_abandoned(self, attempt: asyncio.Future[Any]) -> None:
        if not attempt.cancelled():
            attempt.exception()  # retrieved: nobody is waiting for this attempt any more
        self._close_socket()

    def _started(self) -> None:
        sock = self._paho._sock
        if sock is not None and not isinstance(sock, _BufferedSocket):
            self._paho._sock = _BufferedSocket(sock)
        props = self._client.connack_properties
        if props is not None:
            self.receive_maximum = int(getattr(props, "ReceiveMaximum", _DEFAULT_RECEIVE_MAXIMUM))
            self.subscription_ids = bool(getattr(props, "SubscriptionIdentifierAvailable", 1))
        self._client._disconnected.add_done_callback(self._on_disconnected)

    def _on_disconnected(self, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled():
            fut.exception()  # mark retrieved: an abrupt loss is normal here, not an unhandled error
        self._mark_lost()

    def _mark_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result(SUBSCRIBE_LOST)
        self._owner._link_lost(self)

    async def close(self, grace: float) -> None:
        """Send DISCONNECT (the broker discards the last will) and wait up to `grace` s for it."""
        if self.lost:
            return
        self.closing = True
        try:
            async with asyncio.timeout(grace):
                await self._client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            _log.debug(
                "clean disconnect from %s:%s failed: %s", self._settings.hostname, self._settings.port, exc
            )
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without DISCONNECT (the broker will publish the last will)."""
        self._close_socket()
        self._mark_lost()

    def _close_socket(self) -> None:
        sock = self._paho.socket()
        # Detach it from paho: otherwise paho closes it again from __del__, possibly after the event
        # loop is closed, and aiomqtt's close callback then prints "Event loop is closed".
        self._paho._sock = None
        if sock is not None:
            fd = sock.fileno()
            if fd >= 0:
                self._loop.remove_reader(fd)
                self._loop.remove_writer(fd)
            with contextlib.suppress(OSError):
                sock.close()
        misc = self._client._misc_task
        if misc is not None and not misc.done():
            misc.cancel()

    # ------------------------------------------------------------------ outbound

    def send_qos0(self, batch: Sequence[tuple[str, bytes, bool, object]]) -> Sent | None:
        """Queue QoS 0 PUBLISH packets for `batch` ((topic, payload, retain, _) tuples) as ONE socket
        write. Returns a handle whose ``is_published()`` says when it was written, or None if the
        connection is gone. Never blocks.

        The packets are built here (MQTT 5, no properties) and queued with paho's ``_packet_queue``, in
        order with paho's own packets. paho reports the write through on_publish with message id 0,
        which paho never assigns, so it cannot be mistaken for a QoS 1 acknowledgement.
        """
        client = self._paho
        if self.lost or client.socket() is None:
            return None
        prefixes = self._prefixes
        parts: list[bytes] = []
        append = parts.append
        for topic, payload, retain, _ in batch:
            prefix = prefixes.get(topic)
            if prefix is None:
                encoded = topic.encode("utf-8")
                prefix = len(encoded).to_bytes(2, "big") + encoded + b"\x00"  # topic, empty properties
                if len(prefixes) >= 4096:
                    prefixes.clear()
                prefixes[topic] = prefix
            append(_PUBLISH_RETAIN if retain else _PUBLISH)
            append(_varint(len(prefix) + len(payload)))
            append(prefix)
            append(payload)
        info = paho.MQTTMessageInfo(0)
        client._packet_queue(paho.PUBLISH, b"".join(parts), 0, 0, info)
        return info

    def publish_qos1(self, topic: str, payload: bytes, retain: bool) -> int | None:
        """Hand a QoS 1 PUBLISH to paho; return its message id (its PUBACK comes through the owner's
        ``_link_published``), or None if the connection is gone. Never blocks.
        """
        for _ in range(4):
            info = self._paho.publish(topic, payload, 1, bool(retain))
            if info.rc == paho.MQTT_ERR_SUCCESS:
                return info.mid
            if self.lost or info.rc != paho.MQTT_ERR_QUEUE_SIZE:  # QUEUE_SIZE: message id in use; retry
                return None
        return None

    def write_now(self) -> None:
        """Write queued packets to the socket now, as far as it takes them without blocking."""
        if self.lost:
            return
        try:
            self._paho.loop_write()
        except Exception as exc:  # the socket broke: same handling as aiomqtt's writer callback
            _log.debug("writing to the socket failed: %s", exc)
            self.abort()

    def subscribe(self, topic_filter: str, qos: int, subscription_id: int | None) -> asyncio.Future[int]:
        """Send SUBSCRIBE; the future resolves to the SUBACK reason code (>= 0x80: refused) or
        `SUBSCRIBE_LOST` if the connection is lost first.
        """
        properties: Properties | None = None
        if subscription_id is not None and self.subscription_ids:
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = subscription_id
        options = SubscribeOptions(qos=qos, noLocal=False, retainAsPublished=False, retainHandling=0)
        rc, mid = self._paho.subscribe(topic_filter, options=options, properties=properties)
        return self._track(rc, mid)

    def unsubscribe(self, topic_filter: str) -> asyncio.Future[int]:
        """Send UNSUBSCRIBE; the future resolves to the UNSUBACK reason code or `SUBSCRIBE_LOST`."""
        rc, mid = self._paho.unsubscribe(topic_filter)
        return self._track(rc, mid)

    def _track(self, rc: int, mid: int | None) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = self._loop.create_future()
        if rc != paho.MQTT_ERR_SUCCESS or mid is None or self.lost:
            fut.set_result(SUBSCRIBE_LOST)
        else:
            self._pending[mid] = fut
        return fut

    # ------------------------------------------------------------------ callbacks from _Client

    def _resolve(self, mid: int, code: int) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(code)

    def _message(self, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            _log.warning("skipped an inbound message whose topic is not UTF-8")
            return
        props = getattr(message, "properties", None)
        sids: Sequence[int] = ()
        if props is not None:
            sids = getattr(props, "SubscriptionIdentifier", ())
        try:
            self._owner._link_message(self, topic, message.payload, bool(message.retain), sids)
        except Exception:
            _log.exception("internal error while receiving a message on %r", topic)

    def _handle_publish(self) -> MQTTErrorCode:
        """Paho's ``_handle_publish`` without building an ``MQTTMessage`` and MQTT 5 ``Properties`` per
        message (most of paho's per-message cost): parse the topic, packet id, subscription identifiers
        and payload, hand them over, acknowledge QoS 1. Anything unusual goes to paho's own handler.
        """
        client = self._paho
        packet = client._in_packet
        header = packet["command"]
        data = packet["packet"]
        qos = (header >> 1) & 0x03
        try:
            pos = 2 + int.from_bytes(data[0:2], "big")
            raw_topic = data[2:pos]
            mid = 0
            if qos:
                mid = int.from_bytes(data[pos : pos + 2], "big")
                pos += 2
            length, pos = _read_varint(data, pos)
            sids = _subscription_ids(data, pos, pos + length) if length else []
        except (IndexError, ValueError):
            sids = None
        if sids is None or qos > 1 or not raw_topic:
            return paho.Client._handle_publish(client)
        try:
            topic = raw_topic.decode("utf-8")
        except UnicodeDecodeError:
            _log.warning("skipped an inbound message whose topic is not UTF-8")
        else:
            try:
                self._owner._link_message(self, topic, bytes(data[pos + length :]), bool(header & 0x01), sids)
            except Exception:
                _log.exception("internal error while receiving a message on %r", topic)
        if qos == 1:
            return client._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _published(self, mid: int, reason_code: ReasonCode) -> None:
        try:
            self._owner._link_published(self, mid, reason_code.value)
        except Exception:
            _log.exception("internal error while handling an acknowledgement")


def _connect_error(exc: BaseException, settings: LinkSettings) -> ConnectionFailedError:
    """Map a failed connection attempt to `ConnectionFailedError` with a `reason` (DESIGN §7.5)."""
    where = f"{settings.hostname}:{settings.port}"
    if isinstance(exc, MqttConnectError):
        rc = exc.rc
        code = rc.value if isinstance(rc, ReasonCode) else int(rc or 0)
        if code in _AUTH_CODES:
            return ConnectionFailedError(
                "auth", f"the broker at {where} rejected the credentials: {reason_text(code)}"
            )
        return ConnectionFailedError(
            "refused", f"the broker at {where} refused the connection: {reason_text(code)}"
        )
    if isinstance(exc, _ClosedBeforeConnack):
        hint = " (is it a TLS port? set tls)" if settings.tls is None else " (is it a plain, non-TLS port?)"
        return ConnectionFailedError(
            "refused", f"{where} closed the connection before answering the MQTT CONNECT{hint}"
        )
    cause: BaseException | None = exc
    if isinstance(exc, aiomqtt.MqttError) and not isinstance(exc, MqttCodeError):
        if str(exc) == "Operation timed out":  # aiomqtt's wait for the CONNACK
            return ConnectionFailedError(
                "timeout", f"no CONNACK from {where} within {settings.connect_timeout:g} s"
            )
        # aiomqtt re-raises socket errors as MqttError(str(exc)) "from None": the original is the context.
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            return ConnectionFailedError("refused", f"connecting to {where} failed: {exc}")
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)
        return ConnectionFailedError("tls", f"TLS with {where} failed: {reason}")
    if isinstance(cause, socket.gaierror):
        return ConnectionFailedError("unreachable", f"cannot resolve {settings.hostname!r}: {cause.strerror}")
    if isinstance(cause, TimeoutError):
        if settings.tls is not None and "handshake" in str(cause):
            return ConnectionFailedError(
                "timeout", f"the TLS handshake with {where} took more than {settings.connect_timeout:g} s"
            )
        return ConnectionFailedError(
            "unreachable", f"nothing answered a TCP connect to {where} within {settings.connect_timeout:g} s"
        )
    if isinstance(cause, ConnectionRefusedError):
        return ConnectionFailedError("unreachable", f"nothing accepts TCP connections on {where}")
    if isinstance(cause, OSError):
        if settings.tls is not None and isinstance(cause, ConnectionResetError | BrokenPipeError):
            return ConnectionFailedError("tls", f"{where} closed the connection during the TLS handshake")
        return ConnectionFailedError("unreachable", f"cannot connect to {where}: {cause.strerror or cause}")
    return ConnectionFailedError("refused", f"connecting to {where} failed: {cause}")
