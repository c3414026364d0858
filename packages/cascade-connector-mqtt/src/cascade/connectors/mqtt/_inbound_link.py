"""The inbound half of a `Link`: reading the socket, inbound PUBLISH packets, acknowledgements.

When the socket is readable, `_read_ready` reads ONE chunk (see `BufferedSocket`) and handles the
packets in it in stream order: whole QoS 0 and QoS 1 PUBLISH packets are parsed straight from the
buffer by `_wire.parse_publish`; every other packet, and a PUBLISH split across reads, goes through
paho, whose ``_handle_publish`` is ours too (`_handle_publish`). The next chunk waits for the next
turn of the event loop, after the dispatch loop ran: reading never runs ahead of fast callbacks, and
other tasks get their turn during a flood. Inbound topics are checked before dispatch; a QoS 1
message is acknowledged only when the owner calls `ack` (after its callbacks ran, promise 13).
"""

from __future__ import annotations

__all__ = ["InboundSide"]

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from . import _hooks, _wire
from ._drivers import Driver, send_puback
from ._link_types import LinkOwner, LinkSettings
from ._socket import BufferedSocket

if TYPE_CHECKING:
    from ._client import Link

_log = logging.getLogger("cascade.connectors.mqtt")


class InboundSide:
    """Mixed into `Link`, which sets these attributes and provides `note_loss`, `refuse`, `abort`."""

    _paho: paho.Client
    _driver: Driver
    _loop: asyncio.AbstractEventLoop
    _settings: LinkSettings
    _owner: LinkOwner
    _framer: _wire.Framer
    _acks: list[int]
    _fd: int
    _v5: bool
    lost: bool
    reading_paused: bool
    private_api: bool
    malformed: int

    def note_loss(self, reason: str) -> None:
        raise NotImplementedError

    def refuse(self, disconnect: bytes, reason: str) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def _read_ready(self) -> None:
        """The socket is readable: read one chunk and handle its packets until it is used up or we
        pause. Whole QoS 0/1 PUBLISH packets are taken straight from the buffer; paho reads the rest
        (and any packet split across chunks) through the same buffer, so the order is kept. PUBACKs of
        our QoS 1 PUBLISHes (built by `Link.publish_qos1`, unknown to paho) are handled here too.
        """
        client = self._paho
        sock = client.socket()
        buffered = sock if isinstance(sock, BufferedSocket) else None
        if buffered is not None:
            buffered.arm()  # one kernel read per readiness event (see BufferedSocket)
            buffered.fill()
        taken = False
        try:
            while not self.lost and not self.reading_paused:
                if buffered is not None and _hooks.between_packets(client):
                    packet = buffered.take_packet()
                    if packet is not None:
                        taken = True
                        header, data = packet
                        if header == _wire.PUBACK:
                            rc = self._puback_packet(data)
                        else:
                            rc = self._publish_packet(header, data)
                        if rc is not MQTTErrorCode.MQTT_ERR_SUCCESS:
                            self.abort()
                            return
                        continue
                client.loop_read()
                sock = client.socket()
                pending = getattr(sock, "pending", None)
                if pending is None or pending() <= 0:
                    break
        except Exception as exc:  # a broken socket: the connection is gone
            self.note_loss(f"connection reset ({exc})")
            self.abort()
        if taken:
            _hooks.note_received(client)

    def pause_reading(self) -> None:
        """Stop reading from the socket (inbound backpressure: the broker holds what we do not read).

        Keepalive loss is not detected while paused (the broker's silence is ours).
        """
        if self.lost or self.reading_paused or self._fd < 0:
            return
        self.reading_paused = True
        self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        """Read again after `pause_reading` (what is already buffered first)."""
        if not self.reading_paused:
            return
        self.reading_paused = False
        if self.lost or self._fd < 0:
            return
        self._framer.last_packet = time.monotonic()
        self._loop.add_reader(self._fd, self._read_ready)
        self._loop.call_soon(self._read_ready)

    def _drop(self, detail: str) -> None:
        self.malformed += 1
        _log.warning("dropped an inbound message: %s", detail)
        report = getattr(self._owner, "_link_malformed", None)
        if report is not None:
            try:
                report(self, detail)
            except Exception:
                _log.exception("internal error while counting a malformed message")

    def ack(self, mid: int) -> None:
        """Send the PUBACK of inbound QoS 1 message `mid` (handed to the owner with that `mid`).

        Private path: sent at the event loop's next turn together with the others acknowledged until
        then (one socket write for a whole dispatched batch); public path: paho's own ``ack`` (its
        client acknowledges manually) at once. Never before `ack` is called (promise 13).
        """
        if self.lost:
            return  # ours are clean sessions: the broker forgot it with the connection
        if not self.private_api:
            with contextlib.suppress(Exception):
                send_puback(self._driver, mid)
            return
        acks = self._acks
        if not acks:
            self._loop.call_soon(self._send_acks)
        acks.append(mid)

    def _send_acks(self) -> None:
        mids, self._acks = self._acks, []
        if self.lost or not mids:
            return
        with contextlib.suppress(Exception):
            _hooks.send_pubacks(self._paho, mids)

    def _deliver(
        self, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int], mid: int = 0
    ) -> None:
        try:
            self._owner._link_message(cast("Link", self), topic, payload, retain, sids, mid)
        except Exception:
            _log.exception("internal error while receiving a message on %r", topic)

    def _message(self, message: paho.MQTTMessage) -> None:
        """Paho's decoded message (public path, and QoS 2 on the private path).

        ``paho.ack`` answers what paho leaves to us: everything on the public path (manual_ack), where
        a dropped message is acknowledged as on the private path; nothing on the private path.
        """
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._drop("its topic is not valid UTF-8")
            self._paho.ack(message.mid, message.qos)
            return
        problem = _wire.topic_problem(topic)
        if problem is not None:
            self._drop(problem)
            self._paho.ack(message.mid, message.qos)
            return
        payload = message.payload
        if len(payload) > self._settings.max_inbound_packet_size:
            self._drop(f"{len(payload)} bytes on {topic!r}, over our Maximum Packet Size")
            self._paho.ack(message.mid, message.qos)
            return
        props = getattr(message, "properties", None)
        sids: Sequence[int] = ()
        if props is not None:
            sids = getattr(props, "SubscriptionIdentifier", ())
        # QoS 1: the owner acknowledges once the callbacks ran (`ack`). QoS 2 (never subscribed to) is
        # answered (PUBCOMP) on delivery, as paho itself does.
        mid = message.mid if message.qos == 1 else 0
        self._deliver(topic, payload, bool(message.retain), sids, mid)
        if message.qos == 2:
            self._paho.ack(message.mid, 2)

    def _handle_publish(self) -> MQTTErrorCode:
        """Paho's ``_handle_publish`` without building an ``MQTTMessage`` and MQTT 5 ``Properties`` per
        message (most of paho's per-message cost). A malformed packet closes the connection; an
        unacceptable topic drops the message (acknowledged, counted, logged).
        """
        return self._publish_packet(*_hooks.in_packet(self._paho))

    def _publish_packet(self, header: int, data: bytes | bytearray) -> MQTTErrorCode:
        """One inbound PUBLISH (`header`: its first byte; `data`: the rest after the remaining length)."""
        client = self._paho
        try:
            qos, mid, retain, topic, problem, sids, payload = _wire.parse_publish(header, data, self._v5)
        except _wire.MalformedPacket as exc:
            self.refuse(_wire.DISCONNECT_MALFORMED, f"malformed packet from the broker ({exc})")
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if qos == 2:
            return _hooks.paho_handle_publish(client)  # never subscribed at QoS 2: paho's own flow
        if topic is None or problem is not None:
            self._drop(problem or "its topic is unacceptable")
        elif qos == 1:
            self._deliver(topic, payload, retain, sids, mid)  # the owner acknowledges (`ack`)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        else:
            self._deliver(topic, payload, retain, sids)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        if qos == 1:
            return _hooks.send_puback(client, mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_puback(self, cmd: str) -> MQTTErrorCode:
        """Paho's ``_handle_pubackcomp`` for a PUBACK paho read itself (split across reads); PUBCOMP
        (never expected: we publish nothing at QoS 2) is left to paho.
        """
        if cmd != "PUBACK":
            return _hooks.paho_handle_pubackcomp(self._paho, cmd)
        return self._puback_packet(_hooks.in_packet(self._paho)[1])

    def _puback_packet(self, data: bytes | bytearray) -> MQTTErrorCode:
        """The PUBACK of one of our QoS 1 PUBLISHes: the owner hears of it (an unknown id is ignored)."""
        try:
            mid, reason = _wire.parse_puback(data)
        except _wire.MalformedPacket as exc:
            self.refuse(_wire.DISCONNECT_MALFORMED, f"malformed packet from the broker ({exc})")
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        try:
            self._owner._link_published(cast("Link", self), mid, reason)
        except Exception:
            _log.exception("internal error while handling an acknowledgement")
        return MQTTErrorCode.MQTT_ERR_SUCCESS
