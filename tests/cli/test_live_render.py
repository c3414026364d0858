"""The live table of ``cascade-mqtt watch`` (rich), rendered to plain text."""

from __future__ import annotations

import io
from datetime import datetime

from cascade.connectors.mqtt.operator import LinkChange, LinkState, LinkView, WatchModel, render_live
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
    now = datetime.fromisoformat("2024-05-01T12:00:00.000Z").timestamp() + 3600 + 75
    state = WatchModel(clock=lambda: now)
    state.on_message(
        status_topic("etl-worker-1"),
        StatusMessage("online", "etl-worker-1", "2024-05-01T12:00:00.000Z").to_dict(),
    )
    state.on_message(
        status_topic("etl-worker-0"),
        StatusMessage("offline", "etl-worker-0", "2024-04-30T10:30:00.000Z").to_dict(),
    )
    feed(state, LifecycleEvent(LifecycleEventType.ENGINE_STARTED), "2024-05-01T12:00:00.120Z")
    feed(state, TaskStateEvent("extract-1", "extract", TaskState.RUNNING), "2024-05-01T12:00:00.130Z")
    feed(
        state,
        TaskStateEvent("t-2", "api_call", TaskState.FAILED, 5.0, "[red]HTTP 503[/red]"),
        "2024-05-01T12:00:02.010Z",
    )
    limit = Constraint("c", "project:etl", ConstraintType.CONCURRENCY, {"limit": 4}, expires_at=now + 90)
    state.on_message(constraint_topic("project:etl"), limit.to_dict())
    state.on_message(telemetry_topic("local", "etl", "x"), {"junk": True})

    text = text_of(state, now=now)
    run_row = next(line for line in text.splitlines() if "etl/nightly-0501" in line and "running" in line)
    cells = [cell.strip() for cell in run_row.split("│")[1:-1]]
    assert cells[:7] == ["etl/nightly-0501", "running", "", "1", "", "1", ""]
    assert "12:00:02" in run_row
    assert "blkd" not in text  # no blocked task: no column
    assert "watch [bold]mqtt://x[/bold]" in text  # markup in titles and data stays literal
    assert "api_call [t-2]" in text
    assert "[red]HTTP 503[/red]" in text
    worker_row = next(line for line in text.splitlines() if "etl-worker-1" in line and "online" in line)
    assert [cell.strip() for cell in worker_row.split("│")[1:-1]] == [
        "etl-worker-1",
        "online (1h 01m)",
        "2024-05-01T12:00:00.000Z",
    ]
    stale_row = next(line for line in text.splitlines() if "etl-worker-0" in line)
    assert [cell.strip() for cell in stale_row.split("│")[1:-1]] == [
        "etl-worker-0",
        "offline (1d 02h ago)",  # a day and 2h 31m: a stale entry
        "2024-04-30T10:30:00.000Z",
    ]
    assert text.index("etl-worker-1") < text.index("etl-worker-0")  # online first
    assert "constraints in force" in text
    assert "concurrency 4" in text
    assert "1m 30s" in text
    assert "6 messages, 1 malformed skipped" in text


def test_blocked_column_appears_when_a_task_is_blocked() -> None:
    state = WatchModel()
    feed(state, TaskStateEvent("t", "load", TaskState.BLOCKED), "2024-05-01T12:00:00.000Z")
    assert "blkd" in text_of(state)


def test_the_watchers_own_connection_is_shown() -> None:
    # 1000.0 is 1970-01-01T00:16:40Z
    state = WatchModel()
    assert "connection:" not in text_of(state)  # never polled: nothing claimed
    state.link = LinkView(LinkState.CONNECTED, 900.0)
    assert "connection: connected" in text_of(state)
    assert "reconnect" not in text_of(state)
    state.link = LinkView(LinkState.RECONNECTING, 996.0, reconnects=1, outage_seconds=3.0)
    text = " ".join(text_of(state, now=1000.0).split())  # one line, however the console wraps
    assert "connection: RECONNECTING since 00:16:36 (4s); telemetry sent meanwhile is missed" in text
    assert "1 reconnect, telemetry missed for 7s" in text
    state.link = LinkView(LinkState.CONNECTED, 1000.0, reconnects=2, outage_seconds=7.0, dropped_inbound=5)
    text = " ".join(text_of(state, now=1001.0).split())
    assert "connection: connected" in text
    assert "2 reconnects, telemetry missed for 7s" in text
    assert "5 messages dropped (this watcher fell behind)" in text


def test_wire_text_in_the_table_is_escaped() -> None:
    state = WatchModel()
    feed(
        state,
        TaskStateEvent("t\u202e1", "x\u200by", TaskState.FAILED, error="e\ud800"),
        "2024-05-01T12:00:00Z",
    )
    text = text_of(state)
    assert "x\\u200by [t\\u202e1]" in text
    assert "e\\ud800" in text
    assert not any(ch in text for ch in "\u202e\u200b\ud800")


def test_runs_that_lived_through_an_outage_are_marked() -> None:
    state = WatchModel()
    feed(state, LifecycleEvent(LifecycleEventType.ENGINE_STARTED), "2024-05-01T12:00:00.000Z", run="live")
    feed(state, LifecycleEvent(LifecycleEventType.ENGINE_STOPPED), "2024-05-01T12:00:00.000Z", run="done")
    state.on_link(LinkChange(LinkView(LinkState.RECONNECTING, 1000.0)))
    assert [(r.run_id, r.through_outage) for r in state.runs.values()] == [("live", True), ("done", False)]
    text = text_of(state)
    assert "etl/live (gap)" in text
    assert "etl/done (gap)" not in text
