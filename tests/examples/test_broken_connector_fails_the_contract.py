"""The contract catches a real bug: run it (with pytester) against `ForgetfulConnector`.

`ForgetfulConnector` loses the retained messages replayed while ``subscribe()`` runs. Exactly the
contract tests that rely on "subscribe() returns after the retained state was delivered" must fail,
and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cascade.connectors.testing import ConnectorContract

pytest_plugins = ["pytester"]

BROKEN_SUITE = """
from collections.abc import AsyncIterator

import pytest_asyncio
from cascade.connectors.testing import ConnectorContract

from audited_connector import AuditedHarness, ForgetfulConnector


class TestForgetfulContract(ConnectorContract):
    contract_timeout_scale = 0.2  # failures here are timeouts of waits: keep them short

    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[AuditedHarness]:
        harness = AuditedHarness(ForgetfulConnector)
        yield harness
        await harness.aclose()
"""


EXPECTED_FAILURES = {
    # promise 5: subscribe() returns only after the retained state was delivered
    "test_subscribe_returns_after_retained_messages_were_delivered",
    "test_subscribe_from_inside_a_callback",
    "test_retained_publish_replaces_previous_state",
    "test_retained_replay_goes_only_to_the_new_subscription",
    "test_injected_empty_retained_payload_clears",
    # promise 8, observed through a retained message
    "test_qos1_publish_returns_after_the_backend_accepted_it",
    # promise 10: presence is retained state
    "test_connect_publishes_retained_online_presence",
    "test_graceful_disconnect_publishes_retained_offline_presence",
    "test_abrupt_loss_publishes_the_last_will_then_online_again",
    "test_presence_is_online_again_after_an_outage",
    # promise 11: retained state is re-delivered after a reconnect (the first delivery was lost)
    "test_reconnect_resubscribes_and_redelivers_retained_state",
    "test_abrupt_loss_reconnects_and_resubscribes",
}


def test_the_contract_fails_the_forgetful_connector_on_retained_state(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(audited_connector=(Path(__file__).parent / "audited_connector.py").read_text())
    pytester.makepyfile(test_forgetful_contract=BROKEN_SUITE)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.inline_run("-p", "no:cacheprovider")
    passed, skipped, failed = result.listoutcomes()
    failures = {report.nodeid.rsplit("::", 1)[-1]: report for report in failed}
    assert not skipped
    assert set(failures) == EXPECTED_FAILURES
    contract_tests = [name for name in dir(ConnectorContract) if name.startswith("test_")]
    assert len(passed) == len(contract_tests) - len(EXPECTED_FAILURES) == 42
    key = str(failures["test_subscribe_returns_after_retained_messages_were_delivered"].longrepr)
    assert "subscribe() returned before the retained messages were delivered" in key
