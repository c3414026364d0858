# --8<-- [start:deviation]
"""A connector that cannot keep one promise declares it, with the reason, and runs the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import pytest_asyncio
from cascade.connectors.testing import ConnectorContract, InMemoryConnector, InMemoryHarness


class ClampingConnector(InMemoryConnector):
    """An example backend limitation: qos 2 is sent as qos 1 instead of being refused."""

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        await super().publish(topic, payload, qos=min(max(qos, 0), 1), retain=retain)


class TestClampingConnectorContract(ConnectorContract):
    known_deviations: ClassVar[dict[str, str]] = {
        "test_qos1_publish_returns_after_the_backend_accepted_it": "clamps qos 2 to 1 instead of refusing it",
    }

    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[InMemoryHarness]:
        harness = InMemoryHarness(connector_class=ClampingConnector)
        yield harness
        await harness.aclose()


# --8<-- [end:deviation]
