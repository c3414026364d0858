"""The transport's own MQTT 5 encoding rules (`_wire`): PUBLISH parsing, inbound topics, framing, and
reason codes by name. Unit tests: bytes in, decisions out, no broker."""

from __future__ import annotations

import pytest
from cascade.connectors.mqtt import _wire
from cascade.connectors.mqtt._reasons import disconnect_text, reason_text
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode


def _publish_body(topic: bytes, payload: bytes = b"{}", *, qos: int = 0, props: bytes = b"") -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += (7).to_bytes(2, "big")
    return body + _wire.varint(len(props)) + props + payload


def test_a_plain_publish_is_parsed() -> None:
    qos, _mid, retain, topic, problem, _sids, payload = _wire.parse_publish(
        0x31, _publish_body(b"a/b", b'{"x":1}')
    )
    assert (topic, problem, retain, qos, payload) == ("a/b", None, True, 0, b'{"x":1}')


def test_qos1_publish_has_its_packet_id_and_subscription_ids() -> None:
    props = b"\x0b\x05\x0b\x81\x01"  # subscription identifiers 5 and 129
    _qos, mid, _retain, _topic, _problem, sids, payload = _wire.parse_publish(
        0x32, _publish_body(b"t", qos=1, props=props)
    )
    assert (mid, sids, payload) == (7, (5, 129), b"{}")


def test_held_messages_share_their_topic_and_subscription_ids() -> None:
    # A backlog of held messages keeps one topic string and one sids tuple, not one per message.
    body = _publish_body("shared/topic/\u00e9".encode(), qos=1, props=b"\x0b\x05")
    first = _wire.parse_publish(0x32, body)
    second = _wire.parse_publish(0x32, bytearray(body))
    assert first[3] == "shared/topic/\u00e9"
    assert first[5] == (5,)
    assert first[3] is second[3]
    assert first[5] is second[5]
    assert _wire.parse_publish(0x30, _publish_body(b"t"))[5] == ()


def test_a_cached_unacceptable_topic_is_still_refused() -> None:
    for _ in range(2):
        _qos, _mid, _retain, _topic, problem, _sids, _payload = _wire.parse_publish(
            0x30, _publish_body(b"cached/#")
        )
        assert problem is not None
        assert "wildcard" in problem


@pytest.mark.parametrize(
    ("header", "body", "why"),
    [
        (0x36, _publish_body(b"t"), "QoS 3"),
        (0x30, b"\x00\x10ab", "runs past the end"),
        (0x30, b"\x00", "shorter than its topic length"),
        (0x32, b"\x00\x01t", "without its packet identifier"),
        (0x32, b"\x00\x01t\x00\x00\x00", "packet identifier 0"),
        (0x30, _publish_body(b"t", props=b"\x23\x00\x01"), "0x23"),  # a topic alias we never allowed
        (0x30, _publish_body(b"t", props=b"\x7f"), "0x7F"),
        (0x30, b"\x00\x01t\x05\x0b", "run past the end"),
    ],
)
def test_a_malformed_publish_is_refused(header: int, body: bytes, why: str) -> None:
    with pytest.raises(_wire.MalformedPacket, match=why):
        _wire.parse_publish(header, body)


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        (b"", "empty"),
        (b"h/#", "wildcard"),
        (b"h/+/x", "wildcard"),
        (b"h/\x00x", "NUL"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_an_unacceptable_inbound_topic_is_named(topic: bytes, why: str) -> None:
    _qos, _mid, _retain, _topic, problem, _sids, _payload = _wire.parse_publish(0x30, _publish_body(topic))
    assert problem is not None
    assert why in problem


def test_the_framer_follows_packets_across_chunks() -> None:
    framer = _wire.Framer(1000)
    framer.last_packet = 0.0
    packet = b"\x30" + _wire.varint(300) + b"x" * 300
    framer.feed(packet[:2])
    framer.feed(packet[2:150])
    assert framer.last_packet == 0.0, "a partial packet is not a sign of life"
    framer.feed(packet[150:] + b"\xd0\x00")  # the rest, then a PINGRESP
    assert framer.last_packet > 0.0


def test_the_framer_refuses_an_oversize_packet_from_its_header_alone() -> None:
    framer = _wire.Framer(1 << 20)
    with pytest.raises(_wire.PacketTooLarge, match="268435460-byte packet"):
        framer.feed(b"\x30\xff\xff\xff\x7f")  # 268 435 455 announced, nothing of the body sent


@pytest.mark.parametrize("data", [b"\x30\xff\xff\xff\xff\x01", b"\x00\x00"])
def test_the_framer_refuses_a_broken_header(data: bytes) -> None:
    with pytest.raises(_wire.MalformedPacket):
        _wire.Framer(1 << 20).feed(data)


def test_packet_sizes_match_what_is_built() -> None:
    prefix = _wire.publish_prefix("é/t")
    head, length = _wire.qos0_packet_parts(prefix, b"p" * 200, False)
    assert len(head + length + prefix) + 200 == _wire.qos0_packet_size("é/t", b"p" * 200)
    assert _wire.qos1_packet_size("é/t", b"p" * 200) == _wire.qos0_packet_size("é/t", b"p" * 200) + 2


def test_reason_codes_are_named_for_every_packet_type() -> None:
    assert reason_text(0x87) == "Not authorized (0x87)"
    assert reason_text(0x8E, PacketTypes.DISCONNECT) == "Session taken over (0x8E)"
    assert reason_text(0x8B) == "Server shutting down (0x8B)"  # DISCONNECT only
    assert reason_text(0x00, PacketTypes.DISCONNECT) == "Normal disconnection (0x00)"
    assert reason_text(0x95) == "Packet too large (0x95)"
    assert reason_text(0xFE) == "reason code 0xFE"


def test_a_disconnect_is_explained() -> None:
    def code(name: str) -> ReasonCode:
        return ReasonCode(PacketTypes.DISCONNECT, name)

    assert (
        disconnect_text(code("Server shutting down"), "bye", True, False, 60)
        == "the broker sent DISCONNECT: Server shutting down (0x8B) (bye)"
    )
    assert disconnect_text(code("Keep alive timeout"), None, False, False, 60).startswith("keepalive timeout")
    assert disconnect_text(code("Unspecified error"), None, False, True, 60) == "closed by us"
    assert (
        disconnect_text(code("Unspecified error"), None, False, False, 60)
        == "connection lost (Unspecified error)"
    )


@pytest.mark.parametrize(
    "chunks", [[b"\xd0\x00\xe0\x02\x8b\x00"], [b"\xe0", b"\x01", b"\x8b"], [b"\xd0\x00\xe0\x01\x8b"]]
)
def test_the_framer_keeps_the_reason_code_of_a_disconnect(chunks: list[bytes]) -> None:
    framer = _wire.Framer(1 << 20)
    for chunk in chunks:
        framer.feed(chunk)
    assert framer.disconnect_code == 0x8B


@pytest.mark.parametrize(
    ("chunks", "error_at"),
    [
        ([b"\x40\x02\x00\x01\x30\xff\xff\xff\x7f"], 4),  # a PUBACK, then a giant PUBLISH header
        ([b"\x40\x02\x00\x01\x00\x00"], 4),  # slow path: fewer than 5 bytes left
        ([b"\x40\x02", b"\x00\x01\x10\x00"], 2),
    ],
)
def test_the_framer_says_where_the_offending_packet_starts(chunks: list[bytes], error_at: int) -> None:
    framer = _wire.Framer(1 << 20)
    *sound, last = chunks
    for chunk in sound:
        framer.feed(chunk)
    with pytest.raises((_wire.MalformedPacket, _wire.PacketTooLarge)):
        framer.feed(last)
    assert framer.error_at == error_at


@pytest.mark.parametrize(("v5", "expiry"), [(True, None), (True, 3600), (False, None)])
@pytest.mark.parametrize("retain", [False, True])
def test_our_qos1_packets_parse_back(v5: bool, expiry: int | None, retain: bool) -> None:
    payload = b'{"x": ' + b"1" * 200 + b"}"  # a two-byte remaining length
    packet = _wire.qos1_packet(_wire.topic_field("a/é"), 513, payload, retain, v5, expiry)
    length, start = _wire.read_varint(packet, 1)
    assert start + length == len(packet)
    assert packet[0] == 0x32 | retain
    qos, mid, got_retain, topic, problem, sids, got = _wire.parse_publish(packet[0], packet[start:], v5)
    assert (qos, mid, got_retain, topic, problem, sids, got) == (1, 513, retain, "a/é", None, (), payload)
    if expiry is not None:
        assert b"\x05\x02" + expiry.to_bytes(4, "big") in packet


def test_pubacks_parse_with_and_without_a_reason_code() -> None:
    assert _wire.parse_puback(b"\x01\x02") == (258, 0)
    assert _wire.parse_puback(b"\x00\x07\x10") == (7, 0x10)  # MQTT 5: "no matching subscribers"
    assert _wire.parse_puback(b"\x00\x07\x87\x00") == (7, 0x87)
    with pytest.raises(_wire.MalformedPacket, match="packet identifier"):
        _wire.parse_puback(b"\x00")
