"""Figure 5: the in-memory connector's cost per message against the JSON round trip it must do.

A subscriber connector counts arrivals (and checks loss, duplicates and order); a publisher connector
publishes the telemetry payloads at QoS 0 in a loop; the cost per message is the time from the first
publish to the last arrival divided by the messages. The reference is one ``encode_payload`` +
``decode_payload`` of each payload, measured in the same process just before and just after each
in-memory pair run (the mean of the two): the work the contract requires of every delivery.
Target: the in-memory pair at most 1.2x it, with the standard-library codec and with the fast one
(msgspec). The codec is chosen when the protocol package is imported (``CASCADE_CODEC``), so each
codec runs in its own worker process (``python -m tests.benchmarks._fig_memory --worker CODEC
...``), in the same benchmark run and against the same broker. The MQTT connector pair, measured
the same way, is context, and so is the floor: the same payloads and callback through the least an
asyncio connector can do (`handoff_floor`: an awaited ``publish`` that encodes into a deque, one task
that decodes and awaits the callback; no validation, counters, bounds, ordering across sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.protocol import codec_name, decode_payload, encode_payload

from ._bench import Bench, Inbox, settle_heap
from ._broker import unique
from ._connectors import ConnectorFactory, memory_broker, memory_factory
from ._report import Row, Series, Target
from ._workload import Delivery, telemetry_payloads

FIGURE = "5. in-memory cost vs JSON round trip"
CODECS = {"stdlib": "stdlib codec (json)", "fast": "fast codec (msgspec)"}
_ROOT = Path(__file__).resolve().parents[2]


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


async def handoff_floor(payloads: list[dict[str, object]], idle_timeout: float) -> float:
    """Microseconds per message through a bare asyncio hand-off, with the pair's callback (`Inbox`):
    what any connector with an awaitable ``publish`` and a dispatcher task pays beyond the JSON work.
    """
    inbox = Inbox(len(payloads))
    queue: deque[tuple[str, bytes]] = deque()
    topic = unique("bench/floor")

    async def publish(name: str, payload: dict[str, object]) -> None:
        queue.append((name, encode_payload(payload)))
        if len(queue) >= 1024:  # yield now and then, as the connectors do
            await asyncio.sleep(0)

    async def dispatch() -> None:
        callback = inbox.callback
        while len(inbox.task_ids) < inbox.expected:
            while queue:
                name, raw = queue.popleft()
                await callback(name, decode_payload(raw))
            await asyncio.sleep(0)

    task = asyncio.create_task(dispatch())
    try:
        start = time.perf_counter()
        for payload in payloads:
            await publish(topic, payload)
        await inbox.wait(idle_timeout)
    finally:
        task.cancel()
    elapsed = inbox.last_arrival - start
    return elapsed / len(payloads) * 1e6 if elapsed > 0 else float("nan")


def json_round_trip_us(payloads: list[dict[str, object]]) -> float:
    """Microseconds per ``decode_payload(encode_payload(p))`` with this process's codec: the JSON work
    the contract requires of every connector per delivered message (the figure's reference).
    """
    start = time.perf_counter()
    for payload in payloads:
        decode_payload(encode_payload(payload))
    return (time.perf_counter() - start) / len(payloads) * 1e6


# ---------------------------------------------------------------------------------------------
# The worker: one codec, every repeat, results as JSON on stdout


async def _work(args: argparse.Namespace) -> dict[str, Any]:
    payloads: list[dict[str, object]] = list(telemetry_payloads(args.messages))
    settle_heap()
    problems: dict[str, list[str]] = {"memory": [], "mqtt": []}
    out: dict[str, Any] = {"codec": codec_name()}
    out.update({key: [] for key in ("memory_us", "json_us", "mqtt_us", "floor_us")})

    def mqtt() -> MqttConnector:
        return MqttConnector(args.host, args.port)

    runs: list[tuple[str, ConnectorFactory]] = [("memory", memory_factory(memory_broker())), ("mqtt", mqtt)]
    # Warm-up, not recorded: a fresh process runs its first loops slower (the interpreter specialises).
    warmup = payloads[: min(len(payloads), 1_000)]
    for _, factory in runs:
        await pair_throughput(factory, warmup, args.idle_timeout)
    json_round_trip_us(warmup)
    await handoff_floor(warmup, args.idle_timeout)
    for _ in range(args.repeats):
        for key, factory in runs:
            before = json_round_trip_us(payloads) if key == "memory" else 0.0
            rate, delivery = await pair_throughput(factory, payloads, args.idle_timeout)
            out[f"{key}_us"].append(1e6 / rate if rate else float("nan"))
            problems[key].extend(delivery.problems())
            if key == "memory":  # the reference just before and just after the subject, averaged
                out["json_us"].append((before + json_round_trip_us(payloads)) / 2)
                out["floor_us"].append(await handoff_floor(payloads, args.idle_timeout))
    out["problems"] = problems
    return out


def _worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks._fig_memory")
    parser.add_argument("--worker", required=True, choices=sorted(CODECS), help="the codec to expect")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if codec_name() != args.worker:
        print(f"asked for the {args.worker} codec, got {codec_name()}", file=sys.stderr)
        return 1
    print(json.dumps(asyncio.run(_work(args))))
    return 0


# ---------------------------------------------------------------------------------------------
# The figure: a worker per codec, then the rows


@dataclass(slots=True)
class _CodecRun:
    """The series one codec's worker measured (empty when it could not run; `error` says why)."""

    codec: str
    memory: Series
    json: Series
    mqtt: Series
    floor: Series
    error: str = ""
    log: list[str] = field(default_factory=list)


async def _run_worker(bench: Bench, codec: str) -> _CodecRun:
    label = CODECS[codec]
    run = _CodecRun(
        codec,
        Series(f"InMemoryConnector pair per message, {label}", "us"),
        Series(f"encode + decode, {label}", "us"),
        Series(f"MqttConnector pair per message, {label}", "us"),
        Series(f"bare asyncio hand-off per message, {label}", "us"),
    )
    sizes = bench.sizes
    command = [sys.executable, "-m", "tests.benchmarks._fig_memory", "--worker", codec]
    command += ["--messages", str(sizes.pair_messages), "--repeats", str(sizes.repeats)]
    command += ["--idle-timeout", str(sizes.idle_timeout)]
    command += ["--host", bench.server.host, "--port", str(bench.server.port)]
    env = {**os.environ, "CASCADE_CODEC": codec}
    process = await asyncio.create_subprocess_exec(
        *command, cwd=_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60 + 60 * sizes.repeats)
    except TimeoutError:
        process.kill()
        await process.wait()
        run.error = "the worker timed out"
        return run
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        run.error = f"the worker failed: {lines[-1] if lines else f'exit status {process.returncode}'}"
        return run
    result = json.loads(stdout)
    keys = ((run.memory, "memory_us"), (run.json, "json_us"), (run.mqtt, "mqtt_us"), (run.floor, "floor_us"))
    for series, key in keys:
        for value in result[key]:
            series.add(value)
    run.memory.problems.extend(result["problems"]["memory"])
    run.mqtt.problems.extend(result["problems"]["mqtt"])
    return run


async def figure_memory(bench: Bench) -> list[Row]:
    """Rows per codec: the in-memory pair's cost per message vs the JSON round trip (target <= 1.2x);
    the MQTT pair's against the same round trip (context).
    """
    sizes = bench.sizes
    note = f"{sizes.pair_messages} messages, QoS 0, publisher and subscriber in one process"
    rows: list[Row] = []
    for codec in CODECS:
        run = await _run_worker(bench, codec)
        if run.error:
            bench.errors.append(f"memory ({codec} codec): {run.error}")
            bench.log(f"[memory, {codec} codec] {run.error}")
        else:
            series = (run.memory, run.json, run.mqtt, run.floor)
            samples = zip(*(one.samples for one in series), strict=True)
            for i, (memory_us, json_us, mqtt_us, floor_us) in enumerate(samples):
                bench.log(
                    f"[memory, {codec} codec {i + 1}/{sizes.repeats}] in-memory {memory_us:.2f} us, "
                    f"JSON round trip {json_us:.2f} us, bare hand-off {floor_us:.2f} us, "
                    f"MQTT {mqtt_us:.2f} us per message "
                    f"({', '.join(run.memory.problems + run.mqtt.problems) or 'ok'})"
                )
        suffix = f"; {run.error}" if run.error else ""
        rows.append(Row(FIGURE, run.memory, run.json, target=Target("<=", 1.2), note=f"{note}{suffix}"))
        rows.append(Row(FIGURE, run.mqtt, run.json, note=f"context: the MQTT pair, same payloads{suffix}"))
        floor_note = "context: the floor, a deque and one task with the same callback (no contract)"
        rows.append(Row(FIGURE, run.floor, run.json, note=f"{floor_note}{suffix}"))
    return rows


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
