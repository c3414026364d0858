"""Inbound parsing: MQTT 5 properties from foreign publishers, large payloads, bursts, QoS 1 acks."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiomqtt
import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.testing import Recorder
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

pytestmark = pytest.mark.mosquitto


@pytest.mark.asyncio
async def test_messages_with_mqtt5_properties_are_received(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    subscriber = make()
    await subscriber.connect()
    seen, other = Recorder(), Recorder()
    await subscriber.subscribe("props/+", seen)
    await subscriber.subscribe("props/#", other)
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.PayloadFormatIndicator = 1
    properties.MessageExpiryInterval = 60
    properties.ContentType = "application/json"
    properties.ResponseTopic = "reply/here"
    properties.CorrelationData = b"\x00\x01corr"
    properties.UserProperty = [("k1", "v1"), ("k2", "v2")]
    async with aiomqtt.Client(
        broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, identifier="foreign-v5"
    ) as client:
        await client.publish("props/a", json.dumps({"n": 1}), qos=1, properties=properties)
        await client.publish("props/b", json.dumps({"n": 2}), qos=0, properties=properties)
        await client.publish("props/c", b"", qos=1, retain=False)
    await seen.wait_for(3)
    await other.wait_for(3)
    assert seen.messages == [("props/a", {"n": 1}), ("props/b", {"n": 2}), ("props/c", {})]
    assert other.messages == seen.messages
    assert subscriber.stats.malformed == 0


@pytest.mark.asyncio
async def test_large_payloads_and_bursts(broker: MosquittoServer, make: Callable[..., MqttConnector]) -> None:
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("big/#", seen)
    big = {"blob": "x" * 300_000, "unicode": "ünïcødé ✓"}
    await publisher.publish("big/one", big, qos=1)
    for i in range(2000):
        await publisher.publish(f"big/burst/{i % 7}", {"i": i})
    await publisher.publish("big/two", big)
    await seen.wait_for(2002)
    assert seen.payloads[0] == big
    assert [p["i"] for p in seen.payloads[1:-1]] == list(range(2000))
    assert seen.payloads[-1] == big


@pytest.mark.asyncio
async def test_inbound_qos1_is_acknowledged(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    """More QoS 1 deliveries than the broker keeps in flight (20): they only keep coming if acked."""
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("acks/t", seen)
    for i in range(200):
        await publisher.publish("acks/t", {"i": i}, qos=1)
    await seen.wait_for(200)
    assert [p["i"] for p in seen.payloads] == list(range(200))
