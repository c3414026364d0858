"""Bounded inbound against a real Mosquitto (docs/contract.md, promise 13): a slow consumer keeps its
memory bounded by ``max_inbound``, counts exactly what it drops, and QoS 1 is acknowledged only after
its callbacks ran (the broker holds what we are not ready for).
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector, _hooks
from cascade.connectors.mqtt._client import Link
from cascade.connectors.mqtt._lifecycle import Lifecycle
from cascade.connectors.testing import eventually

PAYLOAD = "x" * 1000  # about 1 KB per message


def backlog(connector: MqttConnector) -> int:
    session = connector._session
    return len(session.inbound) if session is not None else 0


@pytest.mark.asyncio
async def test_a_slow_qos0_consumer_stays_within_max_inbound_and_counts_every_drop(
    make: Callable[..., MqttConnector],
) -> None:
    """A 10 ms callback, 4 000 messages/s of 1 KB for 2 s: the backlog never exceeds max_inbound,
    memory stays bounded, and dropped_inbound == published - delivered exactly.
    """
    subscriber = make(max_inbound=500)
    publisher = make()
    await subscriber.connect()
    await publisher.connect()
    delivered: list[int] = []
    worst = 0

    async def slow(_topic: str, payload: dict[str, Any]) -> None:
        nonlocal worst
        worst = max(worst, backlog(subscriber))
        if "i" in payload:
            delivered.append(payload["i"])
        await asyncio.sleep(0.01)  # the slow consumer under test (not synchronisation)

    await subscriber.subscribe("slow/q0", slow)
    total = 8000
    tracemalloc.start()
    try:
        start = time.monotonic()
        for i in range(total):
            await publisher.publish("slow/q0", {"i": i, "pad": PAYLOAD})
            if i % 200 == 199:  # pace the producer at about 4 000 messages/s
                await asyncio.sleep(max(0.0, start + (i + 1) / 4000 - time.monotonic()))
            worst = max(worst, backlog(subscriber))
        await publisher.publish("slow/q0", {"end": True}, qos=1)
        await eventually(
            lambda: subscriber.stats.delivered >= 1 and backlog(subscriber) == 0 and not _busy(subscriber),
            30,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = subscriber.stats
    assert worst <= 500, f"the inbound backlog reached {worst} > max_inbound"
    assert stats.dropped_inbound > 0, "the consumer was not slow enough to test anything"
    assert stats.dropped_inbound == total - len(delivered), (stats, len(delivered))
    assert delivered == sorted(delivered), "deliveries out of order"
    assert peak < 12 * 1024 * 1024, f"{peak / 2**20:.1f} MiB traced at peak (8 MB were sent)"


def _busy(connector: MqttConnector) -> bool:
    """Whether the connector still holds received messages (the end marker may still be queued)."""
    return backlog(connector) > 0


@pytest.mark.asyncio
async def test_qos1_waits_at_the_broker_and_is_acknowledged_only_after_its_callback(
    make: Callable[..., MqttConnector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """QoS 1 with a slow callback: nothing is lost or dropped, the backlog stays within max_inbound
    (announced as our Receive Maximum, so Mosquitto holds the rest), and each PUBACK leaves only
    after the message's callback returned.
    """
    mids: dict[int, int] = {}  # inbound message id -> the "i" it carried
    finished: set[int] = set()
    early: list[int] = []
    original_message = Lifecycle._link_message
    original_pubacks = _hooks.send_pubacks

    def record_message(
        self: Lifecycle,
        link: Link,
        topic: str,
        payload: bytes | bytearray,
        retain: bool,
        sids: Sequence[int],
        mid: int,
    ) -> None:
        if mid and topic == "slow/q1":
            mids[mid] = json.loads(payload)["i"]
        original_message(self, link, topic, payload, retain, sids, mid)

    def record_pubacks(client: Any, acked: Sequence[int]) -> Any:
        for mid in acked:
            i = mids.pop(mid, None)
            if i is not None and i not in finished:
                early.append(i)
        return original_pubacks(client, acked)

    monkeypatch.setattr(Lifecycle, "_link_message", record_message)
    monkeypatch.setattr(_hooks, "send_pubacks", record_pubacks)
    subscriber = make(max_inbound=20)
    publisher = make()
    await subscriber.connect()
    await publisher.connect()
    got: list[int] = []
    worst = 0

    async def slow(_topic: str, payload: dict[str, Any]) -> None:
        nonlocal worst
        worst = max(worst, backlog(subscriber))
        await asyncio.sleep(0.002)  # the slow consumer under test (not synchronisation)
        got.append(payload["i"])
        finished.add(payload["i"])

    await subscriber.subscribe("slow/q1", slow)
    await asyncio.gather(*(publisher.publish("slow/q1", {"i": i}, qos=1) for i in range(300)))
    await eventually(lambda: len(got) == 300, 30)
    assert got == list(range(300))
    assert subscriber.stats.dropped_inbound == 0
    assert not early, f"acknowledged before the callback ran: {early[:10]}"
    await eventually(lambda: not mids, 5)  # every message is acknowledged (after its callback)
    assert worst <= 20, f"the inbound backlog reached {worst}: the broker did not hold the rest"
