"""Presence that stays true, against a real Mosquitto: the last will carries the time of the online it
ends, and a retained ``offline`` expires after ``presence_expiry`` (MQTT 5 message expiry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FaultProxy, MosquittoServer
from cascade.connectors.protocol import StatusMessage, status_topic
from cascade.connectors.testing import Recorder, eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}


async def retained_now(observer: MqttConnector, topic: str) -> list[dict[str, Any]]:
    """What a brand-new subscription to `topic` receives as retained state."""
    seen = Recorder()
    handle = await observer.subscribe(topic, seen)
    await handle.unsubscribe()
    return seen.payloads


@pytest.mark.asyncio
async def test_the_graceful_offline_expires_for_new_subscribers(make: Callable[..., MqttConnector]) -> None:
    worker = make(presence_expiry=2)
    observer = make()
    await observer.connect()
    await worker.connect()
    await worker.disconnect()
    topic = status_topic(worker.source)
    first = await retained_now(observer, topic)
    assert [p["status"] for p in first] == ["offline"]

    async def expired() -> bool:
        return await retained_now(observer, topic) == []

    await eventually(expired, 10)


@pytest.mark.asyncio
async def test_the_last_will_carries_the_time_of_its_online_and_expires(
    mosquitto: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    observer = make(mosquitto)
    await observer.connect()
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        worker = MqttConnector(proxy.host, proxy.port, presence_expiry=2, keepalive=5, **FAST)
        topic = status_topic(worker.source)
        seen = Recorder()
        await observer.subscribe(topic, seen)
        await worker.connect()
        await eventually(lambda: len(seen) >= 1)
        assert len(seen) == 1, seen.payloads
        proxy.refuse = True
        proxy.cut()  # abrupt loss: Mosquitto publishes the will
        await eventually(lambda: len(seen) == 2, 10)
        online, will = (StatusMessage.from_dict(p) for p in seen.payloads)
        assert (online.status, will.status) == ("online", "offline")
        assert will.ts == online.ts, "the will must not be earlier than the online it ends"

        async def expired() -> bool:
            return await retained_now(observer, topic) == []

        await eventually(expired, 10)
        await worker.disconnect()
