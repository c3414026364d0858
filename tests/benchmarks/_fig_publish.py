"""Figure 1: what ``await connector.publish(topic, payload)`` at QoS 0 costs its caller.

The reference is one ``json.dumps`` of the same payload: serialising is the only work that belongs on
the engine's hot path. Calls are timed in batches smaller than the connector's buffer; between
batches a QoS 1 publish (not timed) waits until the connector handed everything to the broker, so
the timed calls never hit a full buffer and never include network work.
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


def time_dumps(payload: dict[str, Any], calls: int, batch: int) -> float:
    """Microseconds per ``json.dumps(payload)``, timed in batches like the publish calls."""
    dumps = json.dumps
    total = 0.0
    for _ in range(calls // batch):
        start = time.perf_counter()
        for _ in range(batch):
            dumps(payload)
        total += time.perf_counter() - start
    return total / (calls // batch * batch) * 1e6


async def time_publish(factory: ConnectorFactory, payload: dict[str, Any], calls: int, batch: int) -> float:
    """Microseconds per ``await publish(topic, payload)`` (QoS 0) on a connected connector."""
    connector = factory()
    await connector.connect()
    try:
        topic = unique("bench/publish-cost")
        publish = connector.publish
        for _ in range(3):  # warm up: topic caches, first-call paths
            await publish(topic, payload)
        await publish(topic, payload, qos=1)
        total = 0.0
        for _ in range(calls // batch):
            start = time.perf_counter()
            for _ in range(batch):
                await publish(topic, payload)
            total += time.perf_counter() - start
            await publish(topic, payload, qos=1)  # drain barrier, not timed
        return total / (calls // batch * batch) * 1e6
    finally:
        await connector.disconnect()


async def figure_publish_cost(bench: Bench) -> list[Row]:
    """Rows: MqttConnector.publish(qos=0) vs json.dumps (target <= 2x); the in-memory one as context."""
    sizes = bench.sizes
    payload = telemetry_payload(1)
    reference = Series("json.dumps", "us")
    measured = Series("MqttConnector.publish(qos=0)", "us")
    memory = Series("InMemoryConnector.publish(qos=0)", "us")
    factories: list[tuple[Series, ConnectorFactory]] = [
        (measured, mqtt_factory(bench.server)),
        (memory, memory_factory(memory_broker())),
    ]
    for rep in range(sizes.repeats):
        reference.add(time_dumps(payload, sizes.publish_calls, sizes.publish_batch))
        for series, factory in factories:
            series.add(await time_publish(factory, payload, sizes.publish_calls, sizes.publish_batch))
        done = ", ".join(f"{s.label} {s.samples[-1]:.2f} us" for s in (reference, *(s for s, _ in factories)))
        bench.log(f"[publish cost {rep + 1}/{sizes.repeats}] {done}")
    note = f"{sizes.publish_calls} calls in batches of {sizes.publish_batch}"
    return [
        Row("1. publish(qos=0) caller cost", measured, reference, target=Target("<=", 2.0), note=note),
        Row("1. publish(qos=0) caller cost", memory, reference, note="context"),
    ]
