"""Figure 1: what ``await connector.publish(topic, payload)`` at QoS 0 costs its caller.

The reference is one ``json.dumps`` of the same payload: serialising is the only work that belongs on
the engine's hot path. Calls are timed in batches smaller than the connector's buffer, alternating
with batches of ``json.dumps`` (same load for both); after each batch a QoS 1 publish (not timed)
waits until the connector handed everything to the broker, so the timed calls never hit a full
buffer and never include network work.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._bench import Bench
from ._broker import unique
from ._connectors import ConnectorFactory, memory_broker, memory_factory, mqtt_factory
from ._report import Row, Series, Target
from ._workload import telemetry_payload


async def time_publish(
    factory: ConnectorFactory, payload: dict[str, Any], calls: int, batch: int
) -> tuple[float, float]:
    """Microseconds per ``await publish(topic, payload)`` (QoS 0) on a connected connector, and per
    ``json.dumps(payload)``: batches of each alternate, so both see the same machine load.
    """
    dumps = json.dumps
    connector = factory()
    await connector.connect()
    try:
        topic = unique("bench/publish-cost")
        publish = connector.publish
        for _ in range(3):  # warm up: topic caches, first-call paths
            await publish(topic, payload)
        await publish(topic, payload, qos=1)
        publishing = dumping = 0.0
        batches = max(1, calls // batch)
        for _ in range(batches):
            start = time.perf_counter()
            for _ in range(batch):
                dumps(payload)
            dumping += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(batch):
                await publish(topic, payload)
            publishing += time.perf_counter() - start
            await publish(topic, payload, qos=1)  # drain barrier, not timed
        return publishing / (batches * batch) * 1e6, dumping / (batches * batch) * 1e6
    finally:
        await connector.disconnect()


async def figure_publish_cost(bench: Bench) -> list[Row]:
    """Rows: MqttConnector.publish(qos=0) vs json.dumps (target <= 2x); the in-memory one as context."""
    sizes = bench.sizes
    payload = telemetry_payload(1)
    mqtt = mqtt_factory(bench.server)
    memory = memory_factory(memory_broker())
    series = {
        name: (Series(f"{name}.publish(qos=0)", "us"), Series("json.dumps", "us"))
        for name in ("MqttConnector", "InMemoryConnector")
    }
    for rep in range(sizes.repeats):
        parts = []
        for name, factory in (("MqttConnector", mqtt), ("InMemoryConnector", memory)):
            publish_us, dumps_us = await time_publish(
                factory, payload, sizes.publish_calls, sizes.publish_batch
            )
            series[name][0].add(publish_us)
            series[name][1].add(dumps_us)
            parts.append(f"{name} {publish_us:.2f} us (json.dumps {dumps_us:.2f} us)")
        bench.log(f"[publish cost {rep + 1}/{sizes.repeats}] {'; '.join(parts)}")
    note = f"{sizes.publish_calls} calls in batches of {sizes.publish_batch}, alternating with json.dumps"
    return [
        Row("1. publish(qos=0) caller cost", *series["MqttConnector"], target=Target("<=", 2.0), note=note),
        Row("1. publish(qos=0) caller cost", *series["InMemoryConnector"], note="context"),
    ]
