"""docs/testing.md's "your own broker" example (own_broker_contract.py), run with pytester.

The session's Mosquitto plays "your broker". The harness cannot stop it, so the outage tests skip
with a message naming `Capability.STOP_BACKEND`; everything else, `drop` included, runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cascade.connectors.mqtt.testing import MosquittoServer, MqttHarness

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).with_name("own_broker_contract.py")


def test_the_own_broker_harness_declares_what_it_can_do(mosquitto: MosquittoServer) -> None:
    harness = MqttHarness(host=mosquitto.host, port=mosquitto.port, username="me", password="s3cret-pw")
    assert harness.capabilities == {"inject_raw", "drop"}
    assert "s3cret-pw" not in repr(harness)
    assert MqttHarness(host="broker.example", tls=True).capabilities == {"inject_raw"}
    with pytest.raises(ValueError, match="either a MosquittoServer or host="):
        MqttHarness(mosquitto, host="localhost")


def test_the_contract_runs_against_your_own_broker(
    pytester: pytest.Pytester, mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_HOST", mosquitto.host)
    monkeypatch.setenv("BROKER_PORT", str(mosquitto.port))
    pytester.makepyfile(test_my_broker=EXAMPLE.read_text())
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    selected = "unsubscribe_twice or abrupt_loss_reconnects or buffer_overflow or malformed"
    result = pytester.inline_run("-p", "no:cacheprovider", "-k", selected)
    passed, skipped, failed = result.listoutcomes()
    assert failed == []
    assert sorted(r.nodeid.rsplit("::", 1)[-1] for r in passed) == [
        "test_abrupt_loss_reconnects_and_resubscribes",
        "test_malformed_inbound_messages_are_skipped_logged_and_counted",
        "test_unsubscribe_twice_is_harmless",
    ]
    assert [r.nodeid.rsplit("::", 1)[-1] for r in skipped] == [
        "test_buffer_overflow_drops_exactly_the_oldest"
    ]
    assert "Capability.STOP_BACKEND" in str(skipped[0].longrepr)
