"""A scripted HOSTILE broker: it answers CONNECT, then breaks the protocol in one way per test; its next
sessions are well-behaved (a tiny broker: SUBACK, PUBACK, PINGRESP, and it routes what it receives to
matching subscriptions with their subscription identifiers). Through the public `MqttConnector`, for
each attack: the connector survives, reconnects, records and logs the reason, keeps delivering, and its
memory stays bounded. Plus Mosquitto with ``max_packet_size`` on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector, _hooks, _wire
from cascade.connectors.mqtt._client import DEFAULT_MAX_INBOUND_PACKET_SIZE, Link
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol.topics import topic_matches
from cascade.connectors.testing import eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}

Attack = Callable[[asyncio.StreamWriter], Awaitable[None]]


def _publish(topic: bytes, payload: bytes, *, header: int = 0x30, sids: tuple[int, ...] = ()) -> bytes:
    props = b"".join(b"\x0b" + _wire.varint(sid) for sid in sids)
    body = len(topic).to_bytes(2, "big") + topic + _wire.varint(len(props)) + props + payload
    return bytes((header,)) + _wire.varint(len(body)) + body


class HostileBroker:
    """Listens on a free loopback port. Session n (from 0) runs `attacks[n]` once the client's first
    PUBLISH (its presence) is acknowledged; sessions without an attack are well-behaved.
    """

    def __init__(self, attacks: dict[int, Attack]) -> None:
        self.attacks = attacks
        self.sessions = 0
        self.port = 0
        self.received_disconnects: list[bytes] = []  # what the client told us before leaving
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._subs: list[tuple[str, int, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def sid_of(self, topic_filter: str) -> int:
        """The subscription identifier the client gave `topic_filter` (0: none)."""
        return next(sid for f, sid, _ in self._subs if f == topic_filter)

    async def send_to_all(self, data: bytes) -> None:
        for writer in self._writers:
            if not writer.is_closing():
                writer.write(data)
                await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.sessions
        self.sessions += 1
        self._writers.append(writer)
        attack = self.attacks.get(number)
        try:
            while True:
                header, body = await _read_packet(reader)
                kind = header & 0xF0
                if kind == 0x10:  # CONNECT -> CONNACK (no properties)
                    writer.write(b"\x20\x03\x00\x00\x00")
                elif kind == 0x80:  # SUBSCRIBE -> SUBACK, granted QoS 1
                    self._subscribe(body, writer)
                    writer.write(b"\x90\x04" + body[:2] + b"\x00\x01")
                elif kind == 0xA0:  # UNSUBSCRIBE -> UNSUBACK
                    writer.write(b"\xb0\x04" + body[:2] + b"\x00\x00")
                elif kind == 0x30:
                    self._route(header, body, writer)
                    if attack is not None:  # the connector is up: its presence was acknowledged
                        await writer.drain()
                        task = asyncio.ensure_future(attack(writer))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                        attack = None
                elif kind == 0xC0:  # PINGREQ -> PINGRESP
                    writer.write(b"\xd0\x00")
                elif kind == 0xE0:
                    self.received_disconnects.append(body)
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._subs = [s for s in self._subs if s[2] is not writer]
            writer.close()

    def _subscribe(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        length, pos = _wire.read_varint(body, 2)
        sids = _wire.subscription_ids(body, pos, pos + length)
        pos += length
        size = int.from_bytes(body[pos : pos + 2], "big")
        topic_filter = body[pos + 2 : pos + 2 + size].decode()
        self._subs.append((topic_filter, sids[0] if sids else 0, writer))

    def _route(self, header: int, body: bytes, writer: asyncio.StreamWriter) -> None:
        qos, mid, _retain, topic, _problem, _sids, payload = _wire.parse_publish(header, body)
        if qos == 1:
            writer.write(b"\x40\x02" + mid.to_bytes(2, "big"))
        assert topic is not None
        for topic_filter, sid, target in self._subs:
            if topic_matches(topic_filter, topic):
                sids = (sid,) if sid else ()
                target.write(_publish(topic.encode(), payload, sids=sids))


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = (await reader.readexactly(1))[0]
    length = 0
    for shift in range(0, 28, 7):
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    return header, await reader.readexactly(length)


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[Callable[[dict[int, Attack]], Awaitable[HostileBroker]]]:
    brokers: list[HostileBroker] = []

    async def make(attacks: dict[int, Attack]) -> HostileBroker:
        broker = HostileBroker(attacks)
        await broker.start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.close()


def _send(data: bytes) -> Attack:
    async def attack(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return attack


async def _endless_noise(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(os.urandom(65536))
            await writer.drain()


async def _giant_then_flood(writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x30\xff\xff\xff\x7f")  # announces 268 435 455 bytes ...
    with contextlib.suppress(ConnectionError):
        for _ in range(400):  # ... and really sends up to 25 MiB of it
            writer.write(b"\x00" * 65536)
            await writer.drain()


async def _survives_and_delivers(broker: HostileBroker, connector: MqttConnector) -> list[dict[str, Any]]:
    """Subscribe, wait for the reconnect to the next (well-behaved) session, then check delivery."""
    got: list[dict[str, Any]] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        got.append(payload)

    await connector.subscribe("h/#", on_message)
    await eventually(lambda: broker.sessions >= 2 and connector.stats.reconnects >= 1, 10)
    await eventually(lambda: connector.connected, 10)
    await connector.publish("h/after", {"ok": True}, qos=1)
    await eventually(lambda: {"ok": True} in got, 10)
    return got


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (_send(b"\x30\xff\xff\xff\xff\x01"), ("remaining length longer than 4 bytes",)),
        (_send(b"\x30\x05\x00\x10ab\x00"), ("topic length runs past the end",)),
        (_send(_publish(b"h/q3", b"{}", header=0x36)), ("QoS 3",)),
        (_send(b"\x00\x00"), ("reserved packet type 0",)),
        (_send(b"\x10\x00"), ("CONNECT from the broker",)),
        (_send(b"\x30\xff\xff\xff\x7f"), ("packet too large",)),
        (_giant_then_flood, ("packet too large",)),
        (_endless_noise, ("malformed packet", "packet too large")),
    ],
    ids=[
        "bad-remaining-length",
        "topic-past-end",
        "qos3",
        "reserved-type",
        "connect-from-broker",
        "giant-length",
        "giant-flood",
        "noise",
    ],
)
@pytest.mark.asyncio
async def test_a_protocol_violation_ends_the_session_not_the_connector(
    hostile: Callable[[dict[int, Attack]], Awaitable[HostileBroker]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    attack: Attack,
    reason: tuple[str, ...],
) -> None:
    reasons: list[str | None] = []
    original = Link._mark_lost

    def record(link: Link) -> None:
        if not link.lost:
            reasons.append(link.loss_reason if link.loss_reason else None)
        original(link)

    monkeypatch.setattr(Link, "_mark_lost", record)
    broker = await hostile({0: attack})
    tracemalloc.start()
    try:
        with caplog.at_level(logging.DEBUG, "cascade.connectors.mqtt"):
            async with MqttConnector("127.0.0.1", broker.port, **FAST) as connector:
                await _survives_and_delivers(broker, connector)
                _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reasons, "the link was never lost"
    assert reasons[0] is not None
    assert any(text in reasons[0] for text in reason), reasons
    assert peak < 8 * 1024 * 1024, f"{peak} bytes traced at peak: the attack was buffered"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an ERROR was logged"
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    # We said why in a DISCONNECT, unless the socket was busy writing (then it just closes); the last
    # one (empty: normal disconnection) is from leaving the well-behaved session.
    assert broker.received_disconnects[-1:] == [b""]
    assert broker.received_disconnects[:-1] in ([b"\x95"], [b"\x81"], []), broker.received_disconnects


@pytest.mark.parametrize(
    ("topic", "why"),
    [(b"", "empty"), (b"h/#", "wildcard"), (b"h/\x00x", "NUL"), (b"h/\xff\xfe", "UTF-8")],
)
@pytest.mark.asyncio
async def test_an_unacceptable_inbound_topic_is_dropped_and_counted(
    hostile: Callable[[dict[int, Attack]], Awaitable[HostileBroker]],
    caplog: pytest.LogCaptureFixture,
    topic: bytes,
    why: str,
) -> None:
    broker = await hostile({})
    got: list[tuple[str, dict[str, Any]]] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        got.append((topic, payload))

    async with MqttConnector("127.0.0.1", broker.port, **FAST) as connector:
        await connector.subscribe("h/#", on_message)
        link = connector._session.link if connector._session is not None else None
        assert link is not None
        with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
            sids = (broker.sid_of("h/#"),)
            await broker.send_to_all(_publish(topic, b'{"bad": 1}', sids=sids))
            await broker.send_to_all(_publish(b"h/good", b'{"good": 1}', sids=sids))
            await eventually(lambda: ("h/good", {"good": 1}) in got, 10)
        assert link.malformed == 1
        assert not link.lost, "an unacceptable topic is dropped; the connection stays"
        assert [t for t, _ in got] == ["h/good"]
    assert any(why in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.asyncio
async def test_a_trickle_after_a_big_header_is_caught_by_keepalive(
    hostile: Callable[[dict[int, Attack]], Awaitable[HostileBroker]],
) -> None:
    """A header announcing 500 kB, then one byte every 50 ms: bytes arrive, no packet ever completes."""
    lost_at: list[float] = []
    started: list[float] = []

    async def trickle(writer: asyncio.StreamWriter) -> None:
        started.append(time.monotonic())
        writer.write(b"\x30" + _wire.varint(500_000))
        with contextlib.suppress(ConnectionError):
            while not writer.is_closing():
                writer.write(b"\x00")
                await writer.drain()
                await asyncio.sleep(0.05)  # the trickle's own pace (not synchronisation)

    broker = await hostile({0: trickle})
    keepalive = 2
    async with MqttConnector("127.0.0.1", broker.port, keepalive=keepalive, **FAST) as connector:
        link = connector._session.link if connector._session is not None else None
        assert link is not None
        await eventually(lambda: link.lost, 3 * keepalive)
        lost_at.append(time.monotonic())
        assert link.loss_reason is not None
        assert "keepalive timeout" in link.loss_reason
        await _survives_and_delivers(broker, connector)
    # Silence counts from the last complete packet, which came before the trickle started.
    assert lost_at[0] - started[0] <= 1.5 * keepalive, lost_at[0] - started[0]


@pytest.mark.parametrize("packet", [b"\xe0\x01\x8e", b"\xe0\x02\x8e\x00"], ids=["bare", "no-properties"])
@pytest.mark.asyncio
async def test_a_server_disconnect_is_reported_by_reason_name(
    hostile: Callable[[dict[int, Attack]], Awaitable[HostileBroker]], packet: bytes
) -> None:
    broker = await hostile({0: _send(packet)})  # DISCONNECT "Session taken over"
    async with MqttConnector("127.0.0.1", broker.port, **FAST) as connector:
        link = connector._session.link if connector._session is not None else None
        assert link is not None
        await eventually(lambda: link.lost, 10)
        assert link.loss_reason == "the broker sent DISCONNECT: Session taken over (0x8E)"
        await _survives_and_delivers(broker, connector)


@pytest.mark.parametrize("public_api_only", [False, True], ids=["private", "public"])
@pytest.mark.asyncio
async def test_mosquitto_limits_are_exchanged_both_ways(
    mosquitto_factory: Callable[..., MosquittoServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    public_api_only: bool,
) -> None:
    """The broker's Maximum Packet Size is read from CONNACK; ours (1 MiB by default) is announced, so
    Mosquitto never sends this connector a bigger message: it costs no memory here (on both paths)."""
    monkeypatch.setattr(_hooks, "PUBLIC_API_ONLY", public_api_only)
    server = mosquitto_factory(extra_config="max_packet_size 3000000\n")
    got: list[dict[str, Any]] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        got.append(payload)

    async with MqttConnector(server.host, server.port, **FAST) as connector:
        link = connector._session.link if connector._session is not None else None
        assert link is not None
        assert link.private_api is not public_api_only
        assert link.max_packet_size == 3_000_000
        assert link.fits("big/x", b"y" * (3_000_000 - 13), 0)
        assert not link.fits("big/x", b"y" * (3_000_000 - 12), 0)
        assert not link.fits("big/x", b"y" * (3_000_000 - 13), 1)
        await connector.subscribe("big/#", on_message)
        big = tmp_path / "big.json"
        big.write_bytes(b'{"x": "' + b"y" * (2 * DEFAULT_MAX_INBOUND_PACKET_SIZE) + b'"}')
        tracemalloc.start()
        try:
            # Another process publishes, so that only what reaches this connector is traced here.
            for topic, option in (("big/one", ["-f", str(big)]), ("big/two", ["-m", '{"small": true}'])):
                args = ["-V", "mqttv5", "-q", "1", "-t", topic, *option]
                await asyncio.to_thread(_mosquitto_pub, server, args)
            await eventually(lambda: {"small": True} in got, 10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got == [{"small": True}], "the oversize message was delivered"
        assert peak < DEFAULT_MAX_INBOUND_PACKET_SIZE, f"{peak} bytes traced at peak"
        assert not link.lost


def _mosquitto_pub(server: MosquittoServer, args: list[str]) -> None:
    exe = shutil.which("mosquitto_pub")
    assert exe is not None, "mosquitto_pub not installed (apt-get install mosquitto-clients)"
    subprocess.run([exe, "-h", server.host, "-p", str(server.port), *args], check=True, timeout=30)
