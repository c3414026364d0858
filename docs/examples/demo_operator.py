"""The demo's operator side: a scripted operator and a watcher, with the public operator API.

- `operate` pauses the engine's project part-way, waits for it to hold still, resumes it, then caps
  its concurrency: what ``cascade-mqtt pause``, ``resume`` and ``limit`` do, with the same functions
  (``cascade.connectors.mqtt.operator``).
- `Watcher` builds the view of ``cascade-mqtt watch`` (a `WatchModel`) from its own connector.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cascade.connectors.mqtt.operator import (
    TASK_STATES,
    WatchModel,
    describe_command,
    format_event,
    is_operator_source,
    new_constraint,
    resume,
    send_constraint,
)
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    Connector,
    ConnectorError,
    Constraint,
    ConstraintType,
    TaskState,
)

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_engine import SimulatedEngine

FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


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
    """The view of ``cascade-mqtt watch`` (its `WatchModel`), fed by its own connector.

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


def _unix(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000.0:.1f} ms"
