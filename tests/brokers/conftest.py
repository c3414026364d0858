"""The broker matrix's fixtures: one server per broker for the session, started on first use.

Run with ``hatch run test-brokers`` after ``tools/install_brokers.sh``; ``hatch run test`` never collects
this folder. A broker that is not installed fails its tests (the error says to run the install step):
nothing here skips.

A contract class that sets ``known_deviations`` (test name -> reason, or a `Deviation`) gets those
tests marked xfail (strict unless the `Deviation` is a race, so a deviation that stops deviating fails
the run). One that sets ``matrix = (broker, protocol)`` has its per-test outcomes written to
``results/contract-<broker>-<protocol>.json`` for the table in docs/brokers.md (only after a run of the
whole class).

``pending/`` holds matrix cells whose run is known to be racy with today's connector; `test-brokers`
does not collect it (pyproject ``norecursedirs``): run it by naming it, e.g.
``hatch run pytest tests/brokers/pending/test_contract_ejabberd.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # modules here import each other as ``tests.brokers...`` (as the report does)
    sys.path.insert(0, str(_ROOT))

from tests.brokers.harness import Deviation  # noqa: E402
from tests.brokers.servers._base import BrokerServer  # noqa: E402
from tests.brokers.servers.aedes import AedesServer  # noqa: E402
from tests.brokers.servers.amqtt import AmqttServer  # noqa: E402
from tests.brokers.servers.ejabberd import EjabberdServer  # noqa: E402
from tests.brokers.servers.mosquitto import MosquittoBroker  # noqa: E402
from tests.brokers.servers.rabbitmq import RabbitMQServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

SERVERS: dict[str, Callable[[], BrokerServer | MosquittoBroker]] = {
    "mosquitto": MosquittoBroker,
    "rabbitmq": RabbitMQServer,
    "ejabberd": EjabberdServer,
    "aedes": AedesServer,
    "amqtt": AmqttServer,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.brokers)
        cls = getattr(item, "cls", None)
        deviations: Mapping[str, str | Deviation] = getattr(cls, "known_deviations", {}) if cls else {}
        name = getattr(item, "originalname", item.name)
        if name in deviations:
            deviation = deviations[name]
            if isinstance(deviation, str):  # `racy_deviations` (test names) marks timing-dependent ones
                deviation = Deviation(deviation, race=name in getattr(cls, "racy_deviations", ()))
            item.add_marker(
                pytest.mark.xfail(reason=f"known deviation: {deviation.reason}", strict=not deviation.race)
            )


class _ServerPool:
    """Starts each broker once per session, on first use, and closes them all at the end."""

    def __init__(self) -> None:
        self._servers: dict[str, BrokerServer | MosquittoBroker] = {}

    def get(self, name: str) -> BrokerServer | MosquittoBroker:
        if name not in self._servers:
            server = SERVERS[name]()
            self._servers[name] = server
            server.start()
        server = self._servers[name]
        if not server.running:  # a test stopped it: bring it back
            server.start()
        return server

    def close(self) -> None:
        for server in self._servers.values():
            server.close()


@pytest.fixture(scope="session")
def broker_pool() -> Iterator[_ServerPool]:
    pool = _ServerPool()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def rabbitmq(broker_pool: _ServerPool) -> BrokerServer | MosquittoBroker:
    """The session's RabbitMQ node (MQTT plugin)."""
    return broker_pool.get("rabbitmq")


@pytest.fixture(scope="session")
def ejabberd(broker_pool: _ServerPool) -> BrokerServer | MosquittoBroker:
    """The session's ejabberd (mod_mqtt only)."""
    return broker_pool.get("ejabberd")


# ---------------------------------------------------------------------------------------------
# Contract outcomes per matrix cell, for the generated table.

_outcomes: dict[tuple[str, str], dict[str, str]] = {}
_expected: dict[tuple[str, str], int] = {}
_deviations: dict[tuple[str, str], dict[str, str]] = {}
_matrix_of: dict[str, tuple[str, str]] = {}  # nodeid -> matrix cell


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        cls = getattr(item, "cls", None)
        matrix: tuple[str, str] | None = getattr(cls, "matrix", None)
        if matrix:
            _matrix_of[item.nodeid] = matrix
            _expected[matrix] = _expected.get(matrix, 0) + 1
            _deviations[matrix] = {
                name: d if isinstance(d, str) else d.reason
                for name, d in getattr(cls, "known_deviations", {}).items()
            }


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    matrix = _matrix_of.get(report.nodeid)
    if matrix is None:
        return
    name = report.nodeid.rsplit("::", 1)[-1]
    cell = _outcomes.setdefault(matrix, {})
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        cell[name] = "known deviation" if hasattr(report, "wasxfail") else report.outcome
    elif report.outcome == "failed":  # an error in teardown fails the test too
        cell[name] = "failed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for matrix, cell in _outcomes.items():
        if len(cell) != _expected.get(matrix, -1):
            continue  # a partial run (-k, -x, an interrupted session) records nothing
        broker, protocol = matrix
        record: dict[str, Any] = {
            "broker": broker,
            "protocol": protocol,
            "tests": dict(sorted(cell.items())),
            "deviations": dict(sorted(_deviations.get(matrix, {}).items())),
        }
        path = RESULTS / f"contract-{broker}-{protocol}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
