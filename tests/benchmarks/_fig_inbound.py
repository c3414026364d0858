"""Figures 7 and 8: the subscriber side. Messages from C publishers into a callback.

7. Inbound: one ``mosquitto_pub -l`` process publishes `inbound_messages` pre-encoded telemetry
   messages on a fresh topic; the subscriber under test (an `MqttConnector`, a paho-mqtt client, or
   ``mosquitto_sub`` as the C context) is subscribed first; each at its fastest protocol version
   (the connector and mosquitto_sub MQTT 5, paho-mqtt 3.1.1). The clock runs
   from the publisher's start to the last arrival in the subscriber's callback. The subscribers take
   turns in each repeat.
   Target: the connector at least 2x paho-mqtt, nothing lost, duplicated or reordered.
8. Fan-in: one observer on ``TELEMETRY_FILTER`` while `fanin_publishers` ``mosquitto_pub -l``
   processes, each with its own run id and telemetry topic, publish `fanin_messages` each at once.
   Loss and order are checked per publisher; the rate counts every arrival. paho-mqtt as the
   observer is the reference row (same target as figure 7).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from cascade.connectors.protocol import TELEMETRY_FILTER, telemetry_topic

from ._bench import Bench, settle_heap
from ._broker import ArrivalCounter, unique
from ._clients import CClientPublisher
from ._connectors import mqtt_factory
from ._report import Row, Series, Target
from ._subscribers import ConnectorSubscriber, PahoSubscriber, Subscriber, check_per_publisher
from ._workload import Delivery, telemetry_payloads

_C_SUB = "mosquitto_sub"
# QoS 1 messages the C publisher keeps unacknowledged (its default, 20, would make it the limit).
PUBLISHER_INFLIGHT = 256


def _rate(delivery: Delivery, start: float, end: float) -> float:
    arrived = delivery.expected - delivery.lost
    elapsed = end - start
    return arrived / elapsed if elapsed > 0 and arrived else 0.0


async def inbound_run(bench: Bench, subscriber: Subscriber, count: int, qos: int) -> tuple[float, Delivery]:
    """One C publisher -> `subscriber`: (msg/s from the publisher's start to the last arrival, check)."""
    topic = unique("bench/inbound")
    run_id = unique("run-in")
    payloads = telemetry_payloads(count, run_id)
    publisher = CClientPublisher(bench.server, max_inflight=PUBLISHER_INFLIGHT)
    await publisher.setup(topic, payloads, qos)
    try:
        await subscriber.setup(topic, count)
        try:
            start = time.perf_counter()
            await publisher.run()
            end, _complete = await subscriber.wait(bench.sizes.idle_timeout)
        finally:
            await subscriber.close()
    finally:
        await publisher.close()
    delivery = check_per_publisher(subscriber.arrivals, {run_id: count})[run_id]
    return _rate(delivery, start, end), delivery


async def inbound_c_run(bench: Bench, count: int, qos: int) -> tuple[float, Delivery]:
    """The same run with ``mosquitto_sub -C`` as the subscriber (the C context)."""
    topic = unique("bench/inbound")
    payloads = telemetry_payloads(count)
    publisher = CClientPublisher(bench.server, max_inflight=PUBLISHER_INFLIGHT)
    await publisher.setup(topic, payloads, qos)
    counter = ArrivalCounter(bench.server, topic, count, qos, mqtt5=True)
    try:
        await asyncio.to_thread(counter.start)
        try:
            start = time.perf_counter()
            await publisher.run()
            arrivals = await asyncio.to_thread(counter.wait, bench.sizes.idle_timeout)
        finally:
            await asyncio.to_thread(counter.close)
    finally:
        await publisher.close()
    return _rate(arrivals.delivery, start, arrivals.last_arrival), arrivals.delivery


async def figure_inbound(bench: Bench) -> list[Row]:
    """Rows per QoS: MqttConnector vs paho subscriber (target >= 2x); vs mosquitto_sub (context)."""
    sizes = bench.sizes
    settle_heap()
    factory = mqtt_factory(bench.server)
    makers: dict[str, Callable[[], Subscriber]] = {
        "MqttConnector": lambda: ConnectorSubscriber("MqttConnector", factory),
        "paho-mqtt": lambda: PahoSubscriber(bench.server),
    }
    rows: list[Row] = []
    for qos in (0, 1):
        series = {name: Series(f"{name} subscriber", "msg/s") for name in (*makers, _C_SUB)}
        for rep in range(sizes.repeats):
            for name in series:
                subscriber = None if name == _C_SUB else makers[name]()
                if subscriber is None:
                    rate, delivery = await inbound_c_run(bench, sizes.inbound_messages, qos)
                else:
                    rate, delivery = await inbound_run(bench, subscriber, sizes.inbound_messages, qos)
                series[name].add(rate)
                record_delivery(series[name], [delivery], delivery.problems(), subscriber)
                extra = ", ".join(delivery.problems()) or "all delivered in order"
                extra += _dropped_text(subscriber)
                bench.log(f"[inbound qos{qos} {rep + 1}/{sizes.repeats}] {name}: {rate:,.0f} msg/s ({extra})")
        label = f"7. inbound qos{qos}"
        note = f"{sizes.inbound_messages} messages from mosquitto_pub -l into a callback"
        connector, paho, c_sub = series["MqttConnector"], series["paho-mqtt"], series[_C_SUB]
        rows.append(Row(label, connector, paho, target=Target(">=", 2.0), note=note))
        rows.append(Row(label, connector, c_sub, note="context: against the C subscriber"))
        rows.append(Row(label, c_sub, paho, note="context"))
    return rows


async def fanin_run(bench: Bench, observer: Subscriber) -> tuple[float, dict[str, Delivery]]:
    """`fanin_publishers` C publisher processes at once -> `observer` on the telemetry filter."""
    sizes = bench.sizes
    count = sizes.fanin_messages
    run_ids = [unique(f"run-fanin{i}") for i in range(sizes.fanin_publishers)]
    publishers = [CClientPublisher(bench.server) for _ in run_ids]
    for publisher, run_id in zip(publishers, run_ids, strict=True):
        await publisher.setup(telemetry_topic("acme", "etl", run_id), telemetry_payloads(count, run_id), 0)
    try:
        await observer.setup(TELEMETRY_FILTER, count * len(run_ids))
        try:
            start = time.perf_counter()
            await asyncio.gather(*(publisher.run() for publisher in publishers))
            end, _complete = await observer.wait(sizes.idle_timeout)
        finally:
            await observer.close()
    finally:
        for publisher in publishers:
            await publisher.close()
    deliveries = check_per_publisher(observer.arrivals, dict.fromkeys(run_ids, count))
    arrived = sum(d.expected - d.lost for d in deliveries.values())
    elapsed = end - start
    return (arrived / elapsed if elapsed > 0 and arrived else 0.0), deliveries


def record_delivery(
    series: Series, deliveries: list[Delivery], problems: list[str], subscriber: Subscriber | None
) -> None:
    """Add one run's delivery check to `series`: messages the connector dropped by design and counted
    in ``stats.dropped_inbound`` (QoS 0 beyond ``max_inbound``) go to `counted_drops` when they are
    exactly the lost ones and nothing else is wrong; anything else to `problems`.
    """
    lost = sum(d.lost for d in deliveries)
    clean = all(d.duplicates == 0 and d.reordered == 0 and d.foreign == 0 for d in deliveries)
    dropped = getattr(subscriber, "dropped_inbound", None)
    if lost and clean and dropped == lost:
        series.counted_drops.append(f"{lost} dropped and counted in stats.dropped_inbound")
    else:
        series.problems.extend(problems)


def _dropped_text(subscriber: Subscriber | None) -> str:
    """``; dropped_inbound N`` when the subscriber is a connector that counted inbound drops."""
    dropped = getattr(subscriber, "dropped_inbound", None)
    return f"; the connector counted {dropped} in stats.dropped_inbound" if dropped else ""


def _fanin_problems(deliveries: dict[str, Delivery]) -> list[str]:
    out = []
    for index, delivery in enumerate(deliveries.values()):
        out += [f"publisher {index}: {problem}" for problem in delivery.problems()]
    return out


async def figure_fanin(bench: Bench) -> list[Row]:
    """Row: an MqttConnector observer vs a paho-mqtt observer (target >= 2x), QoS 0, loss per publisher."""
    sizes = bench.sizes
    settle_heap()
    factory = mqtt_factory(bench.server)
    makers: dict[str, Callable[[], Subscriber]] = {
        "MqttConnector": lambda: ConnectorSubscriber("MqttConnector", factory),
        "paho-mqtt": lambda: PahoSubscriber(bench.server),
    }
    series = {name: Series(f"{name} observer", "msg/s") for name in makers}
    lost = dict.fromkeys(makers, 0)
    for rep in range(sizes.repeats):
        for name, make in makers.items():
            observer = make()
            rate, deliveries = await fanin_run(bench, observer)
            problems = _fanin_problems(deliveries)
            series[name].add(rate)
            record_delivery(series[name], list(deliveries.values()), problems, observer)
            lost[name] += sum(d.lost for d in deliveries.values())
            bench.log(
                f"[fan-in {rep + 1}/{sizes.repeats}] {name}: {rate:,.0f} msg/s "
                f"({'; '.join(problems) or 'every publisher complete and in order'}{_dropped_text(observer)})"
            )
    total = sizes.fanin_publishers * sizes.fanin_messages
    note = (
        f"{sizes.fanin_publishers} publisher processes x {sizes.fanin_messages} messages, QoS 0, on "
        f"{TELEMETRY_FILTER}; lost over all runs: MqttConnector {lost['MqttConnector']}, "
        f"paho-mqtt {lost['paho-mqtt']} of {total * sizes.repeats}"
    )
    return [
        Row("8. fan-in", series["MqttConnector"], series["paho-mqtt"], target=Target(">=", 2.0), note=note)
    ]
