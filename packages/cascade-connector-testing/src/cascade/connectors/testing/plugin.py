"""The pytest plugin of cascade-connector-testing, loaded through the ``pytest11`` entry point.

Fixtures:

- ``memory_broker``: a fresh `InMemoryBroker` per test (closed at teardown).
- ``memory_connector``: a connected `InMemoryConnector` on ``memory_broker`` (disconnected at teardown).

and the `eventually` helper (also exported by ``cascade.connectors.testing``).
"""

from __future__ import annotations

__all__ = ["eventually", "memory_broker", "memory_connector"]

from collections.abc import AsyncIterator

import pytest_asyncio

from ._eventually import eventually
from ._memory import InMemoryBroker, InMemoryConnector


@pytest_asyncio.fixture
async def memory_broker() -> AsyncIterator[InMemoryBroker]:
    """A fresh in-memory broker; at teardown it is restarted if stopped and its connectors disconnected."""
    broker = InMemoryBroker()
    yield broker
    await broker.close()


@pytest_asyncio.fixture
async def memory_connector(memory_broker: InMemoryBroker) -> AsyncIterator[InMemoryConnector]:
    """A connected `InMemoryConnector` on ``memory_broker``; disconnected at teardown.

    Short reconnect delays (10 ms to 100 ms) keep fault-injection tests fast.
    """
    connector = InMemoryConnector(memory_broker, reconnect_min_delay=0.01, reconnect_max_delay=0.1)
    async with connector:
        yield connector
