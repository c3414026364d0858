"""The model behind ``cascade-mqtt watch``: decoding, counting, skipping malformed messages."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from cascade.connectors.mqtt.operator import (
    WatchModel,
    describe_constraint,
    format_event,
    format_event_json,
    telemetry_filter,
)
from cascade.connectors.protocol import (
    Constraint,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    UnknownEvent,
    constraint_topic,
    status_topic,
    telemetry_topic,
    topic_matches,
)

TS = "2024-05-01T12:00:00.000Z"


def telemetry(
    body: TelemetryBody, *, run: str = "r1", project: str = "etl", org: str = "local", source: str = "w1"
) -> tuple[str, dict[str, Any]]:
    header = TelemetryHeader(ts=TS, run_id=run, org_id=org, project_id=project, source=source)
    return telemetry_topic(org, project, run), TelemetryMessage(header, body).to_dict()


def task(
    task_id: str, state: TaskState, *, name: str = "extract", error: str = "", **kw: Any
) -> TaskStateEvent:
    return TaskStateEvent(task_id, name, state, error=error, **kw)


def feed(state: WatchModel, *messages: tuple[str, dict[str, Any]]) -> None:
    for topic, payload in messages:
        state.on_message(topic, payload)


def test_counts_the_latest_state_of_each_task_per_run() -> None:
    state = WatchModel()
    feed(
        state,
        telemetry(task("t1", TaskState.PENDING)),
        telemetry(task("t2", TaskState.PENDING)),
        telemetry(task("t1", TaskState.RUNNING)),
        telemetry(task("t1", TaskState.COMPLETED, duration_ms=12.0)),
        telemetry(task("t2", TaskState.RUNNING)),
        telemetry(task("x", TaskState.RUNNING), run="r2"),
    )
    r1 = state.runs[("local", "etl", "r1")]
    assert r1.counts() == {
        TaskState.PENDING: 0,
        TaskState.RUNNING: 1,
        TaskState.COMPLETED: 1,
        TaskState.FAILED: 0,
        TaskState.SKIPPED: 0,
        TaskState.BLOCKED: 0,
    }
    assert state.runs[("local", "etl", "r2")].counts()[TaskState.RUNNING] == 1
    assert state.totals()[TaskState.RUNNING] == 2
    assert state.messages == 6
    assert state.malformed == 0
    assert r1.events == 5
    assert r1.sources == {"w1"}


def test_engine_lifecycle_is_tracked() -> None:
    state = WatchModel()
    feed(state, telemetry(task("t1", TaskState.RUNNING)))
    run = state.runs[("local", "etl", "r1")]
    assert run.engine == "unknown"
    feed(state, telemetry(LifecycleEvent(LifecycleEventType.ENGINE_STARTED)))
    assert (run.engine, run.started_at) == ("running", TS)
    feed(state, telemetry(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED)))
    assert (run.engine, run.stopped_at) == ("stopped", TS)


def test_recent_failures_keep_their_error_text_and_are_bounded() -> None:
    state = WatchModel(max_failures=3)
    for i in range(5):
        feed(state, telemetry(task(f"t{i}", TaskState.FAILED, name="api_call", error=f"HTTP 50{i}")))
    assert [(f.task_id, f.error, f.task_name, f.run) for f in state.failures] == [
        ("t2", "HTTP 502", "api_call", "etl/r1"),
        ("t3", "HTTP 503", "api_call", "etl/r1"),
        ("t4", "HTTP 504", "api_call", "etl/r1"),
    ]


TS_UNIX = datetime.fromisoformat(TS).timestamp()


def test_presence_lines_show_how_old_the_announcement_is() -> None:
    now = [TS_UNIX]
    state = WatchModel(clock=lambda: now[0])

    def line(status: str, source: str, ts: str = TS) -> str:
        event = state.on_message(status_topic(source), {"status": status, "source": source, "ts": ts})
        assert event is not None
        return format_event(event)

    assert line("online", "w1") == f"{TS}  worker w1 online (0s)"
    now[0] += 2 * 3600 + 5 * 60 + 59.9  # rounded down: the age it has reached
    assert line("offline", "w2") == f"{TS}  worker w2 offline (2h 05m ago)"
    now[0] += 3 * 86400
    assert line("offline", "w3") == f"{TS}  worker w3 offline (3d 02h ago)"
    ahead = "2024-05-01T13:00:00+00:00"  # a worker whose clock is ahead of the watcher's
    now[0] = TS_UNIX
    assert line("online", "w4", ahead) == f"{ahead}  worker w4 online (0s)"


def test_workers_online_offline_and_cleared() -> None:
    now = [TS_UNIX + 7.9]
    state = WatchModel(clock=lambda: now[0])
    state.on_message(status_topic("w1"), StatusMessage("online", "w1", TS).to_dict())
    state.on_message(status_topic("w2"), StatusMessage("online", "w2", TS).to_dict())
    assert state.online() == ["w1", "w2"]
    event = state.on_message(status_topic("w1"), StatusMessage("offline", "w1", TS).to_dict())
    assert event is not None
    assert event.to_dict() == {
        "kind": "worker",
        "ts": TS,
        "source": "w1",
        "status": "offline",
        "age_s": 7.9,
    }
    now[0] += 3600
    assert state.workers["w1"].age_seconds(now[0]) == pytest.approx(3607.9)
    assert state.workers["w1"].describe(now[0]) == "offline (1h 00m ago)"
    assert state.workers["w2"].describe(now[0]) == "online (1h 00m)"
    assert state.online() == ["w2"]
    assert state.workers["w1"].status == "offline"
    assert state.on_message(status_topic("w1"), {}) is None
    assert "w1" not in state.workers
    assert state.malformed == 0


def test_constraints_follow_the_constraint_book() -> None:
    now = [1000.0]
    state = WatchModel(clock=lambda: now[0])
    pause = Constraint("c1", "global", ConstraintType.PAUSE, {}, expires_at=1060.0)
    event = state.on_message(constraint_topic("global"), pause.to_dict())
    assert event is not None
    assert event.kind == "constraint"
    assert event.fields["type"] == "pause"
    assert event.fields["expires_at"] == 1060.0
    assert [c.scope for c in state.constraints.active()] == ["global"]
    now[0] = 1060.0
    assert state.constraints.active() == []  # expired
    limit = Constraint("c2", "task:api", ConstraintType.CONCURRENCY, {"limit": 2})
    state.on_message(constraint_topic("task:api"), limit.to_dict())
    cleared = state.on_message(constraint_topic("task:api"), {})
    assert cleared is not None
    assert cleared.fields == {"scope": "task:api", "type": "cleared", "params": {}}
    assert state.constraints.active() == []


@pytest.mark.parametrize(
    ("topic", "payload", "problem"),
    [
        (telemetry_topic("local", "etl", "r1"), {"hello": "world"}, "v"),
        (
            telemetry_topic("local", "etl", "r1"),
            {**telemetry(task("t", TaskState.RUNNING))[1], "v": "2.0"},
            "version",
        ),
        (
            telemetry_topic("local", "etl", "r1"),
            {
                **telemetry(task("t", TaskState.RUNNING))[1],
                "body": {"type": "TaskStateEvent", "task_id": "t"},
            },
            "task_name",
        ),
        (
            telemetry_topic("local", "etl", "r1"),
            {
                **telemetry(task("t", TaskState.RUNNING))[1],
                "body": {**task("t", TaskState.RUNNING).to_dict(), "state": "DONE"},
            },
            "state",
        ),
        (status_topic("w1"), {"status": "sleeping", "source": "w1", "ts": TS}, "status"),
        (status_topic("w1"), {"status": "online", "source": "w1", "ts": "yesterday"}, "ts"),
        (
            constraint_topic("global"),
            {"id": "c", "scope": "global", "type": "pause", "expires_at": "soon"},
            "expires_at",
        ),
        (constraint_topic("global"), {"id": "c", "scope": "task:x", "type": "pause"}, "scope"),
        (
            constraint_topic("global"),
            {"id": "c", "scope": "global", "type": "concurrency", "params": {"limit": 0}},
            "limit",
        ),
    ],
)
def test_malformed_messages_are_skipped_and_counted(
    topic: str, payload: dict[str, Any], problem: str
) -> None:
    state = WatchModel()
    feed(state, telemetry(task("t0", TaskState.RUNNING)))
    assert state.on_message(topic, payload) is None
    assert state.malformed == 1
    assert problem in state.last_problem
    assert topic in state.last_problem
    assert state.messages == 1
    assert not state.workers
    assert not state.constraints.active()
    assert state.totals()[TaskState.RUNNING] == 1
    # and the next good message is still taken
    feed(state, telemetry(task("t1", TaskState.RUNNING)))
    assert state.totals()[TaskState.RUNNING] == 2


def test_unknown_and_resource_events_are_reported_not_refused() -> None:
    state = WatchModel()
    unknown = state.on_message(*telemetry(UnknownEvent("CheckpointEvent", {"n": 1})))
    resource = state.on_message(*telemetry(ResourceEvent("gpu", ResourceAction.ACQUIRE, 2)))
    assert unknown is not None
    assert unknown.kind == "unknown"
    assert unknown.fields["type"] == "CheckpointEvent"
    assert resource is not None
    assert resource.kind == "resource"
    assert resource.fields["current_usage"] == 2.0
    assert state.malformed == 0
    assert state.runs[("local", "etl", "r1")].events == 2


def test_plain_lines() -> None:
    state = WatchModel()

    def line(message: tuple[str, dict[str, Any]]) -> str:
        event = state.on_message(*message)
        assert event is not None
        return format_event(event)

    assert line(telemetry(task("t1", TaskState.RUNNING))) == f"{TS}  run etl/r1  task extract [t1] RUNNING"
    failed = task("t1", TaskState.FAILED, duration_ms=250.4, error="boom\n  at line 3")
    assert line(telemetry(failed)) == f"{TS}  run etl/r1  task extract [t1] FAILED 250 ms: boom at line 3"
    started = LifecycleEvent(LifecycleEventType.ENGINE_STARTED)
    assert line(telemetry(started, org="acme")) == f"{TS}  run acme/etl/r1  engine started (w1)"
    presence = (status_topic("w9"), StatusMessage("online", "w9", TS).to_dict())
    assert line(presence).startswith(f"{TS}  worker w9 online (")
    rate = Constraint("c", "task:api", ConstraintType.RATE_LIMIT, {"rate": "10/s"})
    assert line((constraint_topic("task:api"), rate.to_dict())).endswith("  constraint task:api rate 10/s")


def test_json_lines_are_one_object_each() -> None:
    state = WatchModel()
    event = state.on_message(*telemetry(task("t1", TaskState.FAILED, error="x")))
    assert event is not None
    text = format_event_json(event)
    assert "\n" not in text
    assert json.loads(text) == {
        "kind": "task",
        "ts": TS,
        "org_id": "local",
        "project_id": "etl",
        "run_id": "r1",
        "source": "w1",
        "task_id": "t1",
        "task_name": "extract",
        "state": "FAILED",
        "duration_ms": 0.0,
        "error": "x",
    }


def test_telemetry_filter_narrows_by_project_and_run() -> None:
    assert telemetry_filter() == "cascade/telemetry/+/+/+/events"
    narrowed = telemetry_filter("etl", "r1")
    assert topic_matches(narrowed, telemetry_topic("acme", "etl", "r1"))
    assert not topic_matches(narrowed, telemetry_topic("acme", "etl", "r2"))
    assert not topic_matches(telemetry_filter(project="etl"), telemetry_topic("acme", "web", "r1"))


def test_recent_runs_orders_by_last_event() -> None:
    state = WatchModel()
    header_old = TelemetryHeader(ts="2024-05-01T12:00:00.000Z", run_id="old", source="w")
    header_new = TelemetryHeader(ts="2024-05-01T12:00:05.000Z", run_id="new", source="w")
    body = task("t", TaskState.RUNNING)
    state.on_message(telemetry_topic("local", "default", "new"), TelemetryMessage(header_new, body).to_dict())
    state.on_message(telemetry_topic("local", "default", "old"), TelemetryMessage(header_old, body).to_dict())
    assert [r.run_id for r in state.recent_runs()] == ["new", "old"]
    assert [r.run_id for r in state.recent_runs(1)] == ["new"]


def test_describe_constraint() -> None:
    assert describe_constraint("pause", {}) == "pause"
    assert describe_constraint("concurrency", {"limit": 3}) == "concurrency 3"
    assert describe_constraint("rate_limit", {"rate": "5/m"}) == "rate 5/m"


def test_hidden_sources_are_ignored_not_counted() -> None:
    state = WatchModel(hide_source=lambda source: source.startswith("cli-"))
    assert (
        state.on_message(status_topic("cli-host"), StatusMessage("online", "cli-host", TS).to_dict()) is None
    )
    state.on_message(status_topic("w1"), StatusMessage("online", "w1", TS).to_dict())
    assert list(state.workers) == ["w1"]
    assert state.malformed == 0
    assert state.messages == 1


def test_plain_lines_cannot_carry_terminal_control_characters() -> None:
    state = WatchModel()
    nasty = task(
        "t\x1b[2J", TaskState.FAILED, name="x\rforged line\n", error="boom\x1b]0;title\x07 \u009b31m"
    )
    event = state.on_message(*telemetry(nasty))
    assert event is not None
    line = format_event(event)
    assert all(ch >= " " and not ("\x7f" <= ch <= "\x9f") for ch in line)
    assert "forged line" in line
    assert line.endswith(": boom\\x1b]0;title\\x07 \\x9b31m")
