"""MQTT 5 and 3.1.1 bytes on the wire, without any client library: building QoS 0 PUBLISH packets, parsing
inbound PUBLISH packets, checking inbound topics, and framing the inbound byte stream (so that a packet
whose announced length is over our limit is refused before it is buffered).

Pure functions and one small state machine; nothing here does I/O or imports aiomqtt/paho.
"""

from __future__ import annotations

import time
from typing import Final

PUBLISH: Final = 0x30
PUBACK: Final = 0x40
PINGREQ_PACKET: Final = b"\xc0\x00"
MAX_REMAINING_LENGTH: Final = 268_435_455
"""The largest remaining length a 4-byte variable byte integer can announce (MQTT 5 §1.5.5)."""

DISCONNECT_PACKET_TOO_LARGE: Final = b"\xe0\x01\x95"
"""DISCONNECT with reason code 0x95 "Packet too large" (no properties)."""
DISCONNECT_MALFORMED: Final = b"\xe0\x01\x81"
"""DISCONNECT with reason code 0x81 "Malformed Packet" (no properties)."""

_PUBLISH_HEADER: Final = bytes((PUBLISH,))
_PUBLISH_RETAIN_HEADER: Final = bytes((PUBLISH | 1,))
_SMALL_VARINTS: Final = tuple(bytes((n,)) for n in range(128))

# Inbound topics and subscription-id tuples already seen, shared by every held message that carries
# them: a backlog of `max_inbound` messages then holds one topic string and one tuple, not one of each
# per message, and a known topic is not checked again. Bounded: each resets when it holds _CACHE_LIMIT.
_CACHE_LIMIT: Final = 4096
_NO_SIDS: Final[tuple[int, ...]] = ()
_topics: dict[str, tuple[str, str | None]] = {}
_sids: dict[tuple[int, ...], tuple[int, ...]] = {}


def varint(n: int) -> bytes:
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


def read_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """Decode a variable byte integer at `pos`; returns (value, next position).

    Raises IndexError if the data ends first, ValueError if it is longer than 4 bytes.
    """
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


def publish_prefix(topic: str, v5: bool = True) -> bytes:
    """The part of a QoS 0 PUBLISH after the fixed header and before the payload: the topic, then (MQTT
    5 only, `v5`) the empty properties. Raises UnicodeEncodeError for a topic that is not encodable.
    """
    encoded = topic.encode("utf-8")
    head = len(encoded).to_bytes(2, "big") + encoded
    return head + b"\x00" if v5 else head


def qos0_packet_parts(prefix: bytes, payload: bytes, retain: bool) -> tuple[bytes, bytes]:
    """Fixed header (type, flags and remaining length) of a QoS 0 PUBLISH with `prefix` and `payload`."""
    return (_PUBLISH_RETAIN_HEADER if retain else _PUBLISH_HEADER), varint(len(prefix) + len(payload))


def topic_field(topic: str) -> bytes:
    """A topic as PUBLISH carries it: its length (2 bytes) then UTF-8. Raises UnicodeEncodeError."""
    encoded = topic.encode("utf-8")
    return len(encoded).to_bytes(2, "big") + encoded


_NO_PROPERTIES: Final = b"\x00"
_QOS1_HEADER: Final = bytes((PUBLISH | 0x02,))
_QOS1_RETAIN_HEADER: Final = bytes((PUBLISH | 0x02 | 0x01,))


def qos1_packet(
    field: bytes, mid: int, payload: bytes, retain: bool, v5: bool = True, expiry: int | None = None
) -> bytes:
    """A whole QoS 1 PUBLISH: `field` from `topic_field`, packet id `mid` (1..65535), then (MQTT 5,
    `v5`) the properties: none, or the Message Expiry Interval `expiry` (seconds), then `payload`.
    """
    props = b""
    if v5:
        props = _NO_PROPERTIES if expiry is None else b"\x05\x02" + expiry.to_bytes(4, "big")
    body = len(field) + 2 + len(props) + len(payload)
    head = _QOS1_RETAIN_HEADER if retain else _QOS1_HEADER
    return b"".join((head, varint(body), field, mid.to_bytes(2, "big"), props, payload))


def parse_puback(data: bytes | bytearray) -> tuple[int, int]:
    """The packet id and reason code (0 when absent, as MQTT 3.1.1 and a short MQTT 5 PUBACK say) of a
    PUBACK's variable header `data`. Raises `MalformedPacket` if it is shorter than a packet id.
    """
    if len(data) < 2:
        raise MalformedPacket("PUBACK without its packet identifier")
    return (data[0] << 8) | data[1], (data[2] if len(data) > 2 else 0)


def qos0_packet_size(topic: str, payload: bytes, v5: bool = True) -> int:
    """The size in bytes of the whole QoS 0 PUBLISH packet (what a broker's Maximum Packet Size bounds)."""
    body = 2 + len(topic.encode("utf-8")) + (1 if v5 else 0) + len(payload)
    return 1 + len(varint(body)) + body


def qos1_packet_size(topic: str, payload: bytes, v5: bool = True) -> int:
    """The size in bytes of the whole QoS 1 PUBLISH packet (a packet id more than QoS 0)."""
    body = 2 + len(topic.encode("utf-8")) + 2 + (1 if v5 else 0) + len(payload)
    return 1 + len(varint(body)) + body


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


class MalformedPacket(ValueError):
    """An inbound packet that breaks MQTT 5's encoding rules: the connection must be closed."""


def subscription_ids(data: bytes | bytearray, pos: int, end: int) -> tuple[int, ...]:
    """The subscription identifiers among the PUBLISH properties in ``data[pos:end]`` (a shared tuple:
    equal results are the same object).

    Raises `MalformedPacket` for an unknown property, a topic alias (we announce Topic Alias Maximum
    0, so a broker must not send one) or a property running past the end.
    """
    sids: list[int] = []
    try:
        while pos < end:
            ident = data[pos]
            pos += 1
            kind = _PUBLISH_PROPERTIES.get(ident)
            if kind is None or ident == 0x23:
                raise MalformedPacket(f"unexpected PUBLISH property 0x{ident:02X}")
            if kind == _VARINT:
                sid, pos = read_varint(data, pos)
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
    except (IndexError, ValueError) as exc:
        raise MalformedPacket(f"PUBLISH properties cannot be decoded: {exc}") from exc
    if pos != end:
        raise MalformedPacket("PUBLISH properties run past their announced length")
    if not sids:
        return _NO_SIDS
    key = tuple(sids)
    shared = _sids.get(key)
    if shared is None:
        if len(_sids) >= _CACHE_LIMIT:
            _sids.clear()
        shared = _sids[key] = key
    return shared


InboundPublish = tuple[int, int, bool, str | None, str | None, tuple[int, ...], bytes]
"""One parsed inbound PUBLISH: (qos, packet id, retain, topic, problem, subscription ids, payload).
`topic` is None or `problem` says why when the topic is unacceptable: the message must be dropped (and
still acknowledged), but the connection is fine. A plain tuple: this is the per-message hot path."""


def parse_publish(header: int, data: bytes | bytearray, v5: bool = True) -> InboundPublish:
    """Parse the variable header and payload of an inbound PUBLISH (`header` is its first byte); `v5`:
    MQTT 5 (a properties length follows the packet id), else MQTT 3.1.1 (no properties).

    Raises `MalformedPacket` when the packet cannot be decoded (QoS 3, a topic length past the end of
    the packet, a missing packet id, broken properties): the caller closes the connection.
    """
    qos = (header >> 1) & 0x03
    size = len(data)
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    if size < 2:
        raise MalformedPacket("PUBLISH shorter than its topic length")
    pos = 2 + ((data[0] << 8) | data[1])
    if pos > size:
        raise MalformedPacket("PUBLISH topic length runs past the end of the packet")
    raw_topic = data[2:pos]
    mid = 0
    if qos:
        if pos + 2 > size:
            raise MalformedPacket("PUBLISH without its packet identifier")
        mid = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if mid == 0:
            raise MalformedPacket("PUBLISH with packet identifier 0")
    if not v5:
        end = pos
        sids = _NO_SIDS
    else:
        end, sids = _properties(data, pos, size)
    try:
        decoded = raw_topic.decode("utf-8")
    except UnicodeDecodeError:
        return qos, mid, bool(header & 0x01), None, "its topic is not valid UTF-8", sids, b""
    known = _topics.get(decoded)
    if known is None:
        if len(_topics) >= _CACHE_LIMIT:
            _topics.clear()
        known = _topics[decoded] = (decoded, topic_problem(decoded))
    topic, problem = known
    return qos, mid, bool(header & 0x01), topic, problem, sids, bytes(data[end:])


def _properties(data: bytes | bytearray, pos: int, size: int) -> tuple[int, tuple[int, ...]]:
    """Read the MQTT 5 PUBLISH properties at `pos`: (where the payload starts, subscription ids)."""
    length = data[pos] if pos < size else 0x80
    if length < 0x80:
        pos += 1
    else:
        try:
            length, pos = read_varint(data, pos)
        except (IndexError, ValueError) as exc:
            raise MalformedPacket("PUBLISH properties length cannot be decoded") from exc
    end = pos + length
    if end > size:
        raise MalformedPacket("PUBLISH properties run past the end of the packet")
    return end, (subscription_ids(data, pos, end) if length else _NO_SIDS)


def check_topic(raw: bytes) -> tuple[str | None, str | None]:
    """Decode an inbound topic name; returns (topic, None) or (None, why it is unacceptable).

    Unacceptable: not UTF-8, empty (we allow no topic aliases), a wildcard ``+``/``#`` or a NUL.
    """
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "its topic is not valid UTF-8"
    return topic, topic_problem(topic)


def topic_problem(topic: str) -> str | None:
    """Why `topic`, received from a broker, must not be dispatched, or None if it is fine."""
    if not topic:
        return "its topic is empty"
    if "+" in topic or "#" in topic:
        return f"its topic {topic!r} contains a wildcard"
    if "\x00" in topic:
        return f"its topic {topic!r} contains a NUL character"
    return None


class PacketTooLarge(Exception):
    """An inbound packet announced a remaining length over our Maximum Packet Size."""


class Framer:
    """Follows the packet boundaries of the inbound byte stream, chunk by chunk, without copying.

    Refuses (raises) before any of a packet's body is buffered when its announced size is over
    `max_packet_size`, or when its remaining length is not a valid variable byte integer; records
    when the last complete packet arrived (`last_packet`, monotonic seconds), which the keepalive
    watchdog uses: bytes trickling in do not count as life; and the reason code of a DISCONNECT from
    the broker (`disconnect_code`; paho 2.1 reads it only when properties follow).
    """

    __slots__ = (
        "_header",
        "_length",
        "_mult",
        "_remaining",
        "_state",
        "disconnect_code",
        "error_at",
        "last_packet",
        "max_packet_size",
    )

    def __init__(self, max_packet_size: int) -> None:
        self.max_packet_size = max_packet_size
        self.last_packet = time.monotonic()
        self.disconnect_code: int | None = None
        self.error_at = 0
        self._state = 0  # 0: expecting a fixed header byte; 1: in the remaining length; 2: in the body
        self._header = 0
        self._length = 0
        self._mult = 1
        self._remaining = 0

    def feed(self, data: bytes) -> None:
        """Account for `data`, the next bytes of the stream. Raises `PacketTooLarge` or
        `MalformedPacket`; after that the stream cannot be followed any more, and `error_at` is where
        the offending packet starts in `data` (0 if in an earlier chunk): what precedes it is sound.
        """
        size = len(data)
        pos = 0
        completed = False
        self.error_at = 0
        if self._state:  # finish the packet that began in an earlier chunk
            pos, completed = self._slow(data, 0, size, to_boundary=True)
        # Fast path: whole fixed headers in this chunk (the usual case), one loop turn per packet.
        limit = self.max_packet_size
        fixed = _FIXED_FLAGS
        while pos + 5 <= size:
            header = data[pos]
            self.error_at = pos
            if header & 0xF0 != 0x30 and fixed.get(header >> 4) != header:
                raise MalformedPacket(_bad_header(header))
            byte = data[pos + 1]
            if byte < 0x80:
                length, start = byte, pos + 2
            elif data[pos + 2] < 0x80:
                length, start = (byte & 0x7F) | (data[pos + 2] << 7), pos + 3
            else:
                try:
                    length, start = read_varint(data, pos + 1)
                except ValueError as exc:
                    raise MalformedPacket("remaining length longer than 4 bytes") from exc
            total = start - pos + length
            if total > limit:
                raise PacketTooLarge(f"the broker announced a {total}-byte packet; our limit is {limit}")
            if header == 0xE0 and length and start < size:
                self.disconnect_code = data[start]
            pos = start + length
            if pos > size:  # its body goes on in the next chunk
                self._state, self._remaining = 2, pos - size
                break
            completed = True
        else:
            if pos < size:
                _, tail_completed = self._slow(data, pos, size, to_boundary=False)
                completed = completed or tail_completed
        if completed:
            self.last_packet = time.monotonic()

    def _slow(self, data: bytes, pos: int, size: int, *, to_boundary: bool) -> tuple[int, bool]:
        """Byte by byte, for a packet split across chunks; returns (position, a packet completed)."""
        completed = False
        while pos < size:
            state = self._state
            if state == 2:
                if self._header == 0xE0 and self._remaining == self._length:
                    self.disconnect_code = data[pos]
                take = min(self._remaining, size - pos)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = 0
                    completed = True
            elif state == 0:
                if to_boundary:
                    break
                self.error_at = pos
                header = self._header = data[pos]
                pos += 1
                kind = header >> 4
                if kind != 3 and header != _FIXED_FLAGS.get(kind):
                    raise MalformedPacket(_bad_header(header))
                self._state, self._length, self._mult = 1, 0, 1
            else:
                byte = data[pos]
                pos += 1
                self._length += (byte & 0x7F) * self._mult
                if byte & 0x80:
                    self._mult *= 128
                    if self._mult > 128**3:
                        raise MalformedPacket("remaining length longer than 4 bytes")
                    continue
                total = 1 + self._length + _varint_size(self._length)
                if total > self.max_packet_size:
                    raise PacketTooLarge(
                        f"the broker announced a {total}-byte packet; our limit is {self.max_packet_size}"
                    )
                if self._length:
                    self._state, self._remaining = 2, self._length
                else:
                    self._state = 0
                    completed = True
        return pos, completed


# The packets a broker may send after CONNACK, by type, with their fixed header flags (PUBLISH, type 3,
# has its own flags). CONNECT, a second CONNACK, SUBSCRIBE, UNSUBSCRIBE and PINGREQ never come from a
# broker; type 0 is reserved.
_FIXED_FLAGS: Final = {4: 0x40, 5: 0x50, 6: 0x62, 7: 0x70, 9: 0x90, 11: 0xB0, 13: 0xD0, 14: 0xE0, 15: 0xF0}
_NAMES: Final = {
    0: "reserved packet type 0",
    1: "CONNECT",
    2: "a second CONNACK",
    8: "SUBSCRIBE",
    10: "UNSUBSCRIBE",
}


def _bad_header(header: int) -> str:
    kind = header >> 4
    if kind in _FIXED_FLAGS:
        return f"packet type {kind} with fixed header flags 0x{header & 0x0F:X}"
    if kind == 12:
        return "PINGREQ from the broker"
    return f"{_NAMES[kind]} from the broker" if kind else _NAMES[0]


def _varint_size(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4
