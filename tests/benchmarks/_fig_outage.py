"""Figure 6: a broker outage. Memory stays bounded by ``max_buffered``; delivery resumes quickly.

A private broker (not the shared one) is stopped while a publisher connector and a subscriber
connector are connected. The publisher then publishes `outage_messages` fresh telemetry payloads at
QoS 0; Python's allocations (tracemalloc) are compared after ``max_buffered`` messages (the buffer is
full) and after all of them: the ratio shows whether memory keeps growing (target <= 1.25x). Then the
broker starts again and the publisher keeps publishing one message per millisecond; the time from
just before the broker's start to the subscriber's first delivery is the resume time (target: every
run within 1 s, default reconnect settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from typing import Any

from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector

from ._bench import Bench
from ._broker import BenchError, start_broker, unique
from ._connectors import mqtt_factory
from ._report import Row, Series, Target
from ._workload import telemetry_payload

_DEFAULT_MAX_BUFFERED = 10_000
_RESUME_DEADLINE = 10.0


async def _until_disconnected(connector: Connector, within: float = 5.0) -> None:
    """Wait until `connector` noticed the lost connection (if it exposes ``connected``)."""
    deadline = time.monotonic() + within
    while getattr(connector, "connected", False):
        if time.monotonic() > deadline:
            raise BenchError("the connector did not notice the broker's stop")
        await asyncio.sleep(0.005)


def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


async def outage_run(bench: Bench, server: MosquittoServer) -> tuple[float, float, float, int, int]:
    """One outage: (MB after filling the buffer, MB after all messages, resume s, dropped, bound)."""
    sizes = bench.sizes
    bound = sizes.outage_max_buffered or _DEFAULT_MAX_BUFFERED
    options: dict[str, Any] = {}
    if sizes.outage_max_buffered is not None:
        options["max_buffered"] = sizes.outage_max_buffered
    publisher = mqtt_factory(server, **options)()
    subscriber = mqtt_factory(server)()
    topic = unique("bench/outage")
    template = telemetry_payload(0)
    body = template["body"]
    resumed = asyncio.Event()
    first_delivery = 0.0
    restarted = False

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        nonlocal first_delivery
        if restarted and not resumed.is_set():
            first_delivery = time.perf_counter()
            resumed.set()

    await publisher.connect()
    await subscriber.connect()
    try:
        await subscriber.subscribe(topic, on_message)
        await asyncio.to_thread(server.stop)
        await _until_disconnected(publisher)
        publish = publisher.publish
        gc.collect()
        tracemalloc.start()
        try:
            base = _traced()
            filled = 0
            seq = 0
            for count in (bound, sizes.outage_messages):
                while seq < count:
                    await publish(topic, {**template, "body": {**body, "task_id": f"task-{seq:07d}"}})
                    seq += 1
                if count == bound:
                    filled = _traced() - base
            gc.collect()
            after = _traced() - base
        finally:
            tracemalloc.stop()
        dropped = int(getattr(getattr(publisher, "stats", None), "dropped", -1))
        restarted = True
        returned = time.perf_counter()
        await asyncio.to_thread(server.start)
        deadline = returned + _RESUME_DEADLINE
        while not resumed.is_set():
            if time.perf_counter() > deadline:
                raise BenchError(f"no delivery within {_RESUME_DEADLINE} s of the broker's return")
            await publish(topic, {**template, "body": {**body, "task_id": f"task-{seq:07d}"}})
            seq += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(resumed.wait(), 0.001)
        return filled / 1e6, after / 1e6, first_delivery - returned, dropped, bound
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()


async def figure_outage(bench: Bench) -> list[Row]:
    """Rows: memory after all messages vs after filling the buffer (<= 1.25x); resume time (<= 1 s)."""
    sizes = bench.sizes
    grown = Series(f"after {sizes.outage_messages} messages", "MB")
    filled = Series("after max_buffered messages", "MB")
    resume = Series("first delivery after the broker's return", "s")
    rows_note = ""
    server = await asyncio.to_thread(start_broker)
    try:
        for rep in range(sizes.repeats):
            fill_mb, all_mb, resume_s, dropped, bound = await outage_run(bench, server)
            filled.add(fill_mb)
            grown.add(all_mb)
            resume.add(resume_s)
            expected = sizes.outage_messages - bound
            if dropped != expected:
                grown.problems.append(f"dropped {dropped}, expected {expected}")
            rows_note = (
                f"max_buffered {bound}; {all_mb * 1e6 / bound:.0f} bytes per buffered message; "
                f"dropped {dropped}"
            )
            bench.log(
                f"[outage {rep + 1}/{sizes.repeats}] {fill_mb:.2f} MB after {bound}, "
                f"{all_mb:.2f} MB after {sizes.outage_messages}, dropped {dropped}, "
                f"first delivery {resume_s * 1e3:.0f} ms after the broker's return"
            )
    finally:
        await asyncio.to_thread(server.close)
    return [
        Row("6. outage memory", grown, filled, target=Target("<=", 1.25), note=rows_note),
        Row(
            "6. outage resume",
            resume,
            absolute=1.0,
            target=Target("<=", 1.0, on="max"),
            note="default reconnect settings (0.1 s .. 1 s backoff)",
        ),
    ]
