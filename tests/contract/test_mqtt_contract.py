"""The whole contract suite against `MqttConnector` on a real Mosquitto (every capability, no skips).

Each test gets a private broker (so outage tests can stop it). Every connector reaches the broker
through its own `FaultProxy`, which is how `drop` cuts exactly that connector's connection abruptly
(TCP reset, no DISCONNECT: Mosquitto publishes its last will). `inject_raw` publishes with a plain
aiomqtt client, as a foreign client would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector
from cascade.connectors.testing import ConnectorContract

_ids = itertools.count()


class MqttHarness:
    """`ContractHarness` + `SupportsInjectRaw` + `SupportsDrop` + `SupportsOutage` over Mosquitto."""

    def __init__(self, server: MosquittoServer) -> None:
        self.server = server
        self._made: list[tuple[MqttConnector, FaultProxy]] = []

    async def new_connector(self, **options: Any) -> MqttConnector:
        proxy = FaultProxy(self.server.host, self.server.port)
        await proxy.start()
        connector = MqttConnector(self.server.host, proxy.port, **options)
        self._made.append((connector, proxy))
        return connector

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        identifier = f"contract-inject-{next(_ids)}"
        async with aiomqtt.Client(self.server.host, self.server.port, identifier=identifier) as client:
            await client.publish(topic, data, qos=1, retain=retain)

    async def drop(self, connector: Connector) -> None:
        for made, proxy in self._made:
            if made is connector:
                assert proxy.cut() >= 1, f"{connector!r} had no open connection to drop"
                return
        raise AssertionError(f"{connector!r} was not made by this harness")

    async def stop_backend(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start_backend(self) -> None:
        await asyncio.to_thread(self.server.start)

    async def aclose(self) -> None:
        made, self._made = self._made, []
        for connector, _proxy in made:
            async with asyncio.timeout(15):
                await connector.disconnect()
        for _connector, proxy in made:
            await proxy.close()


class TestMqttContract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self, mosquitto_factory: Callable[..., MosquittoServer]) -> AsyncIterator[MqttHarness]:
        harness = MqttHarness(mosquitto_factory())
        yield harness
        await harness.aclose()
