"""The plain-client truth table: each broker measured with paho-mqtt alone, recorded, and pinned.

Each broker's facts are written to ``results/<broker>.json`` (the source of the table in
docs/brokers.md) and then compared with `EXPECTED`, so a broker that changes behaviour (an upgrade, a
config change) fails here loudly, naming the fact. When that happens on purpose: update `EXPECTED`, then
regenerate the docs with ``python -m tests.brokers.report``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.brokers import report
from tests.brokers.conftest import RESULTS, _ServerPool
from tests.brokers.servers.aedes import aedes_version
from tests.brokers.servers.amqtt import amqtt_version
from tests.brokers.servers.ejabberd import ejabberd_version
from tests.brokers.servers.mosquitto import MosquittoBroker
from tests.brokers.servers.rabbitmq import rabbitmq_version
from tests.brokers.truth import measure_broker

_MQTT5_ONLY = "n/a (MQTT 5 only)"


def _facts(**overrides: Any) -> dict[str, Any]:
    """What a broker that follows MQTT 3.1.1/5 to the letter would show, with `overrides`."""
    facts: dict[str, Any] = {
        "overlap_copies": 1,
        "retained_to_exact": True,
        "retained_to_wildcard": True,
        "live_retained_flag": 0,
        "dollar_subscribe": "granted QoS 1",
        "dollar_publish": "accepted",
        "dollar_roundtrip": True,
        "marker_after_retained": {"in_order": True, "trials": 3, "retained": 50, "filter": "wildcard"},
        "mixed_qos_order": {"in_order": True, "trials": 100},
        "retained_replay_own_topic": {"only_own_topic": True, "trials": 5},
        "empty_retained_clears": True,
        "will_on_abrupt_close": True,
        "message_expiry": _MQTT5_ONLY,
    }
    facts.update(overrides)
    return facts


_V311_REFUSED = "refused: 3.1.1-style CONNACK return code 0x01"

# What was measured on this machine (Debian 12 packages, npm aedes 1.x, PyPI amqtt 0.12).
EXPECTED: dict[str, dict[str, Any]] = {
    "mosquitto": {
        "connect": {"5": "accepted", "3.1.1": "accepted"},
        "connect_without_credentials": "accepted",
        "protocols": {
            # MQTT 5 lets a broker send one copy per matching subscription, and Mosquitto does.
            "5": _facts(overlap_copies=2, message_expiry=True),
            "3.1.1": _facts(),
        },
    },
    "rabbitmq": {
        "connect": {"5": "refused: connection closed before any CONNACK", "3.1.1": "accepted"},
        "connect_without_credentials": "accepted",
        "protocols": {
            "3.1.1": _facts(
                retained_to_wildcard=False,
                # Without wildcard replay, ordering is measured on an exact filter with one retained message.
                marker_after_retained={"in_order": True, "trials": 3, "retained": 1, "filter": "exact"},
                # A QoS 0 publish on a just-subscribed topic is overtaken by the next QoS 1 one (22 to 49 of
                # 100 topics in runs here; the contract's own-messages test trips on it).
                mixed_qos_order={"in_order": False, "trials": 100},
            ),
        },
    },
    "ejabberd": {
        "connect": {"5": "accepted", "3.1.1": "accepted"},
        "connect_without_credentials": "refused: 3.1.1-style CONNACK return code 0x05",
        "protocols": {
            "5": _facts(
                overlap_copies=2, dollar_publish="refused 0x90", dollar_roundtrip=False, message_expiry=True
            ),
            # 3.1.1 has no PUBACK reason code: the refusal is silent (acknowledged, never delivered).
            "3.1.1": _facts(overlap_copies=2, dollar_roundtrip=False),
        },
    },
    "aedes": {
        "connect": {"5": _V311_REFUSED, "3.1.1": "accepted"},
        "connect_without_credentials": "accepted",
        "protocols": {
            "3.1.1": _facts(
                marker_after_retained={"in_order": False, "trials": 3, "retained": 50, "filter": "wildcard"}
            ),
        },
    },
    "amqtt": {
        "connect": {"5": _V311_REFUSED, "3.1.1": "accepted"},
        "connect_without_credentials": "accepted",
        "protocols": {
            # amqtt acknowledges a publish to a `$` topic but never delivers it, not even to an exact filter.
            # On every CONNECT it replays the retained messages of every client's filters, not only of
            # the new client's own subscriptions (amqtt 0.12 broker.py, _handle_client_session).
            "3.1.1": _facts(
                overlap_copies=2,
                dollar_roundtrip=False,
                retained_replay_own_topic={"only_own_topic": False, "trials": 5},
            ),
        },
    },
}


def _version(name: str, server: Any) -> str:
    if isinstance(server, MosquittoBroker):
        return server.version
    return {
        "rabbitmq": rabbitmq_version,
        "ejabberd": ejabberd_version,
        "aedes": aedes_version,
        "amqtt": amqtt_version,
    }[name]()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_truth_table(name: str, broker_pool: _ServerPool) -> None:
    """Measure `name` with paho-mqtt, write results/<name>.json, and compare with what we know."""
    server = broker_pool.get(name)
    measured = measure_broker(server, _version(name, server))
    (RESULTS / f"{name}.json").write_text(json.dumps(measured, indent=2) + "\n")
    expected = EXPECTED[name]
    assert measured["connect"] == expected["connect"]
    assert measured["connect_without_credentials"] == expected["connect_without_credentials"]
    assert set(measured["protocols"]) == set(expected["protocols"])
    for protocol, facts in expected["protocols"].items():
        got = measured["protocols"][protocol]
        differences = {key: (got.get(key), want) for key, want in facts.items() if got.get(key) != want}
        assert not differences, f"{name} MQTT {protocol} changed (measured, expected): {differences}"


def test_docs_table_matches_the_results() -> None:
    """docs/brokers.md holds the table generated from results/*.json (``python -m tests.brokers.report``)."""
    page = report.DOC.read_text(encoding="utf-8")
    assert report.render_into(page) == page, "docs/brokers.md is stale: run python -m tests.brokers.report"


def test_every_broker_has_results() -> None:
    """Every broker of the matrix has a committed truth-table result the docs are generated from."""
    assert {path.stem for path in RESULTS.glob("*.json") if not path.stem.startswith("contract-")} == set(
        EXPECTED
    )
