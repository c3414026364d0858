"""The Cascade connectors demo: ``hatch run demo`` (see the README).

One process plays three parts, each through its own real connector:

- an **engine** (the readable model in ``demo_engine.py``) that runs a small simulated workflow. It
  publishes every task state change and its start/stop as telemetry, announces its presence, and
  obeys the operators' constraints live through a `ConstraintBook`;
- a scripted **operator** that pauses the demo's project part-way, waits for the engine to hold still,
  resumes it, then caps its concurrency, with the public operator API that ``cascade-mqtt pause``,
  ``resume`` and ``limit`` use (``cascade.connectors.mqtt.operator``);
- a **watcher** that builds the live view of ``cascade-mqtt watch`` (its `WatchModel`).

It ends with a summary: tasks by state, messages published and received, and the time from the pause
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cascade.connectors.mqtt.operator import (
    TASK_STATES,
    WatchModel,
    describe_command,
    format_event,
    is_operator_source,
    live_title,
    new_constraint,
    render_live,
    resume,
    send_constraint,
)
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    Connector,
    ConnectorError,
    ConnectorStats,
    Constraint,
    ConstraintType,
    TaskState,
)

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_engine import (
        FINAL,
        EngineReport,
        SimulatedEngine,
        TaskSpec,
        expected_outcome,
        make_workflow,
    )
else:  # run as a script: this folder is on sys.path
    from demo_engine import FINAL, EngineReport, SimulatedEngine, TaskSpec, expected_outcome, make_workflow


# ---------------------------------------------------------------------------------------------
# The operator (scripted) and the watcher


@dataclass(frozen=True, slots=True)
class Plan:
    """When the operator acts: after `pause_after` final tasks, pause for `hold` seconds; after
    `cap_after` final tasks, cap concurrency at `cap`. `ttl` (seconds) bounds every constraint it sets,
    so a crashed demo never leaves its project paused for long.
    """

    pause_after: int
    hold: float
    cap_after: int
    cap: int
    ttl: float = 120.0


@dataclass(slots=True)
class OperatorReport:
    """What the operator measured; `time.monotonic()` seconds."""

    scope: str = ""
    pause_sent_at: float | None = None
    pause_acked_at: float | None = None
    resume_sent_at: float | None = None
    cap_sent_at: float | None = None
    commands: list[str] = field(default_factory=list)


async def operate(
    connector: Connector,
    engine: SimulatedEngine,
    plan: Plan,
    say: Callable[[str], None],
    *,
    address: str = "memory://",
) -> OperatorReport:
    """Pause the engine's project, wait until it holds still, resume, then cap its concurrency.

    Every command is a retained constraint published at qos 1 (returns once the broker acknowledged),
    sent by the same code as ``cascade-mqtt pause/resume/limit``. Clears the cap when the workflow is
    done. `address` names the broker in error messages.
    """
    report = OperatorReport(scope=f"project:{engine.project}")
    scope = report.scope
    total = len(engine.workflow)

    async def send(command: str, constraint: Constraint | None) -> float:
        """Send what ``cascade-mqtt COMMAND`` sends, with the same public API; returns when it was sent."""
        say(f"operator> cascade-mqtt {command}")
        report.commands.append(command)
        sent = time.monotonic()
        try:
            async with asyncio.timeout(30):
                if constraint is None:
                    await resume(connector, scope)
                else:
                    await send_constraint(connector, constraint)
        except TimeoutError as exc:
            raise ConnectorError(
                f"the broker at {address} did not acknowledge {command!r} within 30 s"
            ) from exc
        return sent

    await engine.wait_until(lambda: engine.finished >= plan.pause_after)
    pause = new_constraint(scope, ConstraintType.PAUSE, ttl=plan.ttl)
    report.pause_sent_at = await send(f"pause {scope} --ttl {plan.ttl:g}", pause)
    report.pause_acked_at = time.monotonic()
    ack = _ms(report.pause_acked_at - report.pause_sent_at)
    say(f"operator: {describe_command(pause)}; broker acknowledged after {ack}")
    await engine.still.wait()
    await asyncio.sleep(plan.hold)  # demo pacing: leave the engine paused for a moment
    report.resume_sent_at = await send(f"resume {scope}", None)

    await engine.wait_until(lambda: engine.finished >= min(plan.cap_after, total))
    if engine.finished < total:
        cap = new_constraint(scope, ConstraintType.CONCURRENCY, {"limit": plan.cap}, ttl=plan.ttl)
        report.cap_sent_at = await send(f"limit {scope} --concurrency {plan.cap} --ttl {plan.ttl:g}", cap)
        say(f"operator: {describe_command(cap)}")
    await engine.wait_until(lambda: engine.finished >= total)
    await send(f"resume {scope}", None)  # leave the broker as we found it
    return report


class Watcher:
    """The live view of ``cascade-mqtt watch`` (its `WatchState`), fed by its own connector.

    Prints failures, engine start/stop, presence and constraint changes as they arrive (every event
    with `verbose`), and counts RUNNING events stamped while the engine was holding still.
    """

    def __init__(
        self, connector: Connector, project: str, say: Callable[[str], None], *, verbose: bool
    ) -> None:
        self.connector = connector
        self.project = project
        self.say = say
        self.verbose = verbose
        self.state = WatchModel(hide_source=is_operator_source)
        self.running_stamped: list[float] = []
        """Unix times (from the message header) of every RUNNING event received."""
        self._handles: list[Any] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Subscribe to presence, constraints and the project's telemetry (returns once live)."""
        telemetry = f"cascade/telemetry/+/{self.project}/+/events"
        for topic_filter in (STATUS_FILTER, CONSTRAINTS_FILTER, telemetry):
            self._handles.append(await self.connector.subscribe(topic_filter, self._on_message))

    async def stop(self) -> None:
        """Unsubscribe."""
        for handle in self._handles:
            await handle.unsubscribe()
        self._handles.clear()

    async def wait_stopped(self, run_id: str) -> None:
        """Return once the watcher has seen ENGINE_STOPPED for `run_id`."""
        while not any(r.run_id == run_id and r.engine == "stopped" for r in self.state.runs.values()):
            self._stopped.clear()
            await self._stopped.wait()

    async def _on_message(self, topic: str, payload: dict[str, Any]) -> None:
        event = self.state.on_message(topic, payload)
        if event is None:
            return
        if event.kind == "task" and event.fields["state"] == TaskState.RUNNING.value:
            self.running_stamped.append(_unix(event.ts))
        notable = event.kind in ("engine", "worker", "constraint") or (
            event.kind == "task" and event.fields["state"] == TaskState.FAILED.value
        )
        if notable or self.verbose:
            self.say(f"watch: {format_event(event)}")
        if event.kind == "engine":
            self._stopped.set()

    def progress(self) -> str:
        """One line: tasks by state over every run of the project, and any constraint in force."""
        totals = self.state.totals()
        final = sum(totals[s] for s in FINAL)
        known = sum(totals.values())
        width = 24
        filled = round(width * final / known) if known else 0
        bar = "#" * filled + "." * (width - filled)
        counts = "  ".join(f"{s.value.lower()} {totals[s]}" for s in TASK_STATES if totals[s])
        constraints = ", ".join(
            f"{c.scope} {c.type.value}" + (f" {c.params['limit']}" if "limit" in c.params else "")
            for c in self.state.constraints.active()
        )
        return f"[{bar}] {final}/{known}  {counts}" + (f"  | {constraints}" if constraints else "")


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
    summary = _summary(
        options,
        transport,
        workflow,
        report,
        operator_report,
        watcher,
        run_id,
        wall,
        [engine_conn, operator_conn, watcher_conn],
    )
    out.write(_format_summary(summary))
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


def _stats(connector: Connector) -> ConnectorStats:
    stats = getattr(connector, "stats", None)
    return stats if isinstance(stats, ConnectorStats) else ConnectorStats()


def _summary(
    options: Options,
    transport: Transport,
    workflow: Sequence[TaskSpec],
    report: EngineReport,
    operator: OperatorReport,
    watcher: Watcher,
    run_id: str,
    wall: float,
    connectors: Sequence[Connector],
) -> dict[str, Any]:
    run = next(r for r in watcher.state.runs.values() if r.run_id == run_id)
    parts = dict(zip(("engine", "operator", "watcher"), (_stats(c) for c in connectors), strict=True))
    sent = operator.pause_sent_at
    # The operator's pause: the first episode that began after its command (not an earlier pause
    # already in force on the broker).
    episode = next((e for e in report.pauses if sent is not None and e.observed_at >= sent), None)
    pause: dict[str, Any] = {"observed": episode is not None}
    if episode is not None and sent is not None:
        pause.update(
            scope=episode.scope,
            command_to_ack_ms=_round_ms(operator.pause_acked_at, sent),
            command_to_observed_ms=_round_ms(episode.observed_at, sent),
            command_to_still_ms=_round_ms(episode.still_at, sent),
            drained=episode.running_when_observed,
            started_while_paused=episode.started_while_paused,
        )
        held_from, held_to = _wall_of(episode.still_at), _wall_of(episode.resumed_at)
        if held_from is not None and held_to is not None:
            pause["running_seen_while_held"] = sum(
                1 for ts in watcher.running_stamped if held_from < ts < held_to - 0.001
            )
    return {
        "seed": options.seed,
        "tasks": options.tasks,
        "run_id": run_id,
        "transport": transport.kind,
        "transport_note": transport.note,
        "expected": expected_outcome(workflow),
        "engine_states": report.counts(),
        "watcher_states": {state.value: count for state, count in run.counts().items()},
        "messages": {
            "published": sum(s.published for s in parts.values()),
            "received": sum(s.delivered for s in parts.values()),
            "dropped": sum(s.dropped for s in parts.values()),
            "malformed_skipped": watcher.state.malformed,
            "by_part": {name: s.as_dict() for name, s in parts.items()},
        },
        "pause": pause,
        "cap": {
            "limit": report.cap,
            "max_running_before_cap": report.max_running,
            "max_running_after_cap": report.max_running_after_cap if report.cap is not None else None,
        },
        "operator_commands": operator.commands,
        "wall_seconds": round(wall, 2),
    }


# time.monotonic() -> Unix time, for comparing engine instants with message header timestamps.
_MONO_TO_UNIX = time.time() - time.monotonic()


def _wall_of(mono: float | None) -> float | None:
    return None if mono is None else mono + _MONO_TO_UNIX


def _unix(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts).timestamp()


def _round_ms(later: float | None, earlier: float) -> float | None:
    return None if later is None else round((later - earlier) * 1000.0, 1)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000.0:.1f} ms"


def _format_summary(summary: dict[str, Any]) -> str:
    def states(counts: dict[str, int]) -> str:
        shown = "  ".join(f"{name} {n}" for name, n in counts.items() if n)
        return f"{shown}  (total {sum(counts.values())})"

    messages = summary["messages"]
    pause = summary["pause"]
    cap = summary["cap"]
    lines = [
        "",
        "Summary",
        f"  transport            {summary['transport']}",
        f"  tasks by state       {states(summary['engine_states'])}",
        f"  as the watcher saw   {states(summary['watcher_states'])}",
        f"  messages             {messages['published']} published, {messages['received']} received"
        f" ({messages['dropped']} dropped, {messages['malformed_skipped']} malformed skipped)",
    ]
    if pause.get("command_to_still_ms") is not None:
        lines += [
            f"  pause -> still       {pause['command_to_still_ms']:.1f} ms from the pause command to the"
            " engine holding still",
            f"                       (broker ack {pause['command_to_ack_ms']:.1f} ms, engine saw it after"
            f" {pause['command_to_observed_ms']:.1f} ms, {pause['drained']} running task(s) drained,"
            f" {pause['started_while_paused']} started while paused)",
        ]
    else:
        lines.append(
            "  pause -> still       not measured: the engine was already held by another pause"
            " (see cascade-mqtt constraints)"
        )
    if cap["limit"] is not None:
        lines.append(
            f"  concurrency cap      {cap['limit']}: at most {cap['max_running_after_cap']} running"
            f" after the cap (up to {cap['max_running_before_cap']} before)"
        )
    lines.append(f"  wall time            {summary['wall_seconds']:.1f} s")
    return "\n".join(lines) + "\n"


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
