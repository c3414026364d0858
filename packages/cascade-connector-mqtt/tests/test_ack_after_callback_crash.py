"""QoS 1 acknowledged => its callback ran, across a real crash (docs/contract.md, promise 13).

A subscriber process runs an `MqttConnector` whose QoS 1 callback is slow and records each message's
sequence number in a file (flushed and fsynced before it returns). It reaches a private Mosquitto
through a recording `FaultProxy`; the test publishes a stream and SIGKILLs the subscriber mid-stream.
Then, from the bytes the proxy forwarded: every PUBACK the subscriber sent answers a PUBLISH (the latest
one with that packet id before it) whose sequence number is in the file, and some PUBLISHes had been
forwarded and not acknowledged when it died (otherwise the kill came too late to prove anything).

The subscriber runs the default driver. On the public-API fallback (``CASCADE_MQTT_PUBLIC_API_ONLY=1``)
paho acknowledges on receipt (docs/mqtt.md, "Limits and failure modes"), and this test then fails
with early PUBACKs, which shows that it can: it is not run there until the fallback keeps the promise.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cascade.connectors.mqtt import MqttConnector, _wire
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
from cascade.connectors.mqtt import MqttConnector

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
    written.write_text(connector.protocol_version or "")
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
@pytest.mark.parametrize(("protocol", "version"), [("auto", "5"), ("3.1.1", "3.1.1")])
async def test_a_puback_only_ever_follows_the_callback_even_across_sigkill(
    mosquitto_factory: Callable[..., MosquittoServer], tmp_path: Path, protocol: str, version: str
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
            env={**os.environ, "CASCADE_MQTT_PUBLIC_API_ONLY": ""},  # the default (private hooks) driver
        )
        code: int | None = None  # the subscriber's exit status once killed
        try:
            await eventually(lambda: ready.exists() or child.returncode is not None, 30)
            assert child.returncode is None, f"the subscriber exited with {child.returncode}"
            assert ready.read_text() == version
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
