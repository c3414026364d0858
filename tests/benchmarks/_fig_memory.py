"""Figure 5: end-to-end throughput of a connector pair in one process, in-memory vs MQTT.

A subscriber connector counts arrivals (and checks loss, duplicates and order); a publisher connector
publishes the telemetry payloads at QoS 0 in a loop. Timed from the first publish to the last
arrival. Target: the in-memory pair is at least 10x the MQTT pair (tests built on the fake are fast).
"""

from __future__ import annotations

import time

from cascade.connectors.protocol import decode_payload, encode_payload

from ._bench import Bench, Inbox, settle_heap
from ._broker import unique
from ._connectors import ConnectorFactory, memory_broker, memory_factory, mqtt_factory
from ._report import Row, Series, Target
from ._workload import Delivery, telemetry_payloads


async def pair_throughput(
    factory: ConnectorFactory, payloads: list[dict[str, object]], idle_timeout: float
) -> tuple[float, Delivery]:
    """Messages per second from one connector to another (both made by `factory`)."""
    topic = unique("bench/pair")
    inbox = Inbox(len(payloads))
    subscriber, publisher = factory(), factory()
    await subscriber.connect()
    await publisher.connect()
    try:
        await subscriber.subscribe(topic, inbox.callback)
        publish = publisher.publish
        start = time.perf_counter()
        for payload in payloads:
            await publish(topic, payload)
        await inbox.wait(idle_timeout)
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()
    delivery = inbox.delivery()
    arrived = delivery.expected - delivery.lost
    elapsed = inbox.last_arrival - start
    return (arrived / elapsed if elapsed > 0 and arrived else 0.0), delivery


def json_round_trip_us(payloads: list[dict[str, object]]) -> float:
    """Microseconds per ``decode_payload(encode_payload(p))``: the JSON work the contract requires of
    every connector per delivered message (the in-memory connector's floor).
    """
    start = time.perf_counter()
    for payload in payloads:
        decode_payload(encode_payload(payload))
    return (time.perf_counter() - start) / len(payloads) * 1e6


async def figure_memory(bench: Bench) -> list[Row]:
    """Rows: in-memory pair vs MQTT pair (target >= 10x); the in-memory cost per message vs the JSON
    round trip (context: how close the fake is to its floor).
    """
    sizes = bench.sizes
    payloads: list[dict[str, object]] = list(telemetry_payloads(sizes.pair_messages))
    settle_heap()
    memory = Series("InMemoryConnector pair", "msg/s")
    mqtt = Series("MqttConnector pair", "msg/s")
    memory_us = Series("InMemoryConnector pair per message", "us")
    json_us = Series("encode + decode", "us")
    runs: list[tuple[Series, ConnectorFactory]] = [
        (memory, memory_factory(memory_broker())),
        (mqtt, mqtt_factory(bench.server)),
    ]
    for rep in range(sizes.repeats):
        parts = []
        for series, factory in runs:
            rate, delivery = await pair_throughput(factory, payloads, sizes.idle_timeout)
            series.add(rate)
            series.problems.extend(delivery.problems())
            parts.append(f"{series.label} {rate:,.0f} msg/s ({', '.join(delivery.problems()) or 'ok'})")
        memory_us.add(1e6 / memory.samples[-1] if memory.samples[-1] else float("nan"))
        json_us.add(json_round_trip_us(payloads))
        parts.append(f"JSON round trip {json_us.samples[-1]:.2f} us")
        bench.log(f"[in-memory vs mqtt {rep + 1}/{sizes.repeats}] {'; '.join(parts)}")
    return [
        Row(
            "5. in-memory vs MQTT throughput",
            memory,
            mqtt,
            target=Target(">=", 10.0),
            note=f"{sizes.pair_messages} messages, QoS 0, publisher and subscriber in one process",
        ),
        Row(
            "5. in-memory vs MQTT throughput",
            memory_us,
            json_us,
            note="context: the JSON round trip every delivery needs is the fake's floor",
        ),
    ]
