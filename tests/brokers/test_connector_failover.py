"""The connector fails over inside a two-node RabbitMQ cluster (several addresses in one URL).

Subscriber connector on node B; publisher connector on ``mqtt://A,B`` (it lands on A); stop A: the
publisher reconnects to B by itself, its presence is online there, and its later publishes reach the
subscriber. The plain-client version of the same scenario is test_rabbitmq_cluster.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.testing import Recorder, eventually

from tests.brokers._paho import unique
from tests.brokers.servers.cluster import RabbitMQCluster

FAST = {"reconnect_min_delay": 0.05, "reconnect_max_delay": 0.5}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitMQCluster]:
    with RabbitMQCluster(2) as started:
        yield started


@pytest.mark.asyncio
async def test_the_publisher_fails_over_from_node_a_to_node_b(cluster: RabbitMQCluster) -> None:
    node_a, node_b = cluster.nodes
    topic = unique("cascade/failover")
    publisher = MqttConnector.from_url(cluster.url, **FAST)
    subscriber = MqttConnector.from_url(node_b.url, **FAST)
    try:
        await subscriber.connect()
        seen, presence = Recorder("seen"), Recorder("presence")
        await subscriber.subscribe(f"{topic}/#", seen)
        await subscriber.subscribe(f"cascade/status/{publisher.source}", presence)
        await publisher.connect()
        assert publisher.protocol_version == "3.1.1"  # negotiated: RabbitMQ 3.10 refuses MQTT 5
        assert publisher.broker_address == (node_a.host, node_a.port)
        for n in range(3):
            await publisher.publish(f"{topic}/x", {"n": n}, qos=1)
        await seen.wait_for(3, timeout=15)

        await asyncio.to_thread(node_a.stop)
        await eventually(
            lambda: publisher.connected and publisher.broker_address == (node_b.host, node_b.port), timeout=60
        )
        for n in range(3, 6):
            await publisher.publish(f"{topic}/x", {"n": n}, qos=1)
        await seen.wait_for(6, timeout=15)
        assert [p["n"] for p in seen.payloads] == list(range(6))
        assert publisher.stats.reconnects == 1
        await eventually(lambda: bool(presence.payloads) and presence.payloads[-1]["status"] == "online")
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()
