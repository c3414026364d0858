"""The whole contract through the matrix's harness factory, on Mosquitto with MQTT 5.

This proves `tests.brokers.harness` drives the contract as the contract run's own MQTT harness does (the
same tests, the same capabilities, no skips). The other cells of the matrix are the same few lines with
another server fixture, a ``protocol=`` for the connector, and the broker's declared deviations; they
come with protocol negotiation. Outcomes: results/contract-mosquitto-5.json (docs/brokers.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

import pytest_asyncio
from cascade.connectors.testing import ConnectorContract

from tests.brokers.harness import BrokerHarness, harness_for
from tests.brokers.servers.mosquitto import MosquittoBroker


class TestMosquittoMqtt5Contract(ConnectorContract):
    matrix: ClassVar[tuple[str, str]] = ("mosquitto", "5")
    known_deviations: ClassVar[Mapping[str, str]] = {}  # Mosquitto keeps every promise over MQTT 5

    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[BrokerHarness]:
        server = MosquittoBroker()  # a private broker per test: the outage tests stop it
        server.start()
        try:
            async with harness_for(server) as harness:
                yield harness
        finally:
            server.close()
