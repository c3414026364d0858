"""The transport: a `Link` is ONE MQTT 5 or 3.1.1 connection, reporting to its owner (the connector).

Two drivers open the connection (`_hooks.AiomqttDriver`, an aiomqtt client with paho's callbacks
rerouted; `_paho_driver.PahoDriver`, paho's public API only); `_hooks.private_api_enabled()` picks
one per connection. With the private hooks the hot path talks to paho directly, without one
awaitable per message:

- ``send_qos0`` builds the PUBLISH packets of a whole batch of QoS 0 messages itself and queues them
  as ONE paho packet (one ``send`` syscall instead of one per message); paho reports the write
  through ``on_publish`` with message id 0. On the public path each message is a paho ``publish``.
- ``publish_qos1`` builds the QoS 1 PUBLISH packet itself (a packet id from paho's sequence) and its
  PUBACK is read here, not by paho; queued packets are joined into one write. On the public path
  each message is a paho ``publish`` (paho tracks the PUBACK).
- inbound (`_inbound_link.InboundSide`): paho's socket is wrapped in `BufferedSocket` (one ``recv``
  of up to 64 KiB per readiness event; a `_wire.Framer` follows packet boundaries so an oversize
  packet is refused before it is buffered and trickling bytes do not count as life); whole PUBLISH
  packets are parsed by `_wire.parse_publish` straight from that buffer, the rest goes through paho.

Every loss records its reason (`Link.loss_reason`) before the owner's ``_link_lost`` runs.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_INBOUND_PACKET_SIZE",
    "Link",
    "LinkOwner",
    "LinkSettings",
    "MqttVersion",
    "Sent",
    "SUBSCRIBE_LOST",
    "reason_text",
]

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from . import _hooks, _wire
from ._connect_errors import connect_error
from ._drivers import make_driver
from ._inbound_link import InboundSide
from ._link_types import DEFAULT_MAX_INBOUND_PACKET_SIZE, LinkOwner, LinkSettings, MqttVersion, Sent
from ._reasons import disconnect_text, reason_text
from ._socket import BufferedSocket
from ._watchdog import KeepaliveWatchdog

_log = logging.getLogger("cascade.connectors.mqtt")

SUBSCRIBE_LOST: Final = -1
"""The "reason code" a pending SUBSCRIBE/UNSUBSCRIBE resolves to when its connection is lost."""

_DEFAULT_RECEIVE_MAXIMUM: Final = 65535  # server "Receive Maximum" when the CONNACK does not say


class Link(InboundSide):
    """One MQTT connection. Create with `Link.open`; it is never reused after it is lost.

    Public state: `protocol` (the `MqttVersion` spoken), `lost`, `closing`, `receive_maximum` and
    `subscription_ids` (from the CONNACK; False on MQTT 3.1.1),
    `max_packet_size` (the broker's Maximum Packet Size, None if it set none), `loss_reason` (set
    before the owner hears of the loss), `malformed` (inbound messages dropped here), `private_api`.
    """

    def __init__(self, settings: LinkSettings, owner: LinkOwner) -> None:
        self._settings = settings
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._prefixes: dict[str, bytes] = {}
        self._topic_fields: dict[str, bytes] = {}  # QoS 1: topic -> its PUBLISH field
        self._qos0_mids: Counter[int] = Counter()  # public path: on_publish ids that are QoS 0 writes
        self._acks: list[int] = []  # inbound QoS 1 ids whose callbacks ran, acknowledged together soon
        self._watchdog: KeepaliveWatchdog | None = None
        self._framer = _wire.Framer(settings.max_inbound_packet_size)
        self.lost = False
        self.closing = False
        self.receive_maximum = _DEFAULT_RECEIVE_MAXIMUM
        self.protocol = settings.protocol
        self._v5 = settings.protocol is MqttVersion.V5
        self.subscription_ids = self._v5
        self.max_packet_size: int | None = None
        self.loss_reason: str | None = None
        self.malformed = 0
        self.reading_paused = False  # backpressure: `pause_reading` / `resume_reading`
        self._fd = -1
        self.private_api = _hooks.private_api_enabled()
        self._driver = make_driver(self, settings, private=self.private_api)
        self._paho = self._driver.paho
        if self.private_api:
            _hooks.install_publish_handler(self._paho, self._handle_publish)
            _hooks.install_puback_handler(self._paho, self._handle_puback)

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    async def open(cls, settings: LinkSettings, owner: LinkOwner) -> Link:
        """Connect; return once the broker accepted (CONNACK). Raises `ConnectionFailedError`.

        Bounded by about `connect_timeout` for each of TCP connect, TLS handshake and CONNACK. If the
        awaiting task is cancelled, the attempt is abandoned and any connection it made is closed.
        """
        link = cls(settings, owner)
        attempt = asyncio.ensure_future(link._driver.open())
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            link._abandon()
            attempt.add_done_callback(link._reap_abandoned)
            raise
        except (aiomqtt.MqttError, OSError) as exc:  # OSError: from aiomqtt setting socket options
            link._close_socket()
            raise connect_error(exc, settings) from exc
        link._started()
        return link

    def _abandon(self) -> None:
        # Cancelled mid-connect (Ctrl-C, a timeout): close now, since the loop may be closing and never
        # reach _reap_abandoned, and cut paho's socket callbacks into the loop, since paho's connect may
        # still be running in its executor thread and paho closes any socket it ends up with from
        # __del__, possibly after the loop is closed ("Event loop is closed").
        self._driver.cut_callbacks()
        self._close_socket()

    def _reap_abandoned(self, attempt: asyncio.Future[Any]) -> None:
        if not attempt.cancelled():
            attempt.exception()  # retrieved: nobody is waiting for this attempt any more
        self._close_socket()

    def _started(self) -> None:
        if self.private_api:
            # Framing starts here, right after the CONNACK, at a packet boundary: with a clean start a
            # broker sends nothing unasked before our first SUBSCRIBE or PUBLISH.
            _hooks.wrap_socket(
                self._paho,
                lambda sock: BufferedSocket(sock, self),
                lambda sock: isinstance(sock, BufferedSocket),
            )
            if self._settings.keepalive > 0:
                self._watchdog = KeepaliveWatchdog(
                    self._settings.keepalive,
                    last_packet=lambda: self._framer.last_packet,
                    touch=self._touch,
                    paused=lambda: self.reading_paused,
                    ping=lambda: _hooks.send_pingreq(self._paho),
                    lost=self._silent_too_long,
                )
        self._driver.lost_future().add_done_callback(self._on_disconnected)
        sock = self._paho.socket()
        if sock is not None and sock.fileno() >= 0:
            # Our own reader (the drivers' equivalent, plus a pause check between packets).
            self._fd = sock.fileno()
            self._loop.remove_reader(self._fd)
            self._loop.add_reader(self._fd, self._read_ready)

    def _on_connack(self, props: Properties | None) -> None:
        if props is None or not self._v5:
            return
        self.receive_maximum = int(getattr(props, "ReceiveMaximum", _DEFAULT_RECEIVE_MAXIMUM))
        self.subscription_ids = bool(getattr(props, "SubscriptionIdentifierAvailable", 1))
        size = getattr(props, "MaximumPacketSize", None)
        self.max_packet_size = int(size) if size is not None else None

    def _on_disconnected(self, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled():
            exc = fut.exception()  # retrieved: an abrupt loss is normal here, not an unhandled error
            if exc is not None:
                self.note_loss(f"connection reset ({exc})")
        self._mark_lost()

    def _on_disconnect(self, reason: ReasonCode, properties: Properties | None, from_server: bool) -> None:
        detail = getattr(properties, "ReasonString", None) if properties is not None else None
        code = self._framer.disconnect_code
        if from_server and code is not None and code != reason.value:
            reason = ReasonCode(PacketTypes.DISCONNECT, identifier=code)
        self.note_loss(disconnect_text(reason, detail, from_server, self.closing, self._settings.keepalive))

    def note_loss(self, reason: str) -> None:
        """Record why the connection ends (the first reason recorded wins)."""
        if self.loss_reason is None:
            self.loss_reason = reason

    def refuse(self, disconnect: bytes, reason: str) -> None:
        """Record `reason` and tell the broker with a DISCONNECT, if nothing else is being written."""
        self.note_loss(reason)
        sock = self._paho.socket()
        if sock is not None and not self._paho.want_write():
            with contextlib.suppress(OSError):
                sock.send(disconnect)

    def _mark_lost(self) -> None:
        if self.lost:
            return
        self.lost = True
        self.note_loss("closed by us" if self.closing else "connection lost")
        where = f"{self._settings.hostname}:{self._settings.port}"
        _log.debug("the connection to %s ended: %s", where, self.loss_reason)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result(SUBSCRIBE_LOST)
        self._owner._link_lost(self)

    def _touch(self) -> None:
        self._framer.last_packet = time.monotonic()

    def _silent_too_long(self, silent: float) -> None:
        self._watchdog = None
        if not self.lost:
            self.note_loss(f"keepalive timeout (no complete packet from the broker for {silent:.1f} s)")
            self.abort()

    async def close(self, grace: float) -> None:
        """Send DISCONNECT (the broker discards the last will) and wait up to `grace` s for it."""
        if self.lost:
            return
        self.closing = True
        try:
            async with asyncio.timeout(grace):
                await self._driver.close()
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
        self._driver.stop_tasks()
        if self.private_api:
            sock = _hooks.detach_socket(self._paho)
        else:
            sock = self._paho.socket()
            self._driver.cut_callbacks()
        if sock is not None:
            fd = sock.fileno()
            if fd >= 0:
                self._loop.remove_reader(fd)
                self._loop.remove_writer(fd)
            with contextlib.suppress(OSError):
                sock.close()
        self._driver.stop_tasks()

    # ------------------------------------------------------------------ outbound

    def send_qos0(self, batch: Sequence[tuple[str, bytes, bool, object]]) -> Sent | None:
        """Queue QoS 0 PUBLISH packets for `batch` ((topic, payload, retain, _) tuples), in order with
        paho's own packets. Returns a handle whose ``is_published()`` says when all were written, or
        None if the connection is gone. Never blocks.
        """
        client = self._paho
        if self.lost or client.socket() is None:
            return None
        if not self.private_api:
            return self._send_qos0_public(batch)
        prefixes = self._prefixes
        parts: list[bytes] = []
        append = parts.append
        for topic, payload, retain, _ in batch:
            prefix = prefixes.get(topic)
            if prefix is None:
                prefix = _wire.publish_prefix(topic, self._v5)
                if len(prefixes) >= 4096:
                    prefixes.clear()
                prefixes[topic] = prefix
            head, length = _wire.qos0_packet_parts(prefix, payload, retain)
            append(head)
            append(length)
            append(prefix)
            append(payload)
        return _hooks.queue_raw(client, b"".join(parts))

    def _send_qos0_public(self, batch: Sequence[tuple[str, bytes, bool, object]]) -> Sent | None:
        last: paho.MQTTMessageInfo | None = None
        for topic, payload, retain, _ in batch:
            info = self._paho.publish(topic, payload, 0, bool(retain))
            if info.rc != paho.MQTT_ERR_SUCCESS:
                return None  # the connection is going away: the owner keeps the batch queued
            self._qos0_mids[info.mid] += 1
            last = info
        return last

    def fits(self, topic: str, payload: bytes, qos: int) -> bool:
        """Whether a PUBLISH of `payload` to `topic` at `qos` is within the broker's Maximum Packet
        Size (always True when the broker announced none). A broker disconnects a client that sends
        more, so what does not fit must never be handed to `send_qos0`/`publish_qos1`.
        """
        limit = self.max_packet_size
        if limit is None:
            return True
        v5 = self._v5
        if qos:
            return _wire.qos1_packet_size(topic, payload, v5) <= limit
        return _wire.qos0_packet_size(topic, payload, v5) <= limit

    def publish_qos1(self, topic: str, payload: bytes, retain: bool, expiry: int | None = None) -> int | None:
        """Queue a QoS 1 PUBLISH; return its packet id (its PUBACK comes through the owner's
        ``_link_published``), or None if the connection is gone. Never blocks. `expiry`: seconds,
        the MQTT 5 Message Expiry Interval (None: none). Private path: the packet is built here and
        its PUBACK read here (paho is not involved per message); public path: paho's ``publish``.
        """
        client = self._paho
        if not self.private_api:
            return self._publish_qos1_public(topic, payload, retain, expiry)
        if self.lost or client.socket() is None:
            return None
        fields = self._topic_fields
        field = fields.get(topic)
        if field is None:
            field = _wire.topic_field(topic)
            if len(fields) >= 4096:
                fields.clear()
            fields[topic] = field
        mid = _hooks.next_packet_id(client)
        _hooks.queue_qos1(client, _wire.qos1_packet(field, mid, payload, retain, self._v5, expiry))
        return mid

    def _publish_qos1_public(
        self, topic: str, payload: bytes, retain: bool, expiry: int | None
    ) -> int | None:
        props: Properties | None = None
        if expiry is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = expiry
        for _ in range(4):
            info = self._paho.publish(topic, payload, 1, bool(retain), props)
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
            if self.private_api:
                _hooks.join_qos1_packets(self._paho)
            self._paho.loop_write()
        except Exception as exc:  # the socket broke: same handling as aiomqtt's writer callback
            _log.debug("writing to the socket failed: %s", exc)
            self.note_loss(f"connection reset while writing ({exc})")
            self.abort()

    def subscribe(self, topic_filter: str, qos: int, subscription_id: int | None) -> asyncio.Future[int]:
        """Send SUBSCRIBE; the future resolves to the SUBACK reason code (>= 0x80: refused) or
        `SUBSCRIBE_LOST` if the connection is lost first.
        """
        if not self._v5:
            # paho ignores SubscribeOptions on MQTT 3.1.1 (the subscription would quietly be QoS 0)
            rc, mid = self._paho.subscribe(topic_filter, qos)
            return self._track(rc, mid)
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

    # ------------------------------------------------------------------ events from the driver

    def _resolve(self, mid: int, code: int) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(code)

    def _published(self, mid: int, reason_code: ReasonCode) -> None:
        if mid and self._qos0_mids:
            count = self._qos0_mids.get(mid, 0)
            if count:  # public path: a QoS 0 message was written (reported to the owner as mid 0)
                if count == 1:
                    del self._qos0_mids[mid]
                else:
                    self._qos0_mids[mid] = count - 1
                mid = 0
        try:
            self._owner._link_published(self, mid, reason_code.value)
        except Exception:
            _log.exception("internal error while handling an acknowledgement")
