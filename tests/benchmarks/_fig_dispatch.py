"""Figure 4: dispatch cost per message with 10, 1 000 and 10 000 live subscriptions.

One subscriber connector per subscription count, each under its own topic prefix, with a mix of exact
and wildcard filters of which exactly two (one exact, one wildcard) match the published topic. A
second connector publishes `dispatch_messages` QoS 0 messages; the time until both matching callbacks
have received all of them, divided by the message count, is the cost per message (publish, transport
and dispatch; only the dispatch part depends on the number of subscriptions). Target: the largest
count costs at most 1.5x the smallest ("roughly flat": an index over topic levels, not a scan).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cascade.connectors.protocol import Connector

from ._bench import Bench, settle_heap
from ._broker import BenchError, unique
from ._connectors import ConnectorFactory, memory_broker, memory_factory, mqtt_factory
from ._report import Row, Series, Target
from ._workload import telemetry_payloads

_SUBSCRIBE_CHUNK = 200


def filters(prefix: str, count: int) -> tuple[list[str], list[str], str]:
    """(the two matching filters, `count` - 2 non-matching ones, the topic to publish on)."""
    topic = f"{prefix}/run/r0/events"
    matching = [topic, f"{prefix}/run/+/events"]
    others = []
    for i in range(count - len(matching)):
        form = i % 4
        if form == 0:
            others.append(f"{prefix}/run/r{i + 1}/events")
        elif form == 1:
            others.append(f"{prefix}/run/r{i + 1}/+")
        elif form == 2:
            others.append(f"{prefix}/task/t{i}/#")
        else:
            others.append(f"{prefix}/+/t{i}/status")
    return matching, others, topic


class _Counter:
    def __init__(self) -> None:
        self.matched = 0
        self.stray = 0
        self.last = 0.0
        self.target = 0
        self.done = asyncio.Event()

    async def hit(self, topic: str, payload: dict[str, Any]) -> None:
        self.matched += 1
        if self.matched >= self.target:
            self.last = time.perf_counter()
            self.done.set()

    async def miss(self, topic: str, payload: dict[str, Any]) -> None:
        self.stray += 1


async def _subscribe_all(connector: Connector, topic_filters: list[str], callback: Any) -> None:
    for start in range(0, len(topic_filters), _SUBSCRIBE_CHUNK):
        chunk = topic_filters[start : start + _SUBSCRIBE_CHUNK]
        await asyncio.gather(*(connector.subscribe(f, callback) for f in chunk))


async def _measure(
    publisher: Connector, topic: str, counter: _Counter, payloads: list[dict[str, Any]], limit: float
) -> float:
    """Microseconds per message until both matching subscriptions got every message."""
    counter.matched = 0
    counter.target = 2 * len(payloads)
    counter.done.clear()
    start = time.perf_counter()
    publish = publisher.publish
    for payload in payloads:
        await publish(topic, payload)
    try:
        await asyncio.wait_for(counter.done.wait(), limit)
    except TimeoutError as exc:
        raise BenchError(
            f"dispatch: {counter.matched} of {counter.target} deliveries after {limit} s"
        ) from exc
    return (counter.last - start) / len(payloads) * 1e6


async def _dispatch_rows(bench: Bench, name: str, factory: ConnectorFactory) -> list[Row]:
    sizes = bench.sizes
    counts = sizes.subscriptions
    payloads = telemetry_payloads(sizes.dispatch_messages)
    settle_heap()
    publisher = factory()
    subscribers: list[Connector] = []
    setups: list[tuple[int, str, _Counter]] = []
    await publisher.connect()
    try:
        for count in counts:
            subscriber = factory()
            await subscriber.connect()
            subscribers.append(subscriber)
            counter = _Counter()
            matching, others, topic = filters(unique("bench/dispatch"), count)
            started = time.perf_counter()
            await _subscribe_all(subscriber, others, counter.miss)
            await _subscribe_all(subscriber, matching, counter.hit)
            bench.log(f"[dispatch {name}] {count} subscriptions in {time.perf_counter() - started:.2f} s")
            setups.append((count, topic, counter))
        series = {count: Series(f"{name}, {count} subs", "us") for count in counts}
        for rep in range(sizes.repeats):
            parts = []
            for count, topic, counter in setups:
                cost = await _measure(publisher, topic, counter, payloads, limit=60.0)
                series[count].add(cost)
                parts.append(f"{count}: {cost:.2f} us")
            bench.log(f"[dispatch {name} {rep + 1}/{sizes.repeats}] per message: {', '.join(parts)}")
        for count, _, counter in setups:
            if counter.stray:
                series[count].problems.append(f"{counter.stray} deliveries to non-matching filters")
    finally:
        await asyncio.gather(*(s.disconnect() for s in subscribers), publisher.disconnect())
    smallest = series[counts[0]]
    rows = []
    for count in counts[1:]:
        is_target = count == counts[-1]
        rows.append(
            Row(
                "4. dispatch per message",
                series[count],
                smallest,
                target=Target("<=", 1.5) if is_target else None,
                note=f"{sizes.dispatch_messages} messages, 2 matching filters" if is_target else "context",
            )
        )
    return rows


async def figure_dispatch(bench: Bench) -> list[Row]:
    """Rows for both connectors: cost at the largest subscription count vs the smallest."""
    rows: list[Row] = []
    rows += await _dispatch_rows(bench, "InMemoryConnector", memory_factory(memory_broker()))
    rows += await _dispatch_rows(bench, "MqttConnector", mqtt_factory(bench.server))
    return rows
