"""The fake enforces the same limits as MQTT: the broker's Maximum Packet Size (refused in the caller),
``max_inbound``, presence times an observer can trust and retained presence expiry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cascade.connectors.protocol import PayloadError, StatusMessage
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder, eventually


@pytest.mark.asyncio
async def test_a_publish_over_the_brokers_maximum_packet_size_raises_in_the_caller() -> None:
    broker = InMemoryBroker(max_packet_size=1000)
    async with InMemoryConnector(broker) as connector:
        for qos in (0, 1):
            with pytest.raises(PayloadError, match="Maximum Packet Size"):
                await connector.publish("big/x", {"p": "y" * 1000}, qos=qos)
        await connector.publish("big/x", {"p": "small"}, qos=1)
        assert connector.stats.published == 1
    with pytest.raises(ValueError, match="max_packet_size"):
        InMemoryBroker(max_packet_size=0)


@pytest.mark.asyncio
async def test_the_will_carries_the_time_of_its_online_and_offline_presence_expires() -> None:
    broker = InMemoryBroker()
    watcher = InMemoryConnector(broker, source="watcher")
    worker = InMemoryConnector(broker, source="worker", presence_expiry=0.2)
    seen = Recorder()
    async with watcher:
        await watcher.subscribe("cascade/status/worker", seen)
        await worker.connect()
        await eventually(lambda: len(seen) == 1)
        await broker.drop(worker)
        await eventually(lambda: len(seen) >= 2)
        online, will = (StatusMessage.from_dict(p) for p in seen.payloads[:2])
        assert (online.status, will.status) == ("online", "offline")
        assert will.ts == online.ts, "the will must carry the time of the connection it ends"
        await eventually(lambda: len(seen) >= 3)  # online again after the reconnect
        await worker.disconnect()
        await eventually(lambda: len(seen) >= 4)
        graceful = StatusMessage.from_dict(seen.payloads[3])
        assert graceful.status == "offline"
        assert graceful.ts >= StatusMessage.from_dict(seen.payloads[2]).ts
        assert "cascade/status/worker" in broker.retained
        await eventually(lambda: "cascade/status/worker" not in broker.retained, 5)
        late = Recorder()
        await watcher.subscribe("cascade/status/#", late)
        assert [p["source"] for p in late.payloads] == ["watcher"]


@pytest.mark.asyncio
async def test_max_inbound_is_checked_and_qos1_is_held_by_the_broker() -> None:
    with pytest.raises(ValueError, match="max_inbound"):
        InMemoryConnector(max_inbound=0)
    broker = InMemoryBroker()
    gate = asyncio.Event()
    got: list[int] = []
    worst = 0

    async def slow(_topic: str, payload: dict[str, Any]) -> None:
        nonlocal worst
        worst = max(worst, len(subscriber._inbox.queue))
        got.append(payload["i"])
        await gate.wait()

    async with InMemoryConnector(broker, max_inbound=3) as subscriber, InMemoryConnector(broker) as pub:
        await subscriber.subscribe("q1/x", slow)
        for i in range(20):
            await pub.publish("q1/x", {"i": i}, qos=1)
        await eventually(lambda: got == [0])
        assert len(subscriber._inbox.queue) == 3
        assert len(subscriber._inbox.held) == 16
        gate.set()
        await broker.settle()
    assert got == list(range(20))
    assert worst <= 3
    assert subscriber.stats.dropped_inbound == 0


@pytest.mark.asyncio
async def test_mixed_qos_beyond_max_inbound_keeps_publish_order() -> None:
    broker = InMemoryBroker()
    gate = asyncio.Event()
    got: list[int] = []

    async def slow(_topic: str, payload: dict[str, Any]) -> None:
        got.append(payload["i"])
        await gate.wait()

    async with InMemoryConnector(broker, max_inbound=2) as subscriber, InMemoryConnector(broker) as pub:
        await subscriber.subscribe("mix/x", slow)
        await pub.publish("mix/x", {"i": 0}, qos=1)
        await eventually(lambda: got == [0])
        for i in range(1, 40):
            await pub.publish("mix/x", {"i": i}, qos=i % 2)
        gate.set()
        await broker.settle()
    assert got == sorted(got), f"out of publish order: {got}"
    assert [i for i in range(40) if i % 2] == [i for i in got if i % 2], "a QoS 1 message was lost"
    assert subscriber.stats.dropped_inbound == 40 - len(got)
