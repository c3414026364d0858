"""QoS 1 acknowledged => its callback ran, across a real crash (docs/contract.md, promise 13).

A subscriber process runs an `MqttConnector` whose QoS 1 callback is slow and records each message's
sequence number in a file (flushed and fsynced before it returns). It reaches a private Mosquitto
through a recording `FaultProxy`; the test publishes a stream and SIGKILLs the subscriber mid-stream.
Then, from the bytes the proxy forwarded: every PUBACK the subscriber sent answers a PUBLISH (the latest
one with that packet id before it) whose sequence number is in the file, and some PUBLISHes had been
forwarded and not acknowledged when it died (otherwise the kill came too late to prove anything).

Run on both transport drivers: the default one (private hooks) and the public-API fallback
(``CASCADE_MQTT_PUBLIC_API_ONLY=1`` in the subscriber's environment; paho's ``manual_ack``). The
subscriber reports which one it ran. Before the fallback acknowledged manually, paho sent each PUBACK
on receipt and this test failed there with early PUBACKs, which shows that it can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cascade.connectors.mqtt import MqttConnector, _hooks, _wire
from cascade.connectors.mqtt._client import Link
from cascade.connectors.mqtt._link_types import LinkSettings, MqttVersion
from cascade.connectors.mqtt.testing import FaultProxy, MosquittoServer
from cascade.connectors.testing import eventually

TOPIC = "crash/acked"
TOTAL = 600  # under Mosquitto's default max_queued_messages (1000): the broker drops none for us
KILL_AT = 60  # callbacks finished when the subscriber is killed
# The subscriber's max_inbound, announced as its Receive Maximum: the broker keeps about this many
# PUBLISHes unacknowledged in flight to it (Mosquitto 2.0.11 sends more after a burst of PUBACKs).
WINDOW = 20

SUBSCRIBER = """\
import asyncio, os, sys
from pathlib import Path
from cascade.connectors.mqtt import MqttConnector, _hooks

port, protocol, topic, window = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
out, ready = Path(sys.argv[5]), Path(sys.argv[6])


async def main() -> None:
    handled = out.open("a")

    async def on_message(topic: str, payload: dict) -> None:
        # The callback's work, the slow consumer under test (not synchronisation): awaited, so the
        # connector's loop runs on meanwhile and could send an early PUBACK if it were going to.
        await asyncio.sleep(0.004)
        handled.write(f"{payload['seq']}\\n")
        handled.flush()
        os.fsync(handled.fileno())

    connector = MqttConnector("127.0.0.1", port, protocol=protocol, max_inbound=window)
    await connector.connect()
    await connector.subscribe(topic, on_message)
    written = ready.with_suffix(".tmp")
    driver = "private" if _hooks.private_api_enabled() else "public"
    written.write_text(f"{connector.protocol_version} {driver}")
    written.rename(ready)  # whole, or not there yet
    await asyncio.Event().wait()  # until SIGKILL


asyncio.run(main())
"""


@dataclass
class Capture:
    """What the proxy saw of the subscriber's connection, parsed."""

    v5: bool = True
    forwarded: list[int] = field(default_factory=list)  # seq of each PUBLISH sent to the subscriber
    acknowledged: list[int] = field(default_factory=list)  # seq of the PUBLISH each PUBACK answered
    orphans: list[int] = field(default_factory=list)  # packet ids PUBACKed with no PUBLISH before


def _packets(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """Take the complete MQTT packets off the front of `buffer`: (first byte, body)."""
    while len(buffer) >= 2:
        try:
            length, start = _wire.read_varint(buffer, 1)
        except IndexError:
            return
        if start + length > len(buffer):
            return
        packet = (buffer[0], bytes(buffer[start : start + length]))
        del buffer[: start + length]
        yield packet


def parse(recorded: list[tuple[int, str, bytes]]) -> Capture:
    """Replay the proxy's recording in its order: each packet counts once its last byte went through."""
    capture = Capture()
    buffers = {"up": bytearray(), "down": bytearray()}
    latest: dict[int, int | None] = {}  # packet id -> seq of the latest PUBLISH to the subscriber
    for _connection, direction, data in recorded:
        buffers[direction] += data
        for header, body in _packets(buffers[direction]):
            kind = header & 0xF0
            if direction == "up" and kind == 0x10:  # CONNECT: the protocol level follows "MQTT"
                capture.v5 = body[6] == 5
            elif direction == "down" and kind == _wire.PUBLISH:
                qos, mid, _retain, topic, _problem, _sids, payload = _wire.parse_publish(
                    header, body, capture.v5
                )
                seq = json.loads(payload)["seq"] if topic == TOPIC else None
                if seq is not None:
                    capture.forwarded.append(seq)
                if qos == 1:
                    latest[mid] = seq
            elif direction == "up" and kind == _wire.PUBACK:
                mid = int.from_bytes(body[:2], "big")
                if mid not in latest:
                    capture.orphans.append(mid)
                    continue
                seq = latest.pop(mid)  # one PUBACK per PUBLISH: a later one needs a new PUBLISH
                if seq is not None:
                    capture.acknowledged.append(seq)
    return capture


def _lines(path: Path) -> list[int]:
    """The complete lines of the callback file (the last one may still be being written)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [int(line) for line in text[: text.rfind("\n") + 1].split()]


@pytest.mark.asyncio
@pytest.mark.parametrize("driver", ["private", "public"])
@pytest.mark.parametrize(("protocol", "version"), [("auto", "5"), ("3.1.1", "3.1.1")])
async def test_a_puback_only_ever_follows_the_callback_even_across_sigkill(
    mosquitto_factory: Callable[..., MosquittoServer],
    tmp_path: Path,
    protocol: str,
    version: str,
    driver: str,
) -> None:
    """Every message the SIGKILLed subscriber acknowledged is in its callback file; some were in flight."""
    broker = mosquitto_factory()
    script = tmp_path / "subscriber.py"
    script.write_text(SUBSCRIBER)
    handled, ready = tmp_path / "handled.txt", tmp_path / "ready.txt"
    async with FaultProxy(broker.host, broker.port) as proxy:
        proxy.record = True
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *(str(arg) for arg in (script, proxy.port, protocol, TOPIC, WINDOW, handled, ready)),
            env={**os.environ, "CASCADE_MQTT_PUBLIC_API_ONLY": "1" if driver == "public" else ""},
        )
        code: int | None = None  # the subscriber's exit status once killed
        try:
            await eventually(lambda: ready.exists() or child.returncode is not None, 30)
            assert child.returncode is None, f"the subscriber exited with {child.returncode}"
            assert ready.read_text() == f"{version} {driver}"
            publisher = MqttConnector(broker.host, broker.port)
            async with publisher:
                sends = asyncio.gather(*(publisher.publish(TOPIC, {"seq": i}, qos=1) for i in range(TOTAL)))
                await eventually(lambda: len(_lines(handled)) >= KILL_AT or child.returncode is not None, 60)
                child.send_signal(signal.SIGKILL)
                async with asyncio.timeout(10):
                    code = await child.wait()
                await sends
            await eventually(lambda: proxy.active == 0, 10)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert code == -signal.SIGKILL, f"the subscriber ended with {code} before it was killed"
        assert proxy.connections == 1, "the subscriber reconnected: the capture is not one session"
        capture = parse(proxy.recorded)
    done = _lines(handled)
    assert capture.v5 == (version == "5")
    assert done == sorted(set(done)), "callbacks ran out of order or twice"
    assert not capture.orphans, f"PUBACKs with no PUBLISH before them: {capture.orphans[:10]}"
    early = sorted(set(capture.acknowledged) - set(done))
    assert not early, f"acknowledged, but the callback never finished: {early[:10]}"
    assert len(capture.acknowledged) >= KILL_AT - WINDOW, "too few PUBACKs seen to prove anything"
    in_flight = sorted(set(capture.forwarded) - set(capture.acknowledged))
    assert len(in_flight) >= WINDOW // 2, (
        f"only {len(in_flight)} PUBLISHes forwarded and not acknowledged at the kill: it came too late"
    )
    assert len(done) < TOTAL


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return header, await reader.readexactly(length)


class _Owner:
    """A `Link` owner that acknowledges each QoS 1 message as soon as it arrives."""

    def __init__(self) -> None:
        self.got: list[str] = []
        self.malformed = 0

    def _link_message(
        self, link: Link, topic: str, payload: bytes | bytearray, retain: bool, sids: Sequence[int], mid: int
    ) -> None:
        self.got.append(topic)
        if mid:
            link.ack(mid)

    def _link_malformed(self, link: Link, detail: str) -> None:
        self.malformed += 1

    def _link_published(self, link: Link, mid: int, reason: int) -> None:
        pass

    def _link_lost(self, link: Link) -> None:
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize("public_api_only", [False, True], ids=["private", "public"])
# (An empty topic is no drop on the fallback: paho's own parser refuses it on MQTT 3.1.1, a protocol
# error that ends the connection.)
@pytest.mark.parametrize("topic", [b"h/#", b"h/\xff\xfe"], ids=["wildcard", "utf8"])
async def test_a_dropped_qos1_message_is_still_acknowledged_on_both_drivers(
    monkeypatch: pytest.MonkeyPatch, public_api_only: bool, topic: bytes
) -> None:
    """A QoS 1 PUBLISH with an unacceptable topic is dropped, counted and acknowledged (PUBACK), so the
    broker does not resend it; the next one is delivered and acknowledged by its owner."""
    monkeypatch.setattr(_hooks, "PUBLIC_API_ONLY", public_api_only)
    pubacks: list[int] = []
    acked_both = asyncio.get_running_loop().create_future()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header, body = await _read_packet(reader)
                kind = header & 0xF0
                if kind == 0x10:  # CONNECT (MQTT 3.1.1) -> CONNACK
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 0x80:  # SUBSCRIBE -> SUBACK (QoS 1), then a bad and a good QoS 1 PUBLISH
                    writer.write(b"\x90\x03" + body[:2] + b"\x01")
                    for mid, name in ((7, topic), (8, b"h/good")):
                        packet = len(name).to_bytes(2, "big") + name + mid.to_bytes(2, "big") + b"{}"
                        writer.write(b"\x32" + _wire.varint(len(packet)) + packet)
                elif kind == _wire.PUBACK:
                    pubacks.append(int.from_bytes(body[:2], "big"))
                    if len(pubacks) == 2 and not acked_both.done():
                        acked_both.set_result(None)
                elif kind == 0xE0:  # DISCONNECT
                    break
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    settings = LinkSettings(
        hostname="127.0.0.1", port=port, client_id="drop-ack", username=None, password=None, tls=None,
        keepalive=30, connect_timeout=5.0, will_topic="h/will", will_payload=b"", protocol=MqttVersion.V311,
    )  # fmt: skip
    owner = _Owner()
    async with server:
        link = await Link.open(settings, owner)
        try:
            assert link.private_api is not public_api_only
            assert await asyncio.wait_for(link.subscribe("h/#", 1, None), 5) == 1
            await asyncio.wait_for(acked_both, 10)
        finally:
            await link.close(1.0)
    assert sorted(pubacks) == [7, 8]
    assert owner.got == ["h/good"]
    assert owner.malformed == 1
    assert link.malformed == 1
