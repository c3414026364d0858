"""Figure 6: a broker outage. Memory stays bounded by ``max_buffered``; delivery resumes quickly.

A private broker (not the shared one) is stopped while a publisher connector and a subscriber
connector are connected. The publisher then publishes `outage_messages` fresh telemetry payloads at
QoS 0. Memory is the number of live Python heap blocks (``sys.getallocatedblocks``, cheap enough to
leave on for 200 000 publishes) after ``max_buffered`` messages (the buffer is full) and after all of
them: the ratio shows whether memory keeps growing (target <= 1.25x). The bytes a full buffer holds
come from tracemalloc, switched on only while the buffer fills (it slows allocation about tenfold).
Then the broker starts again and the publisher keeps publishing one message per millisecond; the time
from just before the broker's start to the subscriber's first delivery is the resume time (target:
every run within 1 s, default reconnect settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
import tracemalloc
from dataclasses import dataclass
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
        await asyncio.sleep(0.005)  # polling a condition (connected), not synchronising on time


@dataclass(frozen=True, slots=True)
class OutageRun:
    """One outage: heap blocks grown after filling the buffer and after every message, the bytes of a
    full buffer (tracemalloc), the resume time (s), what the connector dropped, and the bound.
    """

    blocks_filled: int
    blocks_after: int
    buffer_bytes: int
    resume_s: float
    dropped: int
    bound: int


async def outage_run(bench: Bench, server: MosquittoServer) -> OutageRun:
    """Stop `server`, publish through the outage, start it again, wait for the first delivery."""
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

    def fresh(seq: int) -> dict[str, Any]:
        return {**template, "body": {**body, "task_id": f"task-{seq:07d}"}}

    await publisher.connect()
    await subscriber.connect()
    try:
        await subscriber.subscribe(topic, on_message)
        await asyncio.to_thread(server.stop)
        await _until_disconnected(publisher)
        publish = publisher.publish
        gc.collect()
        base_blocks = sys.getallocatedblocks()
        tracemalloc.start()
        try:
            base_bytes = tracemalloc.get_traced_memory()[0]
            for seq in range(bound):
                await publish(topic, fresh(seq))
            gc.collect()
            buffer_bytes = tracemalloc.get_traced_memory()[0] - base_bytes
        finally:
            tracemalloc.stop()
        gc.collect()
        blocks_filled = sys.getallocatedblocks() - base_blocks
        for seq in range(bound, sizes.outage_messages):
            await publish(topic, fresh(seq))
        gc.collect()
        blocks_after = sys.getallocatedblocks() - base_blocks
        dropped = int(getattr(getattr(publisher, "stats", None), "dropped", -1))
        restarted = True
        returned = time.perf_counter()
        await asyncio.to_thread(server.start)
        deadline = returned + _RESUME_DEADLINE
        seq = sizes.outage_messages
        while not resumed.is_set():
            if time.perf_counter() > deadline:
                raise BenchError(f"no delivery within {_RESUME_DEADLINE} s of the broker's return")
            await publish(topic, fresh(seq))
            seq += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(resumed.wait(), 0.001)
        return OutageRun(
            blocks_filled=blocks_filled,
            blocks_after=blocks_after,
            buffer_bytes=buffer_bytes,
            resume_s=first_delivery - returned,
            dropped=dropped,
            bound=bound,
        )
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()


async def figure_outage(bench: Bench) -> list[Row]:
    """Rows: heap growth after all messages vs after filling the buffer (<= 1.25x); resume (<= 1 s)."""
    sizes = bench.sizes
    grown = Series(f"heap blocks after {sizes.outage_messages} messages", "blocks")
    filled = Series("after max_buffered messages", "blocks")
    resume = Series("first delivery after the broker's return", "s")
    note = ""
    server = await asyncio.to_thread(start_broker)
    try:
        for rep in range(sizes.repeats):
            run = await outage_run(bench, server)
            filled.add(run.blocks_filled)
            grown.add(run.blocks_after)
            resume.add(run.resume_s)
            expected = sizes.outage_messages - run.bound
            if run.dropped != expected:
                grown.problems.append(f"dropped {run.dropped}, expected {expected}")
            note = (
                f"max_buffered {run.bound}: a full buffer holds {run.buffer_bytes / 1e6:.1f} MB "
                f"({run.buffer_bytes / run.bound:.0f} bytes per message); dropped {run.dropped}"
            )
            bench.log(
                f"[outage {rep + 1}/{sizes.repeats}] heap blocks +{run.blocks_filled} after {run.bound}, "
                f"+{run.blocks_after} after {sizes.outage_messages}; full buffer "
                f"{run.buffer_bytes / 1e6:.2f} MB; dropped {run.dropped}; first delivery "
                f"{run.resume_s * 1e3:.0f} ms after the broker's return"
            )
    finally:
        await asyncio.to_thread(server.close)
    return [
        Row("6. outage memory", grown, filled, target=Target("<=", 1.25), note=note),
        Row(
            "6. outage resume",
            resume,
            absolute=1.0,
            target=Target("<=", 1.0, on="max"),
            note="default reconnect settings (0.1 s .. 1 s backoff)",
        ),
    ]
