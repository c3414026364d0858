"""The live table of ``cascade-mqtt watch`` (rich), rendered to plain text."""

from __future__ import annotations

import io

from cascade.connectors.mqtt.operator import WatchModel, render_live
from cascade.connectors.protocol import (
    Constraint,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    constraint_topic,
    status_topic,
    telemetry_topic,
)
from rich.console import Console


def text_of(state: WatchModel, now: float = 1000.0) -> str:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None, force_terminal=False)
    console.print(render_live(state, title="watch [bold]mqtt://x[/bold]", now=now))
    return out.getvalue()


def feed(state: WatchModel, body: TelemetryBody, ts: str, run: str = "nightly-0501") -> None:
    header = TelemetryHeader(ts=ts, run_id=run, project_id="etl", source="etl-worker-1")
    state.on_message(telemetry_topic("local", "etl", run), TelemetryMessage(header, body).to_dict())


def test_empty_view_waits_for_telemetry() -> None:
    text = text_of(WatchModel())
    assert "(waiting for telemetry)" in text
    assert "0 messages" in text


def test_runs_workers_constraints_and_failures_are_shown_literally() -> None:
    state = WatchModel(clock=lambda: 1000.0)
    state.on_message(
        status_topic("etl-worker-1"),
        StatusMessage("online", "etl-worker-1", "2024-05-01T12:00:00.000Z").to_dict(),
    )
    feed(state, LifecycleEvent(LifecycleEventType.ENGINE_STARTED), "2024-05-01T12:00:00.120Z")
    feed(state, TaskStateEvent("extract-1", "extract", TaskState.RUNNING), "2024-05-01T12:00:00.130Z")
    feed(
        state,
        TaskStateEvent("t-2", "api_call", TaskState.FAILED, 5.0, "[red]HTTP 503[/red]"),
        "2024-05-01T12:00:02.010Z",
    )
    limit = Constraint("c", "project:etl", ConstraintType.CONCURRENCY, {"limit": 4}, expires_at=1090.0)
    state.on_message(constraint_topic("project:etl"), limit.to_dict())
    state.on_message(telemetry_topic("local", "etl", "x"), {"junk": True})

    text = text_of(state)
    run_row = next(line for line in text.splitlines() if "etl/nightly-0501" in line and "running" in line)
    cells = [cell.strip() for cell in run_row.split("│")[1:-1]]
    assert cells[:7] == ["etl/nightly-0501", "running", "", "1", "", "1", ""]
    assert "12:00:02" in run_row
    assert "blkd" not in text  # no blocked task: no column
    assert "watch [bold]mqtt://x[/bold]" in text  # markup in titles and data stays literal
    assert "api_call [t-2]" in text
    assert "[red]HTTP 503[/red]" in text
    assert "etl-worker-1" in text
    assert "online" in text
    assert "constraints in force" in text
    assert "concurrency 4" in text
    assert "1m 30s" in text
    assert "5 messages, 1 malformed skipped" in text


def test_blocked_column_appears_when_a_task_is_blocked() -> None:
    state = WatchModel()
    feed(state, TaskStateEvent("t", "load", TaskState.BLOCKED), "2024-05-01T12:00:00.000Z")
    assert "blkd" in text_of(state)
