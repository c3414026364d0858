"""Several broker addresses: tried in order at the first connect, in turn after a loss (two Mosquittos).

The cluster version (the same data on both nodes) is tests/brokers/test_connector_failover.py on RabbitMQ.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import MosquittoServer
from cascade.connectors.protocol import ConnectionFailedError
from cascade.connectors.testing import Recorder, eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}


def _dead_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_the_first_connect_tries_the_addresses_in_order(mosquitto: MosquittoServer) -> None:
    dead = _dead_port()
    addresses = [("127.0.0.1", dead), (mosquitto.host, mosquitto.port)]
    async with MqttConnector(addresses=addresses, **FAST) as connector:
        assert connector.broker_address == (mosquitto.host, mosquitto.port)
        assert connector.settings.addresses == tuple(addresses)


@pytest.mark.asyncio
async def test_the_error_names_every_address_with_its_own_reason() -> None:
    first, second = _dead_port(), _dead_port()
    connector = MqttConnector.from_url(f"mqtt://127.0.0.1:{first},127.0.0.1:{second}?connect_timeout=1")
    with pytest.raises(ConnectionFailedError) as caught:
        await connector.connect()
    error = caught.value
    assert error.reason == "unreachable"
    assert "none of the 2 broker addresses accepted" in error.detail
    for port in (first, second):
        where = f"127.0.0.1:{port}"
        assert f"{where}: (unreachable) nothing accepts TCP connections on {where}" in error.detail


@pytest.mark.asyncio
async def test_after_a_loss_the_connector_fails_over_to_the_next_address(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    """Publisher on [A, B], subscriber on B; A stops: the publisher moves to B, where its presence,
    its subscriptions (retained replay included) and its later publishes are.
    """
    node_a, node_b = mosquitto_factory(), mosquitto_factory()
    watcher = MqttConnector(node_b.host, node_b.port, **FAST)
    publisher = MqttConnector(addresses=[(node_a.host, node_a.port), (node_b.host, node_b.port)], **FAST)
    try:
        await watcher.connect()
        seen, presence = Recorder("seen"), Recorder("presence")
        await watcher.subscribe("work/#", seen)
        await watcher.subscribe(f"cascade/status/{publisher.source}", presence)
        await watcher.publish("orders/current", {"n": 7}, qos=1, retain=True)
        await publisher.connect()
        assert publisher.broker_address == (node_a.host, node_a.port)
        orders = Recorder("orders")
        await publisher.subscribe("orders/#", orders)
        await publisher.publish("work/x", {"n": 1}, qos=1)  # on A: the watcher (on B) does not see it
        node_a.stop()
        node_b_address = (node_b.host, node_b.port)
        await eventually(lambda: publisher.connected and publisher.broker_address == node_b_address)
        await eventually(lambda: {"n": 7} in orders.payloads)  # resubscribed on B, retained replay there
        await publisher.publish("work/x", {"n": 2}, qos=1)
        await seen.wait_for(1)
        assert seen.payloads == [{"n": 2}]
        await eventually(lambda: any(p.get("status") == "online" for p in presence.payloads))
        assert publisher.stats.reconnects == 1
    finally:
        await publisher.disconnect()
        await watcher.disconnect()
