"""Run the benchmarks: ``hatch run bench`` (full) or ``hatch run bench-smoke`` (tiny sizes, for CI).

Usage: ``python -m tests.benchmarks [--smoke] [--json] [--only FIGS] [--repeats N] [--messages N]
[--markdown PATH] [--strict] [--profile PATH]`` from the repository root.

Prints a progress log on stderr and the table on stdout (or the JSON document with ``--json``).
Exit status: 1 if the harness failed, a figure could not be measured, or a connector lost, duplicated
or reordered messages; with ``--strict`` also if a target was missed; 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import logging
import pstats
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from ._bench import FULL, SMOKE, Bench
from ._broker import start_broker
from ._fig_backlog import figure_backlog
from ._fig_dispatch import figure_dispatch
from ._fig_inbound import figure_fanin, figure_inbound
from ._fig_memory import figure_memory
from ._fig_outage import figure_outage
from ._fig_publish import figure_publish_cost
from ._fig_roundtrip import figure_roundtrip
from ._fig_throughput import figure_throughput
from ._report import Row, machine_info, render_machine, render_table

FIGURES: dict[str, tuple[str, Callable[[Bench], Awaitable[list[Row]]]]] = {
    "publish": ("1. publish(qos=0) caller cost", figure_publish_cost),
    "throughput": ("2. end-to-end throughput", figure_throughput),
    "roundtrip": ("3. control round trip", figure_roundtrip),
    "dispatch": ("4. dispatch cost vs live subscriptions", figure_dispatch),
    "memory": ("5. in-memory cost vs the JSON round trip, per codec", figure_memory),
    "outage": ("6. broker outage: memory and resume time", figure_outage),
    "inbound": ("7. inbound: a C publisher into a subscriber's callback", figure_inbound),
    "fanin": ("8. fan-in: one observer, many publisher processes", figure_fanin),
    "backlog": ("9. slow consumer: inbound backlog memory vs max_inbound", figure_backlog),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each (CI)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument(
        "--only", default="", help=f"comma-separated figures to run ({', '.join(FIGURES)}); default all"
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement (default 3)")
    parser.add_argument("--messages", type=int, default=None, help="messages per throughput run")
    parser.add_argument("--markdown", default=None, help="also write the machine line and table here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--quiet", action="store_true", help="no progress log")
    parser.add_argument(
        "--profile", default=None, help="run under cProfile, write the stats here, print the top 30"
    )
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in selected if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    args.selected = selected or list(FIGURES)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.messages is not None and args.messages < 1:
        parser.error("--messages must be at least 1")
    return args


def run_failed(bench: Bench, rows: list[Row], *, strict: bool) -> bool:
    """Whether the run failed: harness errors, a row not measured (unless absent on purpose, such as
    a broker that is not installed), a row with a target that lost messages; with `strict` also a
    missed target. Logs why.
    """
    failed = bool(bench.errors)
    for row in rows:
        if row.status == "n/a" and row.absent:
            bench.log(f"not measured: {row.figure} {row.measured.label}: {row.absent}")
        elif row.status == "n/a":
            bench.log(f"not measured: {row.figure} {row.measured.label} {row.note}")
            failed = True
        elif row.target is not None and row.problems:
            bench.log(f"incorrect: {row.figure} {row.measured.label}: {'; '.join(row.problems)}")
            failed = True
        elif strict and row.status == "MISSED":
            failed = True
    return failed


async def _run(args: argparse.Namespace) -> int:
    sizes = SMOKE if args.smoke else FULL
    if args.repeats is not None:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    if args.messages is not None:
        sizes = dataclasses.replace(sizes, messages=args.messages)
    server = await asyncio.to_thread(start_broker)
    bench = Bench(sizes=sizes, server=server, smoke=args.smoke, quiet=args.quiet)
    info = machine_info(server.executable)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        for key in args.selected:
            title, figure = FIGURES[key]
            bench.log(f"== {title}")
            figure_started = time.monotonic()
            try:
                rows += await figure(bench)
            except Exception as exc:  # report and go on with the other figures
                bench.errors.append(f"{key}: {type(exc).__name__}: {exc}")
                bench.log(traceback.format_exc())
            bench.log(f"   ({key}: {time.monotonic() - figure_started:.1f} s)")
    finally:
        await asyncio.to_thread(server.close)
    elapsed = time.monotonic() - started
    bench.log(f"== done in {elapsed:.1f} s")

    table = render_table(rows)
    if args.json:
        document = {
            "machine": info,
            "mode": "smoke" if args.smoke else "full",
            "sizes": dataclasses.asdict(sizes),
            "elapsed_s": round(elapsed, 1),
            "rows": [row.as_dict() for row in rows],
            "errors": bench.errors,
        }
        print(json.dumps(document, indent=2))
    else:
        print(render_machine(info))
        print()
        print(table)
        for error in bench.errors:
            print(f"ERROR {error}")
    if args.markdown:
        text = f"{render_machine(info)}\n\n{table}\n"
        await asyncio.to_thread(Path(args.markdown).write_text, text, encoding="utf-8")

    return 1 if run_failed(bench, rows, strict=args.strict) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parse(argv)
    # The connectors log expected events (the outage figure stops the broker on purpose) at WARNING.
    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.WARNING,
        format="   log %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.profile:
        return asyncio.run(_run(args))
    # cProfile of this process (the event loop thread; paho's own thread is not included).
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return asyncio.run(_run(args))
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(pstats.SortKey.TIME).print_stats(30)


if __name__ == "__main__":
    sys.exit(main())
