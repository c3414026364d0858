"""The pytest plugin of cascade-connector-testing, loaded through the ``pytest11`` entry point.

Fixtures:

- ``memory_broker``: a fresh `InMemoryBroker` per test (closed at teardown).
- ``memory_connector``: a connected `InMemoryConnector` on ``memory_broker`` (disconnected at teardown).

and the `eventually` helper (also exported by ``cascade.connectors.testing``).

It also reports the known deviations of `ConnectorContract` subclasses that ran (a terminal summary
section, one line per test with its reason), and gives pytest-asyncio's
``asyncio_default_fixture_loop_scope`` the value ``function`` when the project left it unset, so a
project with no asyncio settings runs without pytest-asyncio's deprecation warning (a value the
project sets is never changed).
"""

from __future__ import annotations

__all__ = ["eventually", "memory_broker", "memory_connector"]

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ._contract import RecordedDeviation
from ._contract.base import KNOWN_DEVIATIONS_KEY
from ._eventually import eventually
from ._memory import InMemoryBroker, InMemoryConnector

_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default ``asyncio_default_fixture_loop_scope`` to ``function`` when the project left it unset.

    Runs before pytest-asyncio reads it. Pytest has no public way to give another plugin's ini
    option a default, so this fills pytest's ini cache for that one name, and only when unset.
    """
    try:
        current = config.getini(_LOOP_SCOPE)
    except ValueError:  # pytest-asyncio not loaded (-p no:asyncio): nothing to do
        return
    cache = getattr(config, "_inicache", None)
    if not current and isinstance(cache, dict):
        cache[_LOOP_SCOPE] = "function"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """List every known deviation of the contract that ran, with its reason."""
    recorded: list[RecordedDeviation] = config.stash.get(KNOWN_DEVIATIONS_KEY, [])
    if not recorded:
        return
    terminalreporter.section("known deviations from the connector contract (docs/contract.md)", yellow=True)
    for deviation in recorded:
        terminalreporter.line(f"DEVIATION {deviation.nodeid}: {deviation.reason}")


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
