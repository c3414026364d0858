"""The whole contract again, with the MQTT connector forced onto MQTT 3.1.1 (``protocol="3.1.1"``).

What MQTT 3.1.1 changes (docs/brokers.md): no subscription identifiers (the connector subscribes the
covering set of its filters at the broker and matches locally), no `$` sync topic (its markers go to
``cascade/_sync/{client}``), no properties on the wire. On Mosquitto every promise is still kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from cascade.connectors.mqtt.testing import MosquittoServer, MqttHarness
from cascade.connectors.testing import ALL_CAPABILITIES, ConnectorContract


class TestMqtt311Contract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self, mosquitto_factory: Callable[..., MosquittoServer]) -> AsyncIterator[MqttHarness]:
        harness = MqttHarness(mosquitto_factory(), connector_options={"protocol": "3.1.1"})
        assert harness.capabilities == ALL_CAPABILITIES
        yield harness
        await harness.aclose()
