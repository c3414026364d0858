"""`ClusterHarness`: the contract harness over a two-node RabbitMQ cluster (connectors on both nodes).

`new_connector` alternates the nodes (the first connector of a test on node A, the second on node B,
...), so a publisher and its subscriber usually sit on different nodes and every message the contract
checks crosses the cluster. Each connector reaches its node through its own `FaultProxy`, so `drop` cuts
exactly that connector (as in `BrokerHarness`); `inject_raw` publishes with plain paho on node B.

The outage (`stop_backend` / `start_backend`) makes the whole cluster unreachable for every connector of
the harness: each proxy resets its connections and refuses new ones until `start_backend`. The nodes
keep running (retained state kept), because a RabbitMQ 3.10.8 node stopped and started into the
cluster serves MQTT again only after about 105 s here (docs/brokers.md); losing a node for good is
what tests/brokers/test_connector_failover.py covers.
"""

from __future__ import annotations

from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.testing import eventually

from tests.brokers.harness import BrokerHarness
from tests.brokers.servers.cluster import RabbitMQCluster

__all__ = ["ClusterHarness"]


class ClusterHarness(BrokerHarness):
    """`BrokerHarness` whose connectors alternate between the nodes of `cluster` (MQTT 3.1.1)."""

    def __init__(self, cluster: RabbitMQCluster, *, protocol: str = "3.1.1") -> None:
        super().__init__(cluster.nodes[-1], protocol=protocol)
        self.cluster = cluster
        self._made_count = 0
        self._unreachable = False

    async def new_connector(self, **options: Any) -> MqttConnector:
        """A connector (not connected) on the next node in turn, through a proxy of its own."""
        node = self.cluster.nodes[self._made_count % len(self.cluster.nodes)]
        self._made_count += 1
        proxy = FaultProxy(node.host, node.port)
        proxy.refuse = self._unreachable
        await proxy.start()
        connector = MqttConnector(node.host, proxy.port, **{**self._options, **options})
        self._made.append((connector, proxy))
        return connector

    async def stop_backend(self) -> None:
        """Make the cluster unreachable for every connector; returns once each one noticed (30 s bound)."""
        self._unreachable = True
        for _connector, proxy in self._made:
            proxy.refuse = True
            proxy.cut()
        await eventually(lambda: not any(c.connected for c, _proxy in self._made), timeout=30)

    async def start_backend(self) -> None:
        """Make the cluster reachable again (both nodes kept running: nothing to wait for)."""
        self._unreachable = False
        for _connector, proxy in self._made:
            proxy.refuse = False
