"""The Cascade connectors demo: ``hatch run demo`` (see the README).

One process plays three parts, each through its own real connector:

- an **engine** that runs a small simulated workflow (chains of extract -> transform -> api_call ->
  load tasks with random durations; a few fail and their downstream tasks are skipped). It publishes
  every task state change and its start/stop as telemetry, announces its presence, and obeys the
  operators' constraints live through a `ConstraintBook`;
- a scripted **operator** that pauses the demo's project part-way, waits for the engine to hold still,
  resumes it, then caps its concurrency (the same retained constraints ``cascade-mqtt pause``,
  ``resume`` and ``limit`` publish);
- a **watcher** that builds the live view of ``cascade-mqtt watch`` from the telemetry.

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
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cascade.connectors.mqtt._cli.app import is_cli_source
from cascade.connectors.mqtt._cli.commands import (
    describe_command,
    make_constraint,
    send_constraint,
    send_resume,
)
from cascade.connectors.mqtt._cli.exitcodes import CliError
from cascade.connectors.mqtt._cli.validate import display_url
from cascade.connectors.mqtt._cli.watch import TASK_STATES, WatchState, format_event
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    Connector,
    ConnectorError,
    ConnectorStats,
    Constraint,
    ConstraintBook,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    telemetry_topic,
)

STAGES = ("extract", "transform", "api_call", "load")
ERRORS = {
    "extract": "source table locked (SQLSTATE 55P03)",
    "transform": "ValueError: column 'amount' has 3 nulls",
    "api_call": "HTTP 503 from https://api.example.com/v2/orders",
    "load": "disk quota exceeded on /warehouse",
}
FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


# ---------------------------------------------------------------------------------------------
# The workflow


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of the simulated workflow: `duration` in seconds, `depends_on` a task id or None."""

    task_id: str
    name: str
    duration: float
    fails: bool
    depends_on: str | None


def make_workflow(n_tasks: int, seed: int, speed: float = 1.0) -> list[TaskSpec]:
    """Chains of extract -> transform -> api_call -> load, `n_tasks` in all, the same for one `seed`.

    About one task in thirteen fails (at least one); durations are 0.4-1.5 s divided by `speed`.
    """
    rng = random.Random(seed)
    chains = math.ceil(n_tasks / len(STAGES))
    ids: list[tuple[str, str, str | None]] = []
    for chain in range(chains):
        previous: str | None = None
        for stage in STAGES:
            if len(ids) == n_tasks:
                break
            task_id = f"{stage}-{chain + 1:02d}"
            ids.append((task_id, stage, previous))
            previous = task_id
    failing = set(rng.sample(range(n_tasks), max(1, n_tasks // 13)))
    return [
        TaskSpec(task_id, name, round(rng.uniform(0.4, 1.5) / speed, 4), i in failing, depends_on)
        for i, (task_id, name, depends_on) in enumerate(ids)
    ]


def expected_outcome(workflow: Sequence[TaskSpec]) -> dict[str, int]:
    """Final task state -> count, as the engine must end (failed tasks skip their downstream)."""
    states: dict[str, TaskState] = {}
    for spec in workflow:  # dependencies come first in the list
        upstream = states.get(spec.depends_on) if spec.depends_on else TaskState.COMPLETED
        if upstream is not TaskState.COMPLETED:
            states[spec.task_id] = TaskState.SKIPPED
        else:
            states[spec.task_id] = TaskState.FAILED if spec.fails else TaskState.COMPLETED
    counts = Counter(states.values())
    return {state.value: counts[state] for state in FINAL}


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass(slots=True)
class PauseEpisode:
    """One pause as the engine lived it; times are `time.monotonic()` seconds."""

    scope: str
    observed_at: float
    running_when_observed: int
    still_at: float | None = None
    resumed_at: float | None = None
    started_while_paused: int = 0


@dataclass(slots=True)
class EngineReport:
    """What the engine did: final states, pauses, and how the concurrency cap was kept."""

    states: dict[str, TaskState] = field(default_factory=dict)
    starts: list[tuple[float, str]] = field(default_factory=list)
    pauses: list[PauseEpisode] = field(default_factory=list)
    cap: int | None = None
    cap_observed_at: float | None = None
    max_running_after_cap: int = 0
    max_running: int = 0
    published: int = 0

    def counts(self) -> dict[str, int]:
        """Task state -> number of tasks in it (every state listed)."""
        counted = Counter(self.states.values())
        return {state.value: counted[state] for state in TASK_STATES}


class SimulatedEngine:
    """Runs `workflow` against `connector`, obeying the constraints in force for its tasks.

    Typed against the `Connector` protocol only: any connector works. Every task state change and the
    engine's start and stop are published as telemetry (qos 0, the hot path: it only queues). Constraints
    come from `CONSTRAINTS_FILTER` into a `ConstraintBook`; a task starts only when no covering scope is
    paused, every covering concurrency limit has room and every covering rate limit allows a start now.
    `max_workers` is the engine's own concurrency. The connector must be connected; `run` does not
    connect or disconnect it.
    """

    def __init__(
        self,
        connector: Connector,
        workflow: Sequence[TaskSpec],
        *,
        project: str = "demo",
        run_id: str = "run-1",
        source: str = "demo-engine",
        max_workers: int = 6,
        notify: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.connector = connector
        self.workflow = list(workflow)
        self.project = project
        self.run_id = run_id
        self.source = source
        self.max_workers = max_workers
        self.notify = notify
        self.book = ConstraintBook()
        self.report = EngineReport()
        self.paused = False
        """Whether every task of the workflow is paused by some constraint."""
        self.still = asyncio.Event()
        """Set while the engine is paused and no task is running (cleared on resume)."""
        self._names = sorted({spec.name for spec in self.workflow})
        self._specs = {spec.task_id: spec for spec in self.workflow}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._last_start: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._topic = telemetry_topic("local", project, run_id)

    # -- public ------------------------------------------------------------------------------------

    @property
    def finished(self) -> int:
        """Tasks in a final state (COMPLETED, FAILED or SKIPPED)."""
        return sum(1 for s in self.report.states.values() if s in FINAL)

    @property
    def running(self) -> int:
        """Tasks running now."""
        return len(self._running)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once `condition()` holds (checked after every task state change)."""
        async with self._changed:
            await self._changed.wait_for(condition)

    async def run(self) -> EngineReport:
        """Run the workflow to the end and return the report. Blocks until every task is final.

        Subscribes to the constraints first (`subscribe` returns after the retained ones arrived, so
        a pause already in force holds the very first task).
        """
        handle = await self.connector.subscribe(CONSTRAINTS_FILTER, self._on_constraint)
        try:
            await self._publish(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))
            for spec in self.workflow:
                await self._set_state(spec, TaskState.PENDING)
            while True:
                self._wake.clear()
                self._refresh_paused(time.monotonic())  # a pause may have expired
                delay = await self._start_ready()
                self._check_still()
                if self.finished == len(self.workflow):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            await self._publish(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED))
        finally:
            for task in list(self._running.values()):
                task.cancel()
            await handle.unsubscribe()
        return self.report

    # -- scheduling --------------------------------------------------------------------------------

    async def _start_ready(self) -> float | None:
        """Start every task allowed now; return the seconds until a rate limit or an expiry may free one."""
        wait: float | None = None
        expiry = self.book.next_expiry()
        if expiry is not None:
            wait = max(0.0, expiry - time.time())
        for spec in self.workflow:
            if self.report.states.get(spec.task_id) is not TaskState.PENDING:
                continue
            upstream = self.report.states.get(spec.depends_on) if spec.depends_on else TaskState.COMPLETED
            if upstream in (TaskState.FAILED, TaskState.SKIPPED):
                await self._set_state(spec, TaskState.SKIPPED)
                continue
            if upstream is not TaskState.COMPLETED or len(self._running) >= self.max_workers:
                continue
            if self.book.is_paused(spec.name, self.project) or not self._has_room(spec):
                continue
            delay = self._rate_delay(spec, time.monotonic())
            if delay > 0:
                wait = delay if wait is None else min(wait, delay)
                continue
            await self._start(spec)
        return wait

    def _has_room(self, spec: TaskSpec) -> bool:
        """Whether every concurrency limit covering `spec` has room (each scope is its own pool)."""
        for scope, limit in self.book.concurrency_limits(spec.name, self.project).items():
            inside = sum(
                1
                for task_id in self._running
                if scope in ConstraintBook.covering_scopes(self._specs[task_id].name, self.project)
            )
            if inside >= limit:
                return False
        return True

    def _rate_delay(self, spec: TaskSpec, now: float) -> float:
        """Seconds until every rate limit covering `spec` allows a start (0: now)."""
        delay = 0.0
        for scope, per_second in self.book.rate_limits(spec.name, self.project).items():
            last = self._last_start.get(scope)
            if last is not None:
                delay = max(delay, last + 1.0 / per_second - now)
        return delay

    async def _start(self, spec: TaskSpec) -> None:
        now = time.monotonic()
        for scope in ConstraintBook.covering_scopes(spec.name, self.project):
            self._last_start[scope] = now
        self._running[spec.task_id] = asyncio.create_task(self._execute(spec), name=spec.task_id)
        report = self.report
        report.starts.append((now, spec.task_id))
        report.max_running = max(report.max_running, len(self._running))
        if report.cap_observed_at is not None:
            report.max_running_after_cap = max(report.max_running_after_cap, len(self._running))
        if self.paused:
            report.pauses[-1].started_while_paused += 1
        await self._set_state(spec, TaskState.RUNNING)

    async def _execute(self, spec: TaskSpec) -> None:
        started = time.monotonic()
        await asyncio.sleep(spec.duration)  # the simulated work
        del self._running[spec.task_id]
        duration_ms = round((time.monotonic() - started) * 1000.0, 1)
        if spec.fails:
            await self._set_state(spec, TaskState.FAILED, duration_ms, ERRORS[spec.name])
        else:
            await self._set_state(spec, TaskState.COMPLETED, duration_ms)
        self._wake.set()

    def _check_still(self) -> None:
        if self.paused and not self._running and not self.still.is_set():
            episode = self.report.pauses[-1]
            episode.still_at = time.monotonic()
            self.still.set()
            self.notify(
                f"engine: holding still ({episode.running_when_observed} running task(s) drained, "
                "none started)"
            )

    # -- constraints -------------------------------------------------------------------------------

    async def _on_constraint(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            constraint = self.book.apply(topic, payload)
        except ConnectorError as exc:
            self.notify(f"engine: ignored an unreadable constraint ({exc})")
            return
        now = time.monotonic()
        self._refresh_paused(now)
        limit = self.book.effective_concurrency(self._names[0], self.project) if self._names else None
        if constraint is not None and limit is not None and limit != self.report.cap:
            self.report.cap, self.report.cap_observed_at = limit, now
            self.report.max_running_after_cap = 0
            self.notify(f"engine: concurrency capped at {limit} ({len(self._running)} running now)")
        self._wake.set()

    def _refresh_paused(self, now: float) -> None:
        """Track whether every task is paused (a constraint arrived, was cleared, or expired)."""
        scope = self._pause_scope()
        if scope is not None and not self.paused:
            self.report.pauses.append(PauseEpisode(scope, now, len(self._running)))
            self.notify(f"engine: paused by {scope}; {len(self._running)} running task(s) may finish")
        elif scope is None and self.paused:
            self.report.pauses[-1].resumed_at = now
            self.still.clear()
            self.notify("engine: resumed")
        self.paused = scope is not None

    def _pause_scope(self) -> str | None:
        """The scope of a pause holding every task of the workflow, or None."""
        if not self._names or not all(self.book.is_paused(name, self.project) for name in self._names):
            return None
        for constraint in self.book.applicable(self._names[0], self.project):
            if constraint.type is ConstraintType.PAUSE:
                return constraint.scope
        return None  # pragma: no cover - is_paused said a pause applies

    # -- telemetry ---------------------------------------------------------------------------------

    async def _set_state(
        self, spec: TaskSpec, state: TaskState, duration_ms: float = 0.0, error: str = ""
    ) -> None:
        self.report.states[spec.task_id] = state
        await self._publish(TaskStateEvent(spec.task_id, spec.name, state, duration_ms, error))
        async with self._changed:
            self._changed.notify_all()

    async def _publish(self, body: TaskStateEvent | LifecycleEvent) -> None:
        header = TelemetryHeader(run_id=self.run_id, project_id=self.project, source=self.source)
        await self.connector.publish(self._topic, TelemetryMessage(header, body).to_dict())
        self.report.published += 1


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
        """Send what ``cascade-mqtt COMMAND`` sends, with the CLI's own code; returns when it was sent."""
        say(f"operator> cascade-mqtt {command}")
        report.commands.append(command)
        sent = time.monotonic()
        if constraint is None:
            await send_resume(connector, scope, ack_timeout=30, url=address)
        else:
            await send_constraint(connector, constraint, ack_timeout=30, url=address)
        return sent

    await engine.wait_until(lambda: engine.finished >= plan.pause_after)
    pause = make_constraint(scope, ConstraintType.PAUSE, ttl=plan.ttl)
    report.pause_sent_at = await send(f"pause {scope} --ttl {plan.ttl:g}", pause)
    report.pause_acked_at = time.monotonic()
    ack = _ms(report.pause_acked_at - report.pause_sent_at)
    say(f"operator: {describe_command(pause)}; broker acknowledged after {ack}")
    await engine.still.wait()
    await asyncio.sleep(plan.hold)  # demo pacing: leave the engine paused for a moment
    report.resume_sent_at = await send(f"resume {scope}", None)

    await engine.wait_until(lambda: engine.finished >= min(plan.cap_after, total))
    if engine.finished < total:
        cap = make_constraint(scope, ConstraintType.CONCURRENCY, {"limit": plan.cap}, ttl=plan.ttl)
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
        self.state = WatchState(hide_source=is_cli_source)
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
        shown = display_url(url)  # the password masked
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

    from cascade.connectors.mqtt._cli.live import render
    from cascade.connectors.mqtt._cli.watching import live_title
    from rich.live import Live

    title = live_title(transport.label, f"cascade/telemetry/+/{options.project}/+/events")

    def view() -> Any:
        return render(watcher.state, title=title, now=time.time())

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
    except CliError as exc:
        print(f"demo: error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
