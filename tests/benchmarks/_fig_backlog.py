"""Figure 9: inbound backlog memory under a slow consumer, against the ``max_inbound`` bound.

A subscriber `MqttConnector` whose callback takes `backlog_callback_s` per message (it awaits, as an
engine's callback doing I/O would) is flooded by ``mosquitto_pub -l`` with `backlog_messages`
messages of `backlog_payload_bytes` bytes each, at QoS 0 and at QoS 1. Messages received and not yet
handed to the callback are the backlog. Memory is the peak growth of the Python heap measured by
tracemalloc (process-wide, so it includes paho's thread), from just before the flood until the peak
has not grown for `_SETTLED` s after the publisher finished. The bound is ``max_inbound x message
size``; target: the peak at most 1.5x it (each held message also costs its Python objects, topic
and list entry; the connector's read buffers are fixed). The connector is asked for
``max_inbound=backlog_max_inbound`` when it takes that setting; when it does not, the bound is still
the one asked for and the figure reports the growth it measures.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

from cascade.connectors.mqtt import MqttConnector

from ._bench import Bench
from ._broker import BenchError, unique
from ._clients import CClientPublisher
from ._report import Row, Series, Target
from ._workload import encoded, telemetry_payloads

FIGURE = "9. slow consumer backlog"
_SETTLED = 0.5
_FLOOD_DEADLINE = 60.0


def takes_max_inbound() -> bool:
    """Whether `MqttConnector` accepts a ``max_inbound`` setting."""
    return "max_inbound" in inspect.signature(MqttConnector).parameters


def sized_payloads(count: int, size: int) -> list[dict[str, Any]]:
    """`count` telemetry payloads padded (``body.metadata.pad``) to exactly `size` bytes of JSON."""
    payloads = telemetry_payloads(count)
    for payload in payloads:
        payload["body"]["metadata"] = {"pad": ""}
        pad = size - len(encoded(payload))
        if pad < 0:
            raise BenchError(f"backlog payloads cannot be as small as {size} bytes")
        payload["body"]["metadata"] = {"pad": "x" * pad}
    return payloads


@dataclass(frozen=True, slots=True)
class BacklogRun:
    """One flood: peak heap growth (bytes), messages handed to the callback by the peak's end and by
    the end of `disconnect`, what the connector counted as dropped inbound (None: no such counter).
    """

    peak_bytes: int
    handled_at_peak: int
    handled: int
    dropped_inbound: int | None


async def backlog_run(bench: Bench, qos: int, payloads: list[dict[str, Any]]) -> BacklogRun:
    """Flood a slow subscriber with `payloads` at `qos`; measure the heap's peak growth."""
    sizes = bench.sizes
    options: dict[str, Any] = {}
    if takes_max_inbound():
        options["max_inbound"] = sizes.backlog_max_inbound
    connector = MqttConnector(bench.server.host, bench.server.port, **options)
    topic = unique("bench/backlog")
    handled = 0
    delay = sizes.backlog_callback_s

    async def slow(topic: str, payload: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1
        await asyncio.sleep(delay)  # the consumer's own work: this is what makes it slow

    publisher = CClientPublisher(bench.server, timeout=_FLOOD_DEADLINE)
    await publisher.setup(topic, payloads, qos)
    await connector.connect()
    try:
        await connector.subscribe(topic, slow)
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            await publisher.run()
            peak = await _settled_peak()
            handled_at_peak = handled
        finally:
            tracemalloc.stop()
    finally:
        await connector.disconnect()
        await publisher.close()
    dropped = getattr(connector.stats, "dropped_inbound", None)
    return BacklogRun(peak - base, handled_at_peak, handled, None if dropped is None else int(dropped))


async def _settled_peak() -> int:
    """tracemalloc's peak once it has not grown for `_SETTLED` s (all that arrives has arrived)."""
    deadline = time.monotonic() + _FLOOD_DEADLINE
    peak = tracemalloc.get_traced_memory()[1]
    since = time.monotonic()
    while time.monotonic() - since < _SETTLED:
        await asyncio.sleep(0.05)  # polling the heap (a condition), not synchronising on time
        now_peak = tracemalloc.get_traced_memory()[1]
        if now_peak > peak:
            peak, since = now_peak, time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError("the subscriber's heap kept growing for 60 s")
    return peak


async def figure_backlog(bench: Bench) -> list[Row]:
    """Rows per QoS: the backlog's peak heap growth vs max_inbound x message size (target <= 1.5x)."""
    sizes = bench.sizes
    count, size, bound = sizes.backlog_messages, sizes.backlog_payload_bytes, sizes.backlog_max_inbound
    payloads = sized_payloads(count, size)
    limit_mb = bound * size / 1e6
    passed = takes_max_inbound()
    setting = (
        f"max_inbound={bound} passed" if passed else "MqttConnector takes no max_inbound yet (unbounded)"
    )
    rows: list[Row] = []
    for qos in (0, 1):
        peak = Series(f"peak heap growth, qos{qos}", "MB")
        notes: list[str] = []
        for rep in range(sizes.repeats):
            run = await backlog_run(bench, qos, payloads)
            peak.add(run.peak_bytes / 1e6)
            dropped = "not counted" if run.dropped_inbound is None else str(run.dropped_inbound)
            notes = [
                f"handled {run.handled_at_peak} by the peak, {run.handled} in all; dropped_inbound {dropped}"
            ]
            bench.log(
                f"[backlog qos{qos} {rep + 1}/{sizes.repeats}] peak +{run.peak_bytes / 1e6:.1f} MB "
                f"(bound {limit_mb:.1f} MB); {notes[0]}"
            )
        note = (
            f"{count} messages of {size} bytes from mosquitto_pub -l, callback "
            f"{sizes.backlog_callback_s * 1e3:g} ms each; {setting}; last run: {notes[0] if notes else '-'}"
        )
        rows.append(Row(FIGURE, peak, absolute=limit_mb, target=Target("<=", 1.5), note=note))
    return rows
