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


# The plain-function callback test is deselected in these runs: this file checks the skips and
# reports, and tests/contract runs that test on both connectors.
NOT_PLAIN = ["-k", "not test_a_plain_function_callback_receives_messages"]


def test_missing_capabilities_skip_with_a_message_naming_them(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_minimal=MINIMAL_HARNESS)
    result = pytester.inline_run("-p", "no:cacheprovider", *NOT_PLAIN)
    passed, skipped, failed = result.listoutcomes()
    assert failed == []
    reasons: dict[str, str] = {}
    for report in skipped:
        assert isinstance(report.longrepr, tuple)
        reasons[report.nodeid.rsplit("::", 1)[-1]] = report.longrepr[2]
    overflow = reasons["test_buffer_overflow_drops_exactly_the_oldest"]
    assert "Capability.STOP_BACKEND" in overflow
    assert "async def stop_backend" in overflow
    assert "capabilities" in overflow
    assert "Capability.DROP" in reasons["test_abrupt_loss_reconnects_and_resubscribes"]
    malformed = reasons["test_malformed_inbound_messages_are_skipped_logged_and_counted"]
    assert "Capability.INJECT_RAW" in malformed
    limit = reasons["test_oversize_messages_are_refused_in_the_caller"]
    assert "Capability.PACKET_LIMIT" in limit
    assert "max_packet_size" in limit
    assert len(skipped) == 13  # 2 need INJECT_RAW, 2 DROP, 8 STOP_BACKEND, 1 PACKET_LIMIT
    assert len(passed) == 40


UNDECLARED = """
import pytest
from cascade.connectors.testing import Capability, ConnectorContract, InMemoryHarness


class Undeclared(InMemoryHarness):
    capabilities = frozenset()  # has every method, declares nothing: capabilities are not guessed


class FalselyDeclared(InMemoryHarness):
    capabilities = frozenset({"drop"})  # a string value works too

    drop = None  # but the method is missing


class TestUndeclared(ConnectorContract):
    @pytest.fixture
    def harness(self) -> InMemoryHarness:
        return Undeclared()


class TestFalselyDeclared(ConnectorContract):
    @pytest.fixture
    def harness(self) -> InMemoryHarness:
        return FalselyDeclared()
"""


def test_capabilities_are_declared_not_inferred(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_declared=UNDECLARED)
    result = pytester.inline_run("-p", "no:cacheprovider", "-k", "abrupt_loss_reconnects")
    passed, skipped, failed = result.listoutcomes()
    assert [r.nodeid.split("::")[1] for r in skipped] == ["TestUndeclared"]
    assert [r.nodeid.split("::")[1] for r in failed] == ["TestFalselyDeclared"]
    assert "declares Capability.DROP but lacks async def drop" in str(failed[0].longrepr)
    assert passed == []


DEVIATING = """
from typing import Any

import pytest
from cascade.connectors.testing import ConnectorContract, InMemoryConnector, InMemoryHarness


class ClampsQos(InMemoryConnector):
    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        await super().publish(topic, payload, qos=min(max(qos, 0), 1), retain=retain)


class TestDeviating(ConnectorContract):
    known_deviations = {
        "test_qos1_publish_returns_after_the_backend_accepted_it": "clamps qos 2 to 1 instead of refusing it",
        DEVIATIONS_EXTRA
    }

    @pytest.fixture
    def harness(self) -> InMemoryHarness:
        return InMemoryHarness(connector_class=ClampsQos)
"""


def test_known_deviations_run_as_strict_xfail_and_are_reported(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_deviating=DEVIATING.replace("DEVIATIONS_EXTRA", ""))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "qos1_publish_returns or overridden")
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*known deviations from the connector contract*",
            "DEVIATION test_deviating.py::TestDeviating::"
            "test_qos1_publish_returns_after_the_backend_accepted_it: clamps qos 2 to 1 *",
        ]
    )


HARNESS_DEVIATION = """
from typing import Any

import pytest
from cascade.connectors.testing import ConnectorContract, InMemoryConnector, InMemoryHarness


class ClampsQos(InMemoryConnector):
    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        await super().publish(topic, payload, qos=min(max(qos, 0), 1), retain=retain)


class OneBackendDeviates(InMemoryHarness):
    known_deviations = {"test_qos1_publish_returns_after_the_backend_accepted_it": "this backend clamps"}


class TestPerBackend(ConnectorContract):
    @pytest.fixture
    def harness(self) -> InMemoryHarness:
        return OneBackendDeviates(connector_class=ClampsQos)
"""


def test_a_harness_may_declare_the_deviations_of_its_backend(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_per_backend=HARNESS_DEVIATION)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "qos1_publish_returns")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["DEVIATION *::test_qos1_publish_returns_after_*: this backend clamps"])


def test_a_known_deviation_that_passes_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    extra = '"test_unsubscribe_twice_is_harmless": "thought to be broken",'
    pytester.makepyfile(test_deviating=DEVIATING.replace("DEVIATIONS_EXTRA", extra))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "unsubscribe_twice")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*known deviation: thought to be broken*"])


def test_the_guard_rejects_a_deviation_that_is_no_contract_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    extra = '"test_does_not_exist": "typo",'
    pytester.makepyfile(test_deviating=DEVIATING.replace("DEVIATIONS_EXTRA", extra))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "overridden")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'test_does_not_exist', which is not a contract test*"])


def test_the_guard_still_fails_an_overriding_subclass(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    source = DEVIATING.replace("DEVIATIONS_EXTRA", "") + (
        "\n    async def test_unsubscribe_twice_is_harmless(self) -> None:\n        pass\n"
    )
    pytester.makepyfile(test_deviating=source)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "overridden")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*overrides contract tests*test_unsubscribe_twice_is_harmless*"])


BARE_PROJECT = """
import pytest


@pytest.mark.asyncio
async def test_uses_the_plugin(memory_connector) -> None:
    assert memory_connector.connected


def test_loop_scope(request) -> None:
    assert request.config.getini("asyncio_default_fixture_loop_scope") == "EXPECTED"
"""


def test_the_plugin_is_warning_free_in_a_bare_project(pytester: pytest.Pytester) -> None:
    """No ini options at all: no PytestDeprecationWarning about the fixture loop scope (issue 12)."""
    pytester.makepyfile(test_bare=BARE_PROJECT.replace("EXPECTED", "function"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "PytestDeprecationWarning" not in output
    assert "is unset" not in output
    assert "warnings" not in result.parseoutcomes()


def test_the_plugin_keeps_a_loop_scope_the_project_set(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    pytester.makepyfile(test_bare=BARE_PROJECT.replace("EXPECTED", "module"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)
