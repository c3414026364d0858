"""The topic grammar against a real Mosquitto: it refuses what the broker refuses, and nothing else.

Two halves. First, a hand-written MQTT 3.1.1 client (raw bytes on a socket, so nothing validates on the
way) shows what Mosquitto itself does: it closes the connection of a client that sends a topic or filter
holding a control character, a non-character or an encoded surrogate, and keeps it for the neighbours
of those ranges. Second, the connector refuses the same topics in the caller with `TopicError`, before
anything is sent, and keeps working: later publishes and subscriptions are delivered, no reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import TopicError, validate_filter, validate_topic
from cascade.connectors.testing import Recorder

pytestmark = pytest.mark.mosquitto

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}
WAIT = 5.0  # seconds, for one answer from a broker on loopback

# One of every class the grammar refuses, at the edges of each range (TAB, LF, ESC, NEL as the issue saw).
REFUSED = [
    "\x01", "\t", "\n", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f",
    "\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff",
]  # fmt: skip
# Their neighbours, which the grammar and the broker both accept.
ALLOWED = [" ", "~", "\xa0", "\ufdcf", "\ufdf0", "\ufffd", "\U0001fffd", "\U0010fffd", "über/日本/عربى/ a b"]
_ids = itertools.count()


def _length(n: int) -> bytes:
    """MQTT's variable-length integer (remaining length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _length(len(body)) + body


class RawClient:
    """A minimal MQTT 3.1.1 client over asyncio streams that sends topic bytes exactly as given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, broker: MosquittoServer) -> RawClient:
        reader, writer = await asyncio.open_connection(broker.host, broker.port)
        client_id = f"grammar-raw-{next(_ids)}".encode()
        writer.write(
            _packet(0x10, _string(b"MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + _string(client_id))
        )
        async with asyncio.timeout(WAIT):
            connack = await reader.readexactly(4)
        assert connack == b"\x20\x02\x00\x00", connack
        return cls(reader, writer)

    def publish(self, topic: bytes) -> None:
        self.writer.write(_packet(0x30, _string(topic) + b"{}"))  # QoS 0

    def subscribe(self, topic_filter: bytes) -> None:
        self.writer.write(_packet(0x82, (1).to_bytes(2, "big") + _string(topic_filter) + b"\x00"))

    async def alive(self) -> bool:
        """PINGREQ: True if the broker answers (after any SUBACK), False if it closed the connection."""
        try:
            self.writer.write(b"\xc0\x00")
            async with asyncio.timeout(WAIT):
                while True:
                    header = await self.reader.read(1)
                    if not header:
                        return False
                    size = (await self.reader.readexactly(1))[0]  # every answer here is shorter than 128
                    await self.reader.readexactly(size)
                    if header == b"\xd0":
                        return True
        except (ConnectionError, asyncio.IncompleteReadError):
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):  # the broker may have closed it first
            await self.writer.wait_closed()


@pytest_asyncio.fixture
async def raw(mosquitto: MosquittoServer) -> AsyncIterator[RawClient]:
    client = await RawClient.connect(mosquitto)
    yield client
    await client.close()


# --- what Mosquitto refuses ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("char", REFUSED, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("operation", ["publish", "subscribe"])
async def test_mosquitto_disconnects_a_client_sending_what_the_grammar_refuses(
    raw: RawClient, char: str, operation: str
) -> None:
    topic = f"grammar/a{char}b"
    with pytest.raises(TopicError):
        (validate_topic if operation == "publish" else validate_filter)(topic)
    getattr(raw, operation)(topic.encode("utf-8"))
    assert not await raw.alive(), f"Mosquitto accepted {operation} of U+{ord(char):04X}"


@pytest.mark.asyncio
@pytest.mark.parametrize("operation", ["publish", "subscribe"])
async def test_mosquitto_disconnects_a_client_sending_an_encoded_surrogate(
    raw: RawClient, operation: str
) -> None:
    with pytest.raises(TopicError):
        validate_topic("grammar/\ud800")
    getattr(raw, operation)("grammar/\ud800".encode("utf-8", "surrogatepass"))  # b"\xed\xa0\x80"
    assert not await raw.alive()


@pytest.mark.asyncio
@pytest.mark.parametrize("text", ALLOWED, ids=lambda c: f"U+{ord(c[0]):04X}" if len(c) == 1 else "scripts")
async def test_mosquitto_keeps_a_client_sending_what_the_grammar_accepts(raw: RawClient, text: str) -> None:
    topic = f"grammar/{text}"
    assert validate_topic(topic) == topic
    assert validate_filter(topic + "/#") == topic + "/#"
    raw.publish(topic.encode("utf-8"))
    raw.subscribe((topic + "/#").encode("utf-8"))
    assert await raw.alive()


# --- the connector refuses them in the caller and carries on --------------------------------------------


@pytest.mark.asyncio
async def test_a_refused_topic_raises_in_the_caller_and_the_connector_keeps_working(
    mosquitto: MosquittoServer,
) -> None:
    publisher = MqttConnector(mosquitto.host, mosquitto.port, **FAST)
    subscriber = MqttConnector(mosquitto.host, mosquitto.port, **FAST)
    async with publisher, subscriber:
        received = Recorder("grammar")
        await subscriber.subscribe("grammar/ok/#", received)
        before = publisher.stats
        for char in [*REFUSED, "\ud800"]:
            for qos in (0, 1):
                with pytest.raises(TopicError) as info:
                    await publisher.publish(f"grammar/ok/a{char}b", {"n": -1}, qos=qos)
                assert f"U+{ord(char):04X}" in info.value.problem
            with pytest.raises(TopicError) as info:
                await subscriber.subscribe(f"grammar/ok/{char}/#", Recorder("never"))
            assert info.value.kind == "filter"
            with pytest.raises(TopicError):
                await subscriber.subscribe(f"grammar/{char}", Recorder("never"))
        assert publisher.stats.published == before.published  # nothing refused was accepted or queued
        # Later publishes, both QoS, arrive; nobody reconnected.
        for n in range(5):
            await publisher.publish("grammar/ok/later", {"n": n}, qos=1)
        await publisher.publish("grammar/ok/later", {"n": 5})
        await publisher.publish("grammar/ok/über/日本/عربى/ a b", {"n": 6}, qos=1)
        await received.wait_for(7)
        assert received.payloads == [{"n": n} for n in range(7)]
        assert received.topics[-1] == "grammar/ok/über/日本/عربى/ a b"
        assert publisher.connected
        assert subscriber.connected
        assert publisher.stats.reconnects == 0
        assert subscriber.stats.reconnects == 0
        assert publisher.stats.dropped == 0


def test_a_source_that_cannot_be_a_topic_level_is_refused_at_construction() -> None:
    for char in ("\t", "\x85", "\ufffe", "\ud800"):
        with pytest.raises(TopicError) as info:
            MqttConnector("127.0.0.1", 1, source=f"worker{char}")
        assert info.value.kind == "source"
        assert "at index 6" in info.value.problem
