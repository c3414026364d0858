"""The model behind ``cascade-mqtt watch``: what the operator sees, fed one message at a time.

`WatchModel` consumes telemetry (`TELEMETRY_FILTER`), presence (`STATUS_FILTER`) and constraint
(`CONSTRAINTS_FILTER`) messages, decodes them with `TelemetryMessage.from_dict` /
`StatusMessage.from_dict` / `ConstraintBook.apply`, and keeps: every run with its tasks' current states
and engine lifecycle, the most recent failures with their error text, the workers with their presence,
and the constraints in force. A message that does not decode is skipped and counted in
`WatchModel.malformed`. Each accepted message also yields a `WatchEvent`, which the plain and JSON
outputs print as one line.

Pure synchronous state: no I/O; one injectable clock, for the `ConstraintBook`'s expiry and the
age of each presence event (``age_s``: seconds since the worker stamped it).
"""

from __future__ import annotations

__all__ = [
    "WatchModel",
    "WatchEvent",
    "RunView",
    "FailureView",
    "WorkerView",
    "EventKind",
    "telemetry_filter",
    "format_event",
    "describe_constraint",
    "describe_link_change",
    "format_event_json",
]

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    ConnectorError,
    ConstraintBook,
    LifecycleEvent,
    LifecycleEventType,
    ResourceEvent,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryMessage,
    UnknownEvent,
    scope_from_topic,
    source_from_status_topic,
    topic_matches,
)

from ._link import LinkChange, LinkState, LinkView
from ._text import _with_age, age_seconds, describe_presence, format_seconds, safe_json, safe_text

EventKind = Literal["task", "engine", "resource", "unknown", "worker", "constraint", "connection"]
EngineState = Literal["running", "stopped", "unknown"]

TASK_STATES: tuple[TaskState, ...] = tuple(TaskState)
"""Every task state, in the order the views show them."""


def telemetry_filter(project: str | None = None, run: str | None = None) -> str:
    """The telemetry subscription for ``watch [--project P] [--run R]`` (names must be valid levels)."""
    return f"cascade/telemetry/+/{project or '+'}/{run or '+'}/events"


@dataclass(slots=True)
class RunView:
    """One run: its tasks' latest states and whether its engine is running."""

    org_id: str
    project_id: str
    run_id: str
    sources: set[str] = field(default_factory=set)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    engine: EngineState = "unknown"
    started_at: str | None = None
    stopped_at: str | None = None
    last_ts: str = ""
    events: int = 0
    through_outage: bool = False
    """The watcher lost its connection while this run's engine was running: events sent during
    the gap were missed, so the counts may lag until its tasks report again."""

    @property
    def name(self) -> str:
        """``project/run``, or ``org/project/run`` when the org is not the default ``local``."""
        base = f"{self.project_id}/{self.run_id}"
        return base if self.org_id == "local" else f"{self.org_id}/{base}"

    def counts(self) -> dict[TaskState, int]:
        """Task state -> number of tasks whose latest state it is (every state present, maybe 0)."""
        counted = Counter(self.tasks.values())
        return {state: counted.get(state, 0) for state in TASK_STATES}


@dataclass(frozen=True, slots=True)
class FailureView:
    """A task that failed, with its error text."""

    ts: str
    run: str
    task_id: str
    task_name: str
    error: str


@dataclass(slots=True)
class WorkerView:
    """A worker's presence as last announced (`ts`: when, ISO 8601 UTC)."""

    source: str
    status: Literal["online", "offline"]
    ts: str

    def age_seconds(self, now: float) -> float:
        """Seconds from `ts` to `now` (Unix seconds): online for that long, or offline that long ago."""
        return age_seconds(self.ts, now)

    def describe(self, now: float) -> str:
        """``online (3s)`` or ``offline (2h 05m ago)`` at `now` (Unix seconds)."""
        return describe_presence(self.status, self.ts, now)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One accepted message, flattened for the one-line outputs (see `to_dict`)."""

    kind: EventKind
    ts: str
    fields: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "ts", ...fields}``: what ``watch --json`` prints, one object per line."""
        return {"kind": self.kind, "ts": self.ts, **self.fields}


class WatchModel:
    """Runs, recent failures and workers, built from telemetry and presence messages.

    `max_failures` bounds the failures kept (the most recent win); `clock` (Unix seconds) decides
    which constraints have expired and how old a presence event is (``age_s``); presence of a
    source for which `hide_source` is true is ignored (the CLI's own connections).
    """

    def __init__(
        self,
        max_failures: int = 10,
        clock: Callable[[], float] = time.time,
        hide_source: Callable[[str], bool] | None = None,
    ) -> None:
        self._clock = clock
        self._hide_source = hide_source
        self.constraints = ConstraintBook(clock)
        """The constraints in force (retained on the broker), for the live view."""
        self.runs: dict[tuple[str, str, str], RunView] = {}
        self.failures: deque[FailureView] = deque(maxlen=max_failures)
        self.workers: dict[str, WorkerView] = {}
        self.messages = 0
        """Messages accepted (decoded and applied)."""
        self.malformed = 0
        """Messages skipped because they did not decode."""
        self.last_problem = ""
        """Why the last malformed message was skipped."""
        self.link: LinkView | None = None
        """The watcher's own connection as last reported to `on_link` (None: never reported)."""

    # -- feeding -------------------------------------------------------------------------------------

    def on_message(self, topic: str, payload: Mapping[str, Any]) -> WatchEvent | None:
        """Apply a message from either filter; route by topic. Returns its event, or None if skipped."""
        if topic_matches(STATUS_FILTER, topic):
            return self.on_status(topic, payload)
        if topic_matches(CONSTRAINTS_FILTER, topic):
            return self.on_constraint(topic, payload)
        return self.on_telemetry(topic, payload)

    def on_telemetry(self, topic: str, payload: Mapping[str, Any]) -> WatchEvent | None:
        """Apply one telemetry message; a message that does not decode is counted and skipped."""
        try:
            message = TelemetryMessage.from_dict(payload)
        except ConnectorError as exc:
            self._skip(topic, exc)
            return None
        self.messages += 1
        header, body = message.header, message.body
        key = (header.org_id, header.project_id, header.run_id)
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = RunView(header.org_id, header.project_id, header.run_id)
        run.sources.add(header.source)
        run.last_ts = header.ts
        run.events += 1
        common: dict[str, Any] = {
            "org_id": header.org_id,
            "project_id": header.project_id,
            "run_id": header.run_id,
            "source": header.source,
        }
        if isinstance(body, TaskStateEvent):
            run.tasks[body.task_id] = body.state
            if body.state is TaskState.FAILED:
                self.failures.append(
                    FailureView(header.ts, run.name, body.task_id, body.task_name, body.error)
                )
            fields = {
                **common,
                "task_id": body.task_id,
                "task_name": body.task_name,
                "state": body.state.value,
                "duration_ms": body.duration_ms,
                "error": body.error,
            }
            return WatchEvent("task", header.ts, fields)
        if isinstance(body, LifecycleEvent):
            if body.event is LifecycleEventType.ENGINE_STARTED:
                run.engine, run.started_at = "running", header.ts
            else:
                run.engine, run.stopped_at = "stopped", header.ts
            return WatchEvent("engine", header.ts, {**common, "event": body.event.value})
        if isinstance(body, ResourceEvent):
            fields = {
                **common,
                "resource_name": body.resource_name,
                "action": body.action.value,
                "current_usage": body.current_usage,
            }
            return WatchEvent("resource", header.ts, fields)
        assert isinstance(body, UnknownEvent)
        return WatchEvent("unknown", header.ts, {**common, "type": body.type})

    def on_status(self, topic: str, payload: Mapping[str, Any]) -> WatchEvent | None:
        """Apply one presence message; ``{}`` (cleared) forgets the worker and yields None."""
        try:
            source = source_from_status_topic(topic)
            if self._hide_source is not None and self._hide_source(source):
                return None
            if not payload:
                self.workers.pop(source, None)
                return None
            status = StatusMessage.from_dict(payload)
        except ConnectorError as exc:
            self._skip(topic, exc)
            return None
        self.messages += 1
        worker = self.workers[source] = WorkerView(source, status.status, status.ts)
        fields = {
            "source": source,
            "status": status.status,
            "age_s": round(worker.age_seconds(self._clock()), 3),
        }
        return WatchEvent("worker", status.ts, fields)

    def on_constraint(self, topic: str, payload: Mapping[str, Any]) -> WatchEvent | None:
        """Apply one constraint message (``{}`` clears its scope) through the `ConstraintBook`."""
        try:
            constraint = self.constraints.apply(topic, payload)
            scope = constraint.scope if constraint is not None else scope_from_topic(topic)
        except ConnectorError as exc:
            self._skip(topic, exc)
            return None
        self.messages += 1
        ts = _iso(self._clock())
        if constraint is None:
            return WatchEvent("constraint", ts, {"scope": scope, "type": "cleared", "params": {}})
        fields = {
            "scope": constraint.scope,
            "type": constraint.type.value,
            "params": dict(constraint.params),
            "expires_at": constraint.expires_at,
            "id": constraint.id,
        }
        return WatchEvent("constraint", ts, fields)

    def on_link(self, change: LinkChange) -> WatchEvent:
        """Record a change of the watcher's own connection (from `LinkMonitor.poll`).

        A loss marks every run whose engine has not stopped as `RunView.through_outage`.
        """
        view = self.link = change.view
        if view.state is LinkState.RECONNECTING or view.reconnects:
            for run in self.runs.values():
                if run.engine != "stopped":
                    run.through_outage = True
        fields: dict[str, Any] = {
            "status": view.state.value,
            "reconnects": view.reconnects,
            "gap_s": None if change.gap_seconds is None else round(change.gap_seconds, 3),
            "outage_s": round(view.outage_seconds, 3),
            "dropped_inbound": view.dropped_inbound,
        }
        return WatchEvent("connection", _iso(view.since), fields)

    def _skip(self, topic: str, exc: ConnectorError) -> None:
        self.malformed += 1
        self.last_problem = f"{topic}: {exc}"

    # -- reading -------------------------------------------------------------------------------------

    def totals(self) -> dict[TaskState, int]:
        """Task state -> count over every run."""
        total: Counter[TaskState] = Counter()
        for run in self.runs.values():
            total.update(run.tasks.values())
        return {state: total.get(state, 0) for state in TASK_STATES}

    def recent_runs(self, limit: int = 20) -> list[RunView]:
        """The runs with the most recent events first, at most `limit`."""
        return sorted(self.runs.values(), key=lambda r: r.last_ts, reverse=True)[:limit]

    def online(self) -> list[str]:
        """The sources currently online, sorted."""
        return sorted(w.source for w in self.workers.values() if w.status == "online")


def format_event(event: WatchEvent) -> str:
    """One human-readable line for ``watch --plain``.

    Text from the wire is made safe for a terminal (`safe_text`): control, bidi and zero-width
    characters and lone surrogates are shown escaped, so a message cannot forge lines, reorder text or
    drive the terminal, and every terminal encoding can write the line.
    """
    return safe_text(_format_event(event))


def _format_event(event: WatchEvent) -> str:
    f = event.fields
    if event.kind == "connection":
        return f"{event.ts}  {describe_link_change(f)}"
    if event.kind == "worker":
        return f"{event.ts}  worker {f['source']} {_with_age(f['status'], f['age_s'])}"
    if event.kind == "constraint":
        return f"{event.ts}  constraint {f['scope']} {describe_constraint(f['type'], f['params'])}"
    run = f"{f['project_id']}/{f['run_id']}"
    if f["org_id"] != "local":
        run = f"{f['org_id']}/{run}"
    prefix = f"{event.ts}  run {run}"
    if event.kind == "task":
        line = f"{prefix}  task {f['task_name']} [{f['task_id']}] {f['state']}"
        if f["state"] in ("COMPLETED", "FAILED") or f["duration_ms"]:
            line += f" {f['duration_ms']:.0f} ms"
        if f["error"]:
            line += f": {_one_line(f['error'])}"
        return line
    if event.kind == "engine":
        word = "started" if f["event"] == LifecycleEventType.ENGINE_STARTED.value else "stopped"
        return f"{prefix}  engine {word} ({f['source']})"
    if event.kind == "resource":
        return f"{prefix}  resource {f['resource_name']} {f['action']} (usage {f['current_usage']:g})"
    return f"{prefix}  event of unknown type {f['type']!r} ({f['source']})"


def describe_constraint(ctype: str, params: Mapping[str, Any]) -> str:
    """``pause``, ``concurrency 3``, ``rate 10/s`` or ``cleared`` (what a constraint does)."""
    if ctype == "concurrency":
        return f"concurrency {params.get('limit')}"
    if ctype == "rate_limit":
        return f"rate {params.get('rate')}"
    return ctype


def describe_link_change(fields: Mapping[str, Any]) -> str:
    """The line for a ``connection`` event (see `WatchModel.on_link`)."""
    if fields["status"] == LinkState.RECONNECTING.value:
        return "connection to the broker lost; reconnecting (telemetry sent meanwhile is missed)"
    gap = fields["gap_s"]
    after = f" after {format_seconds(gap)}" if gap is not None else ""
    return (
        f"connection to the broker restored{after} (reconnect {fields['reconnects']}): telemetry sent "
        "during the gap was missed; presence and constraints are read again"
    )


def format_event_json(event: WatchEvent, *, ascii_only: bool = False) -> str:
    """One JSON object (compact, one line) for ``watch --json``; text no terminal may see is written
    as JSON escapes (`safe_json`), and every non-ASCII character too with `ascii_only`.
    """
    if ascii_only:
        return json.dumps(event.to_dict(), separators=(",", ":"))
    return safe_json(event.to_dict(), separators=(",", ":"))


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
