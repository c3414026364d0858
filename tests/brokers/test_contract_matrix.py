"""The whole contract on every broker of the matrix, each at the MQTT version it speaks.

Each cell is `ConnectorContract` through the matrix's harness factory with the cell's ``protocol`` (the
connector option) and the broker's declared deviations: a test the broker cannot pass, verified with
a plain client in the truth table (tests/brokers/results/<broker>.json), with the reason. The per-test
outcomes land in results/contract-<broker>-<protocol>.json; docs/brokers.md's table is generated from
them (``python -m tests.brokers.report``).

One broker per cell for the whole class (contract tests use unique topics); a test that stops the
broker has it started again by the next test's fixture. The RabbitMQ cluster cell starts its own
two-node cluster for the class and spreads the connectors over both nodes (`ClusterHarness`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from cascade.connectors.testing import ConnectorContract

from tests.brokers.cluster_harness import ClusterHarness
from tests.brokers.deviations import (
    AEDES_DEVIATIONS,
    AMQTT_DEVIATIONS,
    EJABBERD_DEVIATIONS,
    MOSQUITTO_311_DEVIATIONS,
    RABBITMQ_CLUSTER_DEVIATIONS,
    RABBITMQ_DEVIATIONS,
)
from tests.brokers.harness import BrokerHarness, Deviation, harness_for
from tests.brokers.servers.cluster import RabbitMQCluster


def _declared(deviations: Mapping[str, str | Deviation]) -> Mapping[str, str]:
    """The reasons, as the contract's ``known_deviations`` wants them (test name -> str)."""
    return {name: d if isinstance(d, str) else d.reason for name, d in deviations.items()}


def _racy(deviations: Mapping[str, str | Deviation]) -> frozenset[str]:
    """The deviations that depend on timing (tests/brokers/conftest.py: a non-strict xfail)."""
    return frozenset(name for name, d in deviations.items() if isinstance(d, Deviation) and d.race)


class _Cell(ConnectorContract):
    broker: ClassVar[str]
    protocol: ClassVar[str]

    @pytest_asyncio.fixture
    async def harness(self, broker_pool: Any) -> AsyncIterator[BrokerHarness]:
        server = broker_pool.get(self.broker)
        async with harness_for(server, protocol=self.protocol) as harness:
            yield harness


class TestMosquitto311Contract(_Cell):
    broker, protocol = "mosquitto", "3.1.1"
    matrix: ClassVar[tuple[str, str]] = ("mosquitto", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(MOSQUITTO_311_DEVIATIONS)
    racy_deviations: ClassVar[frozenset[str]] = _racy(MOSQUITTO_311_DEVIATIONS)


class TestRabbitMQContract(_Cell):
    broker, protocol = "rabbitmq", "3.1.1"
    matrix: ClassVar[tuple[str, str]] = ("rabbitmq", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(RABBITMQ_DEVIATIONS)
    racy_deviations: ClassVar[frozenset[str]] = _racy(RABBITMQ_DEVIATIONS)


class TestRabbitMQClusterContract(ConnectorContract):
    """The contract on a two-node RabbitMQ cluster, connectors alternating between the nodes."""

    matrix: ClassVar[tuple[str, str]] = ("rabbitmq-cluster", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(RABBITMQ_CLUSTER_DEVIATIONS)
    racy_deviations: ClassVar[frozenset[str]] = _racy(RABBITMQ_CLUSTER_DEVIATIONS)

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls) -> Iterator[RabbitMQCluster]:
        with RabbitMQCluster(2) as started:
            yield started

    @pytest_asyncio.fixture
    async def harness(self, cluster: RabbitMQCluster) -> AsyncIterator[ClusterHarness]:
        async with ClusterHarness(cluster) as harness:
            yield harness


class TestEjabberd5Contract(_Cell):
    broker, protocol = "ejabberd", "5"
    matrix: ClassVar[tuple[str, str]] = ("ejabberd", "5")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(EJABBERD_DEVIATIONS["5"])
    racy_deviations: ClassVar[frozenset[str]] = _racy(EJABBERD_DEVIATIONS["5"])


class TestEjabberd311Contract(_Cell):
    broker, protocol = "ejabberd", "3.1.1"
    matrix: ClassVar[tuple[str, str]] = ("ejabberd", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(EJABBERD_DEVIATIONS["3.1.1"])
    racy_deviations: ClassVar[frozenset[str]] = _racy(EJABBERD_DEVIATIONS["3.1.1"])


class TestAedesContract(_Cell):
    broker, protocol = "aedes", "3.1.1"
    matrix: ClassVar[tuple[str, str]] = ("aedes", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(AEDES_DEVIATIONS)
    racy_deviations: ClassVar[frozenset[str]] = _racy(AEDES_DEVIATIONS)


class TestAmqttContract(_Cell):
    broker, protocol = "amqtt", "3.1.1"
    matrix: ClassVar[tuple[str, str]] = ("amqtt", "3.1.1")
    known_deviations: ClassVar[Mapping[str, str]] = _declared(AMQTT_DEVIATIONS)
    racy_deviations: ClassVar[frozenset[str]] = _racy(AMQTT_DEVIATIONS)
