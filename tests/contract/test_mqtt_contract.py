"""The whole contract suite against `MqttConnector` on a real Mosquitto (every capability, no skips).

Each test gets a private broker (so outage tests can stop it). The harness is the public
`cascade.connectors.mqtt.testing.MqttHarness`: every connector reaches the broker through its own
`FaultProxy`, which is how ``drop`` cuts exactly that connector's connection abruptly (TCP reset, no
DISCONNECT: Mosquitto publishes its last will); ``inject_raw`` publishes with a plain aiomqtt client,
as a foreign client would.
"""

# --8<-- [start:private-broker]
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from cascade.connectors.mqtt.testing import MosquittoServer, MqttHarness
from cascade.connectors.testing import ALL_CAPABILITIES, ConnectorContract

__all__ = ["MqttHarness", "TestMqttContract"]


class TestMqttContract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self, mosquitto_factory: Callable[..., MosquittoServer]) -> AsyncIterator[MqttHarness]:
        harness = MqttHarness(mosquitto_factory())
        assert harness.capabilities == ALL_CAPABILITIES
        yield harness
        await harness.aclose()


# --8<-- [end:private-broker]
