"""The pytest plugin and the capability skips, seen from a project that only installed the package."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

USES_FIXTURES = """
import pytest
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder, eventually


@pytest.mark.asyncio
async def test_fixtures(memory_broker: InMemoryBroker, memory_connector: InMemoryConnector) -> None:
    assert memory_connector.broker is memory_broker
    received = Recorder()
    await memory_connector.subscribe("t", received)
    await memory_connector.publish("t", {"n": 1})
    await eventually(lambda: received.payloads == [{"n": 1}])
    await memory_broker.stop()  # left stopped: the fixture's teardown restarts it and disconnects
"""

MINIMAL_HARNESS = """
from typing import Any

import pytest
from cascade.connectors.testing import ConnectorContract, InMemoryBroker, InMemoryConnector


class OnlyNewConnector:
    def __init__(self) -> None:
        self.broker = InMemoryBroker()

    async def new_connector(self, **options: Any) -> InMemoryConnector:
        return InMemoryConnector(self.broker, **options)


class TestMinimalContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> OnlyNewConnector:
        return OnlyNewConnector()
"""


def test_the_plugin_fixtures_are_available_without_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_uses_fixtures=USES_FIXTURES)
    result = pytester.inline_run("-p", "no:cacheprovider")
    result.assertoutcome(passed=1)


def test_missing_capabilities_skip_with_a_message_naming_them(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_minimal=MINIMAL_HARNESS)
    result = pytester.inline_run("-p", "no:cacheprovider")
    passed, skipped, failed = result.listoutcomes()
    assert failed == []
    reasons: dict[str, str] = {}
    for report in skipped:
        assert isinstance(report.longrepr, tuple)
        reasons[report.nodeid.rsplit("::", 1)[-1]] = report.longrepr[2]
    assert "SupportsOutage" in reasons["test_buffer_overflow_drops_exactly_the_oldest"]
    assert "async def stop_backend" in reasons["test_buffer_overflow_drops_exactly_the_oldest"]
    assert "SupportsDrop" in reasons["test_abrupt_loss_reconnects_and_resubscribes"]
    assert "SupportsInjectRaw" in reasons["test_malformed_inbound_messages_are_skipped_logged_and_counted"]
    assert len(skipped) == 10  # 2 need SupportsInjectRaw, 2 SupportsDrop, 6 SupportsOutage
    assert len(passed) == 32
