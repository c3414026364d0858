"""The whole contract suite against the in-memory connector (every capability, no skips)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from cascade.connectors.testing import ALL_CAPABILITIES, ConnectorContract, InMemoryHarness


class TestInMemoryContract(ConnectorContract):
    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[InMemoryHarness]:
        harness = InMemoryHarness()  # its broker has a 1 MiB max_packet_size: PACKET_LIMIT too
        assert harness.capabilities == ALL_CAPABILITIES
        yield harness
        await harness.aclose()
