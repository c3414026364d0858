"""A readable model of a Cascade engine, as the demo runs it (``docs/examples/demo.py``).

An engine needs three things from its `Connector`, and this file shows each in a few lines:

1. **Telemetry**: every task state change and the engine's start and stop are published (qos 0, the
   hot path: `publish` only queues) on the run's telemetry topic (`SimulatedEngine._publish`).
2. **Constraints**: the operators' retained constraints arrive on `CONSTRAINTS_FILTER` into a
   `ConstraintBook`. `subscribe` returns after the retained ones arrived, so a pause already in force
   holds the very first task (`SimulatedEngine.run`).
3. **Admission**: before a task starts, `Admission` asks whether every covering scope allows it
   (not paused, room in each concurrency limit, each rate limit allows a start now).

The workflow it runs is simulated (``demo_workflow.py``): each task sleeps for its duration and
then completes or fails; the tasks downstream of a failure are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    Connector,
    ConnectorError,
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

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_workflow import TaskSpec

FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


class Admission:
    """May a task start now, given the constraints in force and what runs? (One small class, so an
    engine can swap it for a shared helper.) Every covering scope is its own pool; the strictest wins.
    """

    def __init__(
        self, book: ConstraintBook, project: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.book = book
        self.project = project
        self._clock = clock
        self._last_start: dict[str, float] = {}

    def delay(self, task: str, running: Iterable[str]) -> float | None:
        """None: it may not start (paused, or a concurrency limit is full); else the seconds until
        every rate limit allows it (0: now). `running` holds the names of the running tasks.
        """
        if self.book.is_paused(task, self.project):
            return None
        names = list(running)
        for scope, limit in self.book.concurrency_limits(task, self.project).items():
            inside = sum(1 for name in names if scope in ConstraintBook.covering_scopes(name, self.project))
            if inside >= limit:
                return None
        now, wait = self._clock(), 0.0
        for scope, per_second in self.book.rate_limits(task, self.project).items():
            last = self._last_start.get(scope)
            if last is not None:
                wait = max(wait, last + 1.0 / per_second - now)
        return wait

    def started(self, task: str) -> None:
        """Record a start (for the rate limits of every covering scope)."""
        now = self._clock()
        for scope in ConstraintBook.covering_scopes(task, self.project):
            self._last_start[scope] = now


@dataclass(slots=True)
class PauseEpisode:
    """One pause holding every task, as the engine lived it; times are `time.monotonic()` seconds."""

    scope: str
    observed_at: float
    running_when_observed: int
    still_at: float | None = None
    resumed_at: float | None = None
    started_while_paused: int = 0


@dataclass(slots=True)
class EngineReport:
    """What the engine did: final states, starts, pauses, and how a concurrency cap was kept."""

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
        return {state.value: counted[state] for state in TaskState}


class SimulatedEngine:
    """Runs `workflow` against a connected `connector` (any connector), obeying the constraints.

    `max_workers` is the engine's own concurrency; `notify` receives one line per notable change.
    `run` neither connects nor disconnects the connector.
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
        self.connector, self.workflow, self.project = connector, list(workflow), project
        self.run_id, self.source, self.max_workers, self.notify = run_id, source, max_workers, notify
        self.book = ConstraintBook()
        self.admission = Admission(self.book, project)
        self.report = EngineReport()
        self.running: dict[str, TaskSpec] = {}
        """The tasks running now, by id."""
        self.still = asyncio.Event()
        """Set while a pause holds every task and none is running (cleared on resume)."""
        self._names = sorted({spec.name for spec in self.workflow})
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._topic = telemetry_topic("local", project, run_id)

    @property
    def paused(self) -> bool:
        """Whether the current pause episode (a pause holding every task) is still going."""
        return bool(self.report.pauses) and self.report.pauses[-1].resumed_at is None

    @property
    def finished(self) -> int:
        """Tasks in a final state (COMPLETED, FAILED or SKIPPED)."""
        return sum(1 for state in self.report.states.values() if state in FINAL)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once `condition()` holds (checked after every task state change)."""
        async with self._changed:
            await self._changed.wait_for(condition)

    async def run(self) -> EngineReport:
        """Run the workflow to the end and return the report (blocks until every task is final)."""
        handle = await self.connector.subscribe(CONSTRAINTS_FILTER, self._on_constraint)
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._publish(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))
            for spec in self.workflow:
                await self._set_state(spec, TaskState.PENDING)
            while self.finished < len(self.workflow):
                self._wake.clear()
                self._track_pause()  # a pause may have expired
                delay = await self._start_ready(tasks)
                self._track_pause()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            await self._publish(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED))
        finally:
            for task in tasks:
                task.cancel()
            await handle.unsubscribe()
        return self.report

    async def _start_ready(self, tasks: list[asyncio.Task[None]]) -> float | None:
        """Start every task admitted now; return the seconds until a rate limit or expiry may admit one."""
        expiry = self.book.next_expiry()
        wait = None if expiry is None else max(0.0, expiry - time.time())
        for spec in self.workflow:
            if self.report.states[spec.task_id] is not TaskState.PENDING:
                continue
            upstream = self.report.states[spec.depends_on] if spec.depends_on else TaskState.COMPLETED
            if upstream in (TaskState.FAILED, TaskState.SKIPPED):
                await self._set_state(spec, TaskState.SKIPPED)
                continue
            if upstream is not TaskState.COMPLETED or len(self.running) >= self.max_workers:
                continue
            delay = self.admission.delay(spec.name, (s.name for s in self.running.values()))
            if delay is not None and delay > 0:
                wait = delay if wait is None else min(wait, delay)
            elif delay == 0:
                tasks.append(asyncio.create_task(self._execute(spec), name=spec.task_id))
                await self._started(spec)
        return wait

    async def _started(self, spec: TaskSpec) -> None:
        self.admission.started(spec.name)
        self.running[spec.task_id] = spec
        report, now = self.report, time.monotonic()
        report.starts.append((now, spec.task_id))
        report.max_running = max(report.max_running, len(self.running))
        if report.cap_observed_at is not None:
            report.max_running_after_cap = max(report.max_running_after_cap, len(self.running))
        if self.paused:
            report.pauses[-1].started_while_paused += 1
        await self._set_state(spec, TaskState.RUNNING)

    async def _execute(self, spec: TaskSpec) -> None:
        started = time.monotonic()
        await asyncio.sleep(spec.duration)  # the simulated work
        del self.running[spec.task_id]
        duration_ms = round((time.monotonic() - started) * 1000.0, 1)
        state = TaskState.FAILED if spec.fails else TaskState.COMPLETED
        await self._set_state(spec, state, duration_ms, spec.error)
        self._wake.set()

    async def _on_constraint(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            constraint = self.book.apply(topic, payload)
        except ConnectorError as exc:  # another tool's junk: skip it, keep running
            self.notify(f"engine: ignored an unreadable constraint ({exc})")
            return
        limit = self.book.effective_concurrency(self._names[0], self.project) if self._names else None
        if constraint is not None and limit is not None and limit != self.report.cap:
            self.report.cap, self.report.cap_observed_at = limit, time.monotonic()
            self.report.max_running_after_cap = 0
            self.notify(f"engine: concurrency capped at {limit} ({len(self.running)} running now)")
        self._track_pause()
        self._wake.set()

    def _track_pause(self) -> None:
        """Open, close or settle the pause episode (a pause arrived, was cleared, expired, or drained)."""
        held = bool(self._names) and all(self.book.is_paused(name, self.project) for name in self._names)
        now = time.monotonic()
        if held and not self.paused:
            scope = next(
                c.scope
                for c in self.book.applicable(self._names[0], self.project)
                if c.type is ConstraintType.PAUSE
            )
            self.report.pauses.append(PauseEpisode(scope, now, len(self.running)))
            self.notify(f"engine: paused by {scope}; {len(self.running)} running task(s) may finish")
        elif not held and self.paused:
            self.report.pauses[-1].resumed_at = now
            self.still.clear()
            self.notify("engine: resumed")
        if self.paused and not self.running and not self.still.is_set():
            episode = self.report.pauses[-1]
            episode.still_at = now
            self.still.set()
            self.notify(f"engine: holding still ({episode.running_when_observed} running task(s) drained)")

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
