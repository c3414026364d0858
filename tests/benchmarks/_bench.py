"""What every figure shares: the sizes of a run, the broker, progress output, small timing helpers."""

from __future__ import annotations

import asyncio
import gc
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cascade.connectors.mqtt.mosquitto import MosquittoServer

from ._workload import Delivery, check_sequence, seq_of


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each figure does. `FULL` for ``hatch run bench``, `SMOKE` for CI."""

    repeats: int
    # 1. publish cost: calls per run, timed in batches (the connector drains between batches).
    publish_calls: int
    publish_batch: int
    # 2. throughput: messages per run. The naive design's cost per message grows with the number of
    # pending publishes (quadratic in total), so it runs `naive_messages` and is cut off at
    # `naive_deadline` s.
    messages: int
    naive_messages: int
    naive_deadline: float
    qos1_window: int
    # 3. round trips per run (after a warm-up).
    roundtrips: int
    roundtrip_warmup: int
    # 4. dispatch: live subscription counts, messages per measurement.
    subscriptions: tuple[int, ...]
    dispatch_messages: int
    # 5. in-memory (and MQTT) connector pair, messages per run and codec.
    pair_messages: int
    # 6. outage: messages published while the broker is down; buffer bound (None = default 10 000).
    outage_messages: int
    outage_max_buffered: int | None
    # 7. inbound: messages per run from one C publisher to each subscriber.
    inbound_messages: int
    # 8. fan-in: C publisher processes, messages each.
    fanin_publishers: int
    fanin_messages: int
    # 9. slow consumer: messages flooded, wire size of each (bytes), the inbound bound asked for,
    # and the time the callback takes per message (s).
    backlog_messages: int
    backlog_payload_bytes: int
    backlog_max_inbound: int
    backlog_callback_s: float
    # Nothing arriving for this long ends a run as incomplete (s).
    idle_timeout: float


FULL = Sizes(
    repeats=3,
    publish_calls=20_000,
    publish_batch=1_000,
    messages=20_000,
    naive_messages=5_000,
    naive_deadline=15.0,
    qos1_window=256,
    roundtrips=2_000,
    roundtrip_warmup=100,
    subscriptions=(10, 1_000, 10_000),
    dispatch_messages=5_000,
    pair_messages=20_000,
    outage_messages=200_000,
    outage_max_buffered=None,
    inbound_messages=20_000,
    fanin_publishers=10,
    fanin_messages=2_000,
    backlog_messages=20_000,
    backlog_payload_bytes=1_024,
    backlog_max_inbound=2_000,
    backlog_callback_s=0.002,
    idle_timeout=2.0,
)

SMOKE = Sizes(
    repeats=1,
    publish_calls=300,
    publish_batch=100,
    messages=300,
    naive_messages=300,
    naive_deadline=5.0,
    qos1_window=16,
    roundtrips=30,
    roundtrip_warmup=5,
    subscriptions=(10, 100),
    dispatch_messages=100,
    pair_messages=300,
    outage_messages=600,
    outage_max_buffered=100,
    inbound_messages=300,
    fanin_publishers=10,
    fanin_messages=30,
    backlog_messages=1_000,
    backlog_payload_bytes=1_024,
    backlog_max_inbound=100,
    backlog_callback_s=0.002,
    idle_timeout=2.0,
)


@dataclass(slots=True)
class Bench:
    """The run's context: sizes, the shared broker, and where progress goes."""

    sizes: Sizes
    server: MosquittoServer
    smoke: bool = False
    quiet: bool = False
    errors: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        """One progress line on stderr (the table and JSON go to stdout)."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def settle_heap() -> None:
    """Collect garbage, then move every live object (the pre-built payloads above all) out of the
    collector's view (``gc.freeze``), so that keeping the inputs alive costs the timed code nothing.
    """
    gc.collect()
    gc.freeze()


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Inbox:
    """A subscriber callback that keeps what arrived, as cheaply as possible (it runs once per message
    in the timed part): it keeps each payload's task id (a string: keeping the dicts themselves would
    make the garbage collector walk every one of them again and again), checked afterwards by
    `delivery`.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.task_ids: list[object] = []
        # perf_counter of the last arrival: exact when all arrived, else the last progress `wait` saw.
        self.last_arrival = 0.0
        self._done = asyncio.Event()

    async def callback(self, topic: str, payload: dict[str, Any]) -> None:
        """The `Callback` to subscribe."""
        task_ids = self.task_ids
        try:
            task_ids.append(payload["body"]["task_id"])
        except (KeyError, TypeError):
            task_ids.append(None)
        if len(task_ids) >= self.expected:
            self.last_arrival = time.perf_counter()
            self._done.set()

    async def wait(self, idle_timeout: float, total_timeout: float = 120.0) -> bool:
        """Wait until `expected` messages arrived (True) or none arrived for `idle_timeout` s (False)."""
        deadline = time.monotonic() + total_timeout
        seen = -1
        idle_since = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(self._done.wait(), 0.05)
            except TimeoutError:
                pass
            else:
                return True
            now = time.monotonic()
            if len(self.task_ids) != seen:
                seen, idle_since = len(self.task_ids), now
                self.last_arrival = time.perf_counter()
            elif now - idle_since > idle_timeout or now > deadline:
                return False

    def delivery(self) -> Delivery:
        """The loss/duplicate/order check of what arrived (unreadable payloads count as unexpected)."""
        return check_sequence((_seq_or_none(task_id) for task_id in self.task_ids), self.expected)


def _seq_or_none(task_id: object) -> int:
    try:
        return seq_of({"body": {"task_id": task_id}})
    except (ValueError, KeyError, TypeError):
        return -1
