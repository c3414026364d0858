"""A readable model of a Cascade engine, as the demo runs it (``docs/examples/demo.py``).

An engine needs three things from its `Connector`, and this file shows each in a few lines:

1. **Telemetry**: every task state change and the engine's start and stop are published (qos 0, the
   hot path: `publish` only queues) on the run's telemetry topic (`SimulatedEngine._publish`).
2. **Constraints**: the operators' retained constraints arrive on `CONSTRAINTS_FILTER` into a
   `ConstraintBook`. `subscribe` returns after the retained ones arrived, so a pause already in force
   holds the very first task (`SimulatedEngine.run`).
3. **Admission**: before a task starts, `ConstraintBook.admit` says whether every covering scope
   allows it (not paused, room in each concurrency limit, each rate limit allows a start now) and,
   if not, how long to wait before asking again; `started` and `finished` keep the book's count of
   what runs (`SimulatedEngine._start_ready`).

The workflow it runs is simulated (``demo_workflow.py``): each task sleeps for its duration and
then completes or fails; the tasks downstream of a failure are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
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
    RunningTask,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    telemetry_topic,
)

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_workflow import TaskSpec

FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


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
        """The constraints in force and the tasks running, as admission counts them."""
        self.report = EngineReport()
        self.running: dict[str, RunningTask] = {}
        """The tasks running now, by id (each as `ConstraintBook.started` recorded it)."""
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
            admission = self.book.admit(spec.name, self.project)
            if admission.allowed:
                tasks.append(asyncio.create_task(self._execute(spec), name=spec.task_id))
                await self._started(spec)
            elif admission.wait_s is not None:  # a rate limit's next slot, or an expiry
                wait = admission.wait_s if wait is None else min(wait, admission.wait_s)
        return wait

    async def _started(self, spec: TaskSpec) -> None:
        self.running[spec.task_id] = self.book.started(spec.name, self.project)
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
        self.book.finished(self.running.pop(spec.task_id))
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
