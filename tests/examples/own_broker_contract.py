# --8<-- [start:own-broker]
"""The connector contract against YOUR broker: set BROKER_HOST (and BROKER_PORT, BROKER_USER, ...)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio
from cascade.connectors.mqtt.testing import MqttHarness
from cascade.connectors.testing import ConnectorContract


class TestMyBrokerContract(ConnectorContract):
    contract_timeout_scale = 2.0  # a broker across the network is slower than loopback

    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[MqttHarness]:
        # It cannot stop your broker: no Capability.STOP_BACKEND, so the outage tests skip, saying so.
        harness = MqttHarness(
            host=os.environ["BROKER_HOST"],
            port=int(os.environ.get("BROKER_PORT", "1883")),
            username=os.environ.get("BROKER_USER"),
            password=os.environ.get("BROKER_PASSWORD"),
        )
        yield harness
        await harness.aclose()


# --8<-- [end:own-broker]
