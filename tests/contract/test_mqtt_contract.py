"""The whole contract suite against `MqttConnector` on a real Mosquitto (every capability, no skips).

Each test gets a private broker (so outage tests can stop it). The harness is the public
`cascade.connectors.mqtt.testing.MqttHarness`: every connector reaches the broker through its own
`FaultProxy`, which is how ``drop`` cuts exactly that connector's connection abruptly (TCP reset, no
DISCONNECT: Mosquitto publishes its last will); ``inject_raw`` publishes with a plain aiomqtt client,
as a foreign client would. The broker has a 1 MiB ``max_packet_size`` (it announces it in CONNACK), so
``packet_limit`` is declared too.
"""

# --8<-- [start:private-broker]
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from cascade.connectors.mqtt.testing import MosquittoServer, MqttHarness
from cascade.connectors.testing import ALL_CAPABILITIES, DEFAULT_PACKET_LIMIT, ConnectorContract

__all__ = ["MqttHarness", "TestMqttContract"]


class TestMqttContract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self, mosquitto_factory: Callable[..., MosquittoServer]) -> AsyncIterator[MqttHarness]:
        # A Maximum Packet Size (1 MiB) the broker announces: the oversize test needs one (PACKET_LIMIT).
        harness = MqttHarness(mosquitto_factory(max_packet_size=DEFAULT_PACKET_LIMIT))
        assert harness.capabilities == ALL_CAPABILITIES
        yield harness
        await harness.aclose()


# --8<-- [end:private-broker]
