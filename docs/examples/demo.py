"""The Cascade connectors demo: ``hatch run demo`` (see the README).

One process plays three parts, each through its own real connector:

- an **engine** (the readable model in ``demo_engine.py``) that runs a small simulated workflow
  (``demo_workflow.py``). It publishes every task state change and its start/stop as telemetry,
  announces its presence, and obeys the operators' constraints live through a `ConstraintBook`;
- a scripted **operator** that pauses the demo's project part-way, waits for the engine to hold still,
  resumes it, then caps its concurrency, with the public operator API that ``cascade-mqtt pause``,
  ``resume`` and ``limit`` use (``cascade.connectors.mqtt.operator``);
- a **watcher** that builds the live view of ``cascade-mqtt watch`` (its `WatchModel`).

The scripted operator and the watcher live in ``demo_operator.py``; this file chooses the transport,
runs the three parts together and prints their progress. It ends with a summary (``demo_summary.py``):
tasks by state, messages published and received, and the time from the pause
command to the engine holding still (no task running, none started).

Transport: ``--url mqtt://...`` uses that broker; without it the demo starts a private Mosquitto on a
free port when ``mosquitto`` is installed, otherwise (or with ``--in-memory``) it runs over the in-memory
broker of ``cascade-connector-testing`` and says so.

    python docs/examples/demo.py [--seed N] [--tasks N] [--speed X] [--url URL | --in-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cascade.connectors.mqtt.operator import live_title, render_live
from cascade.connectors.protocol import Connector, ConnectorError

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_engine import SimulatedEngine
    from docs.examples.demo_operator import Plan, Watcher, operate
    from docs.examples.demo_summary import format_summary, summarise
    from docs.examples.demo_workflow import expected_outcome, make_workflow
else:  # run as a script: this folder is on sys.path
    from demo_engine import SimulatedEngine
    from demo_operator import Plan, Watcher, operate
    from demo_summary import format_summary, summarise
    from demo_workflow import expected_outcome, make_workflow


# ---------------------------------------------------------------------------------------------
# Transport: a given URL, a private Mosquitto, or the in-memory broker


def _masked(url: str) -> str:
    """`url` fit to show: any password replaced by ``***``, the query dropped."""
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    user, at, host = netloc.rpartition("@")
    return f"{scheme}://{user.split(':', 1)[0]}{':***' if ':' in user else ''}{at}{host}"


@dataclass
class Transport:
    """Makes connectors that share one backend; `kind` is ``url``, ``mosquitto`` or ``in-memory``."""

    kind: str
    label: str
    new_connector: Callable[[str], Connector]
    note: str | None = None
    address: str = "memory://"
    close: Callable[[], None] = lambda: None


def choose_transport(url: str | None, in_memory: bool) -> Transport:
    """The backend for this run (starts a private Mosquitto when there is no URL and it is installed).

    Raises `ConnectorError` for an invalid `url`.
    """
    from cascade.connectors.mqtt.mosquitto import MosquittoServer, find_mosquitto

    if url is not None:
        from cascade.connectors.mqtt import MqttConnector

        MqttConnector.from_url(url)  # a bad URL fails here, before anything runs
        shown = _masked(url)
        return Transport(
            "url", shown, lambda source: MqttConnector.from_url(url, source=source), address=shown
        )
    reason = "--in-memory was given"
    if not in_memory:
        if find_mosquitto() is None:
            reason = "mosquitto is not installed"
        else:
            server = MosquittoServer()
            try:
                server.start()
            except ConnectorError as exc:
                server.close()
                reason = f"mosquitto did not start ({exc})"
            else:
                from cascade.connectors.mqtt import MqttConnector

                server_url = server.url
                return Transport(
                    "mosquitto",
                    f"a private Mosquitto on {server_url}",
                    lambda source: MqttConnector.from_url(server_url, source=source),
                    close=server.close,
                    address=server_url,
                )
    from cascade.connectors.testing import InMemoryBroker, InMemoryConnector

    broker = InMemoryBroker()
    return Transport(
        "in-memory",
        "the in-memory broker (cascade-connector-testing)",
        lambda source: InMemoryConnector(broker, source=source),
        note=f"{reason}: running over the in-memory broker from cascade-connector-testing",
    )


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class Options:
    """The demo's knobs (see ``--help``)."""

    seed: int = 7
    tasks: int = 40
    speed: float = 1.0
    workers: int = 6
    cap: int = 2
    project: str = "demo"
    url: str | None = None
    in_memory: bool = False
    verbose: bool = False
    live: bool = False
    summary_json: Path | None = None


@contextlib.asynccontextmanager
async def _connected(connector: Connector) -> AsyncIterator[Connector]:
    await connector.connect()
    try:
        yield connector
    finally:
        await connector.disconnect()


async def run_demo(options: Options, transport: Transport, out: TextIO) -> dict[str, Any]:
    """Run engine, operator and watcher over `transport`; print progress and the summary to `out`.

    Returns the summary (also written to `options.summary_json`).
    """
    started = time.monotonic()
    console: Any = None
    if options.live:
        from rich.console import Console

        console = Console(file=out)

    def say(text: str) -> None:
        line = f"[{time.monotonic() - started:6.2f}s] {text}"
        if console is not None:
            from rich.text import Text

            console.print(Text(line))  # above the live table; a Text, so no markup from the wire
        else:
            out.write(line + "\n")
            out.flush()

    workflow = make_workflow(options.tasks, options.seed, options.speed)
    token = secrets.token_hex(3)
    run_id = f"run-{options.seed}-{token}"
    plan = Plan(
        pause_after=max(1, options.tasks // 4),
        hold=1.5 / options.speed,
        cap_after=max(2, options.tasks * 11 // 20),
        cap=options.cap,
    )
    out.write(
        f"Cascade connectors demo: {options.tasks} tasks (seed {options.seed}), project {options.project!r}, "
        f"run {run_id}, over {transport.label}\n"
    )
    if transport.note:
        out.write(f"note: {transport.note}\n")
    out.flush()

    engine_conn = transport.new_connector(f"demo-engine-{token}")
    operator_conn = transport.new_connector(f"demo-operator-{token}")
    watcher_conn = transport.new_connector(f"demo-watcher-{token}")
    async with _connected(watcher_conn), _connected(operator_conn):
        watcher = Watcher(watcher_conn, options.project, say, verbose=options.verbose)
        await watcher.start()
        names = sorted({spec.name for spec in workflow})
        foreign = {
            c.scope for name in names for c in watcher.state.constraints.applicable(name, options.project)
        }
        if foreign:
            scopes = ", ".join(sorted(foreign))
            say(
                f"note: constraints already in force on this broker apply to the demo ({scopes});"
                " the engine obeys them (see cascade-mqtt constraints)"
            )
        async with _connected(engine_conn):
            engine = SimulatedEngine(
                engine_conn,
                workflow,
                project=options.project,
                run_id=run_id,
                source=f"demo-engine-{token}",
                max_workers=options.workers,
                notify=say,
            )

            async with _progress(watcher, say, console, options, transport):
                engine_run = asyncio.create_task(engine.run())
                operator_report = await operate(operator_conn, engine, plan, say, address=transport.address)
                report = await engine_run
                await watcher.wait_stopped(run_id)
        if console is None:
            say(watcher.progress())
        await watcher.stop()
    wall = time.monotonic() - started
    about = {
        "seed": options.seed,
        "tasks": options.tasks,
        "run_id": run_id,
        "transport": transport.kind,
        "transport_note": transport.note,
    }
    connectors = [engine_conn, operator_conn, watcher_conn]
    summary = summarise(about, expected_outcome(workflow), report, operator_report, watcher, wall, connectors)
    out.write(format_summary(summary))
    out.flush()
    if options.summary_json is not None:
        options.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


@contextlib.asynccontextmanager
async def _progress(
    watcher: Watcher, say: Callable[[str], None], console: Any, options: Options, transport: Transport
) -> AsyncIterator[None]:
    """While the body runs: a progress line every second (plain), or the live table of
    ``cascade-mqtt watch`` redrawn four times a second under the event lines (`console` set).
    """

    async def tick() -> None:
        while True:
            await asyncio.sleep(max(0.25, 1.0 / options.speed))
            say(watcher.progress())

    if console is None:
        ticking = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticking.cancel()
        return

    from rich.live import Live

    title = live_title(transport.label, f"cascade/telemetry/+/{options.project}/+/events")

    def view() -> Any:
        return render_live(watcher.state, title=title, now=time.time())

    with Live(view(), console=console, auto_refresh=False) as live:

        async def redraw() -> None:
            while True:
                await asyncio.sleep(0.25)
                live.update(view(), refresh=True)

        drawing = asyncio.create_task(redraw())
        try:
            yield
        finally:
            drawing.cancel()
            live.update(view(), refresh=True)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line into `Options` (exits 2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="demo", description="Cascade connectors demo: engine, operator and watcher over one broker."
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url", help="use this broker (mqtt://[user:password@]host[:port]) instead of a private one"
    )
    where.add_argument(
        "--in-memory", action="store_true", help="use the in-memory broker even if mosquitto is installed"
    )
    parser.add_argument("--seed", type=int, default=7, help="workflow seed (durations, failures); default 7")
    parser.add_argument("--tasks", type=int, default=40, help="number of tasks (>= 8); default 40")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="time compression (2 = twice as fast); default 1"
    )
    parser.add_argument("--workers", type=int, default=6, help="engine concurrency before the cap; default 6")
    parser.add_argument("--cap", type=int, default=2, help="the operator's concurrency cap; default 2")
    parser.add_argument("--project", default="demo", help="the project the engine runs in; default demo")
    parser.add_argument("--verbose", action="store_true", help="print every telemetry event the watcher sees")
    parser.add_argument("--summary-json", type=Path, help="also write the summary to this file as JSON")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="progress lines even on a terminal (default there: the live table)",
    )
    args = parser.parse_args(argv)
    if args.tasks < 8:
        parser.error("--tasks must be at least 8")
    if not math.isfinite(args.speed) or args.speed <= 0:
        parser.error("--speed must be a number > 0")
    if args.workers < 1 or args.cap < 1:
        parser.error("--workers and --cap must be at least 1")
    return Options(
        seed=args.seed,
        tasks=args.tasks,
        speed=args.speed,
        workers=args.workers,
        cap=args.cap,
        project=args.project,
        url=args.url,
        in_memory=args.in_memory,
        verbose=args.verbose,
        live=not args.plain and sys.stdout.isatty() and importlib.util.find_spec("rich") is not None,
        summary_json=args.summary_json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (0 ok, 1 failure, 130 interrupted)."""
    options = parse_args(argv)
    try:
        transport = choose_transport(options.url, options.in_memory)
    except (ConnectorError, ValueError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(asyncio.wait_for(run_demo(options, transport, sys.stdout), timeout=120))
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    except TimeoutError:
        print(
            "demo: error: the demo did not finish within 120 s "
            "(is its engine held by a constraint? see cascade-mqtt constraints)",
            file=sys.stderr,
        )
        return 1
    except ConnectorError as exc:
        print(f"demo: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
