"""Protocol negotiation: ``protocol="auto"`` tries MQTT 5, falls back to 3.1.1, keeps the result.

A `VersionGate` in front of a real Mosquitto plays a broker that speaks only MQTT 3.1.1, refusing an
MQTT 5 CONNECT the ways real brokers do (measured in tests/brokers/results): a 3.1.1-style CONNACK with
return code 1 (aedes, amqtt), closing the connection (RabbitMQ 3.10), or never answering (amqtt 0.12
with CONNECT properties). Other CONNECTs are piped through to Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import MosquittoServer
from cascade.connectors.protocol import ConnectionFailedError
from cascade.connectors.testing import Recorder, eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}

Refusal = Literal["connack", "close", "silence"]


class VersionGate:
    """A TCP proxy to `upstream` that refuses CONNECTs of the protocol levels in `refuse` (5: MQTT 5,
    4: MQTT 3.1.1) with `how`; `attempts` counts CONNECTs per level; `cut()` resets every connection.
    """

    def __init__(self, upstream: MosquittoServer, refuse: set[int], how: Refusal) -> None:
        self._upstream = upstream
        self.refuse = refuse
        self.how: Refusal = how
        self.attempts: dict[int, int] = {4: 0, 5: 0}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readexactly(2)
            length, shift, more = head[1] & 0x7F, 7, head[1] & 0x80
            raw = head
            while more:
                byte = await reader.readexactly(1)
                raw += byte
                length |= (byte[0] & 0x7F) << shift
                shift, more = shift + 7, byte[0] & 0x80
            body = await reader.readexactly(length)
            level = body[6]  # after the protocol name "\x00\x04MQTT"
            self.attempts[level] = self.attempts.get(level, 0) + 1
            if level in self.refuse:
                if self.how == "connack":
                    writer.write(b"\x20\x02\x00\x01")  # 3.1.1: unacceptable protocol version
                    await writer.drain()
                    await reader.read()  # the client closes
                elif self.how == "silence":
                    await reader.read()
                return
            up_reader, up_writer = await asyncio.open_connection(self._upstream.host, self._upstream.port)
            self._writers.add(up_writer)
            up_writer.write(raw + body)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def cut(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def gate(mosquitto: MosquittoServer) -> AsyncIterator[VersionGate]:
    gate = VersionGate(mosquitto, {5}, "connack")
    await gate.start()
    yield gate
    await gate.close()


@pytest.mark.asyncio
async def test_auto_speaks_mqtt5_with_mosquitto_and_3_1_1_when_forced(mosquitto: MosquittoServer) -> None:
    async with MqttConnector(mosquitto.host, mosquitto.port) as auto:
        assert auto.protocol_version == "5"
    async with MqttConnector(mosquitto.host, mosquitto.port, protocol="3.1.1") as old:
        assert old.protocol_version == "3.1.1"
    assert MqttConnector(mosquitto.host, mosquitto.port).protocol_version is None  # not connected yet


@pytest.mark.parametrize("how", ["connack", "close", "silence"])
@pytest.mark.asyncio
async def test_auto_falls_back_to_3_1_1_and_logs_it_once(
    gate: VersionGate, how: Refusal, caplog: pytest.LogCaptureFixture
) -> None:
    gate.how = how
    caplog.set_level(logging.INFO, logger="cascade.connectors.mqtt")
    options = {**FAST, "connect_timeout": 1.0}
    async with MqttConnector("127.0.0.1", gate.port, **options) as connector:
        assert connector.protocol_version == "3.1.1"
        seen = Recorder()
        await connector.subscribe("t/#", seen)
        await connector.publish("t/x", {"n": 1}, qos=1)
        await seen.wait_for(1)
        gate.cut()  # a loss: the reconnect speaks 3.1.1 at once
        await eventually(lambda: connector.stats.reconnects == 1 and connector.connected)
        await connector.publish("t/x", {"n": 2}, qos=1)
        await seen.wait_for(2)
    assert gate.attempts[5] == 1  # negotiated once, kept for the reconnect
    assert caplog.text.count("speaking MQTT 3.1.1") == 1


@pytest.mark.asyncio
async def test_a_broker_speaking_neither_version_gets_an_error_saying_so(gate: VersionGate) -> None:
    gate.refuse = {4, 5}
    connector = MqttConnector("127.0.0.1", gate.port, connect_timeout=1.0)
    with pytest.raises(ConnectionFailedError, match=r"speaks neither MQTT 5 nor MQTT 3\.1\.1") as caught:
        await connector.connect()
    assert "MQTT 5: " in caught.value.detail
    assert "MQTT 3.1.1: " in caught.value.detail
    assert "Unsupported protocol version (0x84)" in caught.value.detail  # the reason code by name


@pytest.mark.asyncio
async def test_forcing_mqtt5_on_a_3_1_1_broker_says_what_to_do(gate: VersionGate) -> None:
    connector = MqttConnector("127.0.0.1", gate.port, protocol="5", connect_timeout=1.0)
    with pytest.raises(ConnectionFailedError, match="may not speak MQTT 5: try protocol='auto'"):
        await connector.connect()
    assert gate.attempts == {4: 0, 5: 1}
