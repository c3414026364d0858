"""Schemas: to_dict/from_dict, defaults, and a SchemaError naming the field for every invalid field."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import pytest
from cascade.connectors.protocol import (
    SCHEMA_VERSION,
    ConnectorError,
    Constraint,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    SchemaError,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    UnknownEvent,
    parse_rate,
    utc_now_iso,
)

TS = "2025-01-02T03:04:05.678Z"

HEADER_WIRE: dict[str, Any] = {
    "v": "1.0",
    "ts": TS,
    "run_id": "run-1",
    "org_id": "acme",
    "project_id": "etl",
    "source": "worker-1",
}
TASK_BODY: dict[str, Any] = {
    "type": "TaskStateEvent",
    "task_id": "t-1",
    "task_name": "extract",
    "state": "FAILED",
    "duration_ms": 12.5,
    "error": "boom",
    "metadata": {"attempt": 2, "tags": ["a"]},
}
LIFECYCLE_BODY: dict[str, Any] = {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
RESOURCE_BODY: dict[str, Any] = {
    "type": "ResourceEvent",
    "resource_name": "db",
    "action": "ACQUIRE",
    "current_usage": 3,
}
CONSTRAINT_WIRE: dict[str, Any] = {
    "id": "c-1",
    "scope": "task:api_call",
    "type": "concurrency",
    "params": {"limit": 2},
    "expires_at": 1_700_000_000.5,
}
STATUS_WIRE: dict[str, Any] = {"status": "online", "source": "worker-1", "ts": TS}


def message_wire(body: dict[str, Any]) -> dict[str, Any]:
    return {**HEADER_WIRE, "body": body}


def _is_utc_iso(text: str) -> bool:
    parsed = datetime.fromisoformat(text)
    offset = parsed.utcoffset()
    return offset is not None and offset.total_seconds() == 0


# --- helpers -----------------------------------------------------------------------------------------


def test_utc_now_iso_is_utc_with_z_and_milliseconds() -> None:
    now = utc_now_iso()
    assert now.endswith("Z")
    assert _is_utc_iso(now)
    assert len(now.split(".")[1]) == len("123Z")


def test_schema_error_attributes() -> None:
    error = SchemaError("body.state", "must be one of ...")
    assert error.field == "body.state"
    assert error.problem == "must be one of ..."
    assert str(error) == "body.state: must be one of ..."
    assert isinstance(error, ConnectorError)
    assert isinstance(error, ValueError)


# --- TelemetryHeader ---------------------------------------------------------------------------------


def test_header_defaults() -> None:
    header = TelemetryHeader(run_id="r", source="s")
    assert header.v == SCHEMA_VERSION == "1.0"
    assert header.org_id == "local"
    assert header.project_id == "default"
    assert _is_utc_iso(header.ts)


def test_header_round_trip() -> None:
    header = TelemetryHeader.from_dict(HEADER_WIRE)
    assert header.to_dict() == HEADER_WIRE
    assert TelemetryHeader.from_dict(header.to_dict()) == header


def test_header_optional_fields_default_when_absent() -> None:
    wire = {k: v for k, v in HEADER_WIRE.items() if k not in ("org_id", "project_id")}
    header = TelemetryHeader.from_dict(wire)
    assert (header.org_id, header.project_id) == ("local", "default")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.99", "1", "1.0.3"])
def test_header_accepts_any_minor_version(version: str) -> None:
    header = TelemetryHeader.from_dict({**HEADER_WIRE, "v": version})
    assert header.v == version
    assert header.to_dict()["v"] == version


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.0", "11", "v1.0", "2"])
def test_header_refuses_another_major_version(version: str) -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryHeader.from_dict({**HEADER_WIRE, "v": version})
    assert info.value.field == "v"
    assert "unsupported schema version" in info.value.problem
    with pytest.raises(SchemaError):
        TelemetryHeader(v=version, run_id="r", source="s")


@pytest.mark.parametrize(
    "ts",
    [
        "2025-01-02T03:04:05Z",
        "2025-01-02T03:04:05.678Z",
        "2025-01-02T03:04:05+00:00",
        "2025-01-02T03:04:05.123456+00:00",
    ],
)
def test_header_accepts_utc_timestamps(ts: str) -> None:
    assert TelemetryHeader.from_dict({**HEADER_WIRE, "ts": ts}).ts == ts


@pytest.mark.parametrize(
    "ts",
    [
        "2025-01-02T03:04:05",  # naive
        "2025-01-02",  # date only, naive
        "2025-01-02T03:04:05+01:00",  # not UTC
        "2025-01-02T03:04:05-05:00",
        "yesterday",
        "2025-13-02T03:04:05Z",
        "",
        5,
        None,
        1_700_000_000.0,
    ],
)
def test_header_refuses_bad_timestamps(ts: Any) -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryHeader.from_dict({**HEADER_WIRE, "ts": ts})
    assert info.value.field == "ts"
    with pytest.raises(SchemaError):
        TelemetryHeader(ts=ts, run_id="r", source="s")


@pytest.mark.parametrize("name", ["v", "ts", "run_id", "source"])
def test_header_required_fields(name: str) -> None:
    wire = {k: v for k, v in HEADER_WIRE.items() if k != name}
    with pytest.raises(SchemaError) as info:
        TelemetryHeader.from_dict(wire)
    assert info.value.field == name
    assert info.value.problem == "is missing"


@pytest.mark.parametrize("name", ["v", "ts", "run_id", "org_id", "project_id", "source"])
@pytest.mark.parametrize("bad", ["", None, 1, ["x"], {"x": 1}, True])
def test_header_invalid_field_names_the_field(name: str, bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryHeader.from_dict({**HEADER_WIRE, name: bad})
    assert info.value.field == name
    kwargs = {k: v for k, v in HEADER_WIRE.items()}
    kwargs[name] = bad
    with pytest.raises(SchemaError) as info:
        TelemetryHeader(**kwargs)
    assert info.value.field == name


def test_header_from_non_mapping() -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryHeader.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert info.value.field == "header"


# --- TaskStateEvent ----------------------------------------------------------------------------------


def test_task_state_event_defaults_and_to_dict() -> None:
    event = TaskStateEvent(task_id="t", task_name="n", state=TaskState.RUNNING)
    assert event.duration_ms == 0.0
    assert event.error == ""
    assert event.metadata == {}
    assert event.to_dict() == {
        "type": "TaskStateEvent",
        "task_id": "t",
        "task_name": "n",
        "state": "RUNNING",
        "duration_ms": 0.0,
        "error": "",
        "metadata": {},
    }


def test_task_state_event_round_trip() -> None:
    event = TaskStateEvent.from_dict(TASK_BODY)
    assert event.state is TaskState.FAILED
    assert event.to_dict() == TASK_BODY
    assert TaskStateEvent.from_dict(event.to_dict()) == event


def test_task_state_event_optional_fields_default_when_absent() -> None:
    event = TaskStateEvent.from_dict({"task_id": "t", "task_name": "n", "state": "PENDING"})
    assert (event.duration_ms, event.error, event.metadata) == (0.0, "", {})


def test_task_state_event_converts_strings_and_ints() -> None:
    event = TaskStateEvent("t", "n", "COMPLETED", duration_ms=3)  # type: ignore[arg-type]
    assert event.state is TaskState.COMPLETED
    assert isinstance(event.duration_ms, float)
    assert event.duration_ms == 3.0


@pytest.mark.parametrize("state", list(TaskState))
def test_every_task_state_decodes(state: TaskState) -> None:
    assert TaskStateEvent.from_dict({**TASK_BODY, "state": state.value}).state is state


def test_task_state_event_metadata_is_copied() -> None:
    metadata = {"k": 1}
    event = TaskStateEvent.from_dict({**TASK_BODY, "metadata": metadata})
    metadata["k"] = 2
    assert event.metadata == {"k": 1}
    out = event.to_dict()
    out["metadata"]["k"] = 3
    assert event.metadata == {"k": 1}


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("task_id", ""),
        ("task_id", None),
        ("task_id", 1),
        ("task_name", ""),
        ("task_name", []),
        ("state", "running"),
        ("state", "DONE"),
        ("state", None),
        ("state", 1),
        ("state", ["RUNNING"]),
        ("duration_ms", -1),
        ("duration_ms", "1"),
        ("duration_ms", True),
        ("duration_ms", None),
        ("duration_ms", float("nan")),
        ("duration_ms", float("inf")),
        ("error", None),
        ("error", 1),
        ("metadata", None),
        ("metadata", []),
        ("metadata", "x"),
    ],
)
def test_task_state_event_invalid_field(name: str, bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        TaskStateEvent.from_dict({**TASK_BODY, name: bad})
    assert info.value.field == f"body.{name}"
    kwargs = {k: v for k, v in TASK_BODY.items() if k != "type"}
    kwargs[name] = bad
    with pytest.raises(SchemaError) as info:
        TaskStateEvent(**kwargs)
    assert info.value.field == f"body.{name}"


@pytest.mark.parametrize("name", ["task_id", "task_name", "state"])
def test_task_state_event_required_fields(name: str) -> None:
    with pytest.raises(SchemaError) as info:
        TaskStateEvent.from_dict({k: v for k, v in TASK_BODY.items() if k != name})
    assert info.value.field == f"body.{name}"
    assert info.value.problem == "is missing"


# --- LifecycleEvent / ResourceEvent / UnknownEvent -----------------------------------------------------


@pytest.mark.parametrize("event", list(LifecycleEventType))
def test_lifecycle_event_round_trip(event: LifecycleEventType) -> None:
    body = LifecycleEvent(event)
    assert body.to_dict() == {"type": "LifecycleEvent", "event": event.value}
    assert LifecycleEvent.from_dict(body.to_dict()) == body


@pytest.mark.parametrize("bad", ["ENGINE_PAUSED", "engine_started", None, 3, ""])
def test_lifecycle_event_invalid(bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        LifecycleEvent.from_dict({"type": "LifecycleEvent", "event": bad})
    assert info.value.field == "body.event"
    with pytest.raises(SchemaError) as info:
        LifecycleEvent(bad)
    assert info.value.field == "body.event"


def test_lifecycle_event_missing_event() -> None:
    with pytest.raises(SchemaError) as info:
        LifecycleEvent.from_dict({"type": "LifecycleEvent"})
    assert info.value.field == "body.event"


@pytest.mark.parametrize("action", list(ResourceAction))
def test_resource_event_round_trip(action: ResourceAction) -> None:
    body = ResourceEvent("db", action, 2.5)
    assert body.to_dict() == {
        "type": "ResourceEvent",
        "resource_name": "db",
        "action": action.value,
        "current_usage": 2.5,
    }
    assert ResourceEvent.from_dict(body.to_dict()) == body


def test_resource_event_int_usage_becomes_float() -> None:
    body = ResourceEvent.from_dict(RESOURCE_BODY)
    assert body.current_usage == 3.0
    assert isinstance(body.current_usage, float)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("resource_name", ""),
        ("resource_name", 5),
        ("action", "acquire"),
        ("action", None),
        ("current_usage", "1"),
        ("current_usage", None),
        ("current_usage", False),
        ("current_usage", float("nan")),
    ],
)
def test_resource_event_invalid_field(name: str, bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        ResourceEvent.from_dict({**RESOURCE_BODY, name: bad})
    assert info.value.field == f"body.{name}"


@pytest.mark.parametrize("name", ["resource_name", "action", "current_usage"])
def test_resource_event_required_fields(name: str) -> None:
    with pytest.raises(SchemaError) as info:
        ResourceEvent.from_dict({k: v for k, v in RESOURCE_BODY.items() if k != name})
    assert info.value.field == f"body.{name}"


def test_unknown_event_keeps_the_body_as_is() -> None:
    raw = {"type": "RetryEvent", "task_id": "t", "attempt": 3, "nested": {"a": [1]}}
    body = UnknownEvent.from_dict(raw)
    assert body.type == "RetryEvent"
    assert body.data == {"task_id": "t", "attempt": 3, "nested": {"a": [1]}}
    assert body.to_dict() == raw
    assert UnknownEvent.from_dict(body.to_dict()) == body


def test_unknown_event_defaults() -> None:
    assert UnknownEvent("X").data == {}
    assert UnknownEvent("X").to_dict() == {"type": "X"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": ""}, "body.type"),
        ({"type": 1}, "body.type"),
        ({"type": "X", "data": {"type": "Y"}}, "body.data"),
        ({"type": "X", "data": 5}, "body.data"),
        ({"type": "X", "data": None}, "body.data"),
    ],
)
def test_unknown_event_invalid(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        UnknownEvent(**kwargs)
    assert info.value.field == field


# --- TelemetryMessage --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (TASK_BODY, TaskStateEvent),
        (LIFECYCLE_BODY, LifecycleEvent),
        (RESOURCE_BODY, ResourceEvent),
        ({"type": "FutureEvent", "x": 1}, UnknownEvent),
    ],
)
def test_telemetry_message_decodes_each_body_type(body: dict[str, Any], cls: type[Any]) -> None:
    message = TelemetryMessage.from_dict(message_wire(body))
    assert isinstance(message.body, cls)
    assert message.header == TelemetryHeader.from_dict(HEADER_WIRE)
    assert TelemetryMessage.from_dict(message.to_dict()) == message


def test_telemetry_message_wire_form_is_flat_header_plus_body() -> None:
    message = TelemetryMessage(
        TelemetryHeader(ts=TS, run_id="run-1", org_id="acme", project_id="etl", source="worker-1"),
        LifecycleEvent(LifecycleEventType.ENGINE_STOPPED),
    )
    assert message.to_dict() == {
        **HEADER_WIRE,
        "body": {"type": "LifecycleEvent", "event": "ENGINE_STOPPED"},
    }


def test_telemetry_message_unknown_body_round_trips_unchanged() -> None:
    wire = message_wire({"type": "FutureEvent", "anything": [1, {"b": None}]})
    assert TelemetryMessage.from_dict(wire).to_dict() == wire


def test_telemetry_message_newer_minor_version_with_extra_fields_is_read() -> None:
    wire = {**message_wire(LIFECYCLE_BODY), "v": "1.4", "trace_id": "abc"}
    message = TelemetryMessage.from_dict(wire)
    assert message.header.v == "1.4"
    assert message.body == LifecycleEvent(LifecycleEventType.ENGINE_STARTED)


def test_telemetry_message_other_major_version_is_refused() -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryMessage.from_dict({**message_wire(LIFECYCLE_BODY), "v": "2.0"})
    assert info.value.field == "v"


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        (HEADER_WIRE, "body"),
        ({**HEADER_WIRE, "body": None}, "body"),
        ({**HEADER_WIRE, "body": [1]}, "body"),
        ({**HEADER_WIRE, "body": "TaskStateEvent"}, "body"),
        ({**HEADER_WIRE, "body": {}}, "body.type"),
        ({**HEADER_WIRE, "body": {"type": None}}, "body.type"),
        ({**HEADER_WIRE, "body": {"type": ""}}, "body.type"),
        ({**HEADER_WIRE, "body": {"type": 3}}, "body.type"),
        ({**HEADER_WIRE, "body": {**TASK_BODY, "state": "NOPE"}}, "body.state"),
        ({**HEADER_WIRE, "body": {"type": "LifecycleEvent"}}, "body.event"),
        ({**HEADER_WIRE, "run_id": None, "body": LIFECYCLE_BODY}, "run_id"),
    ],
)
def test_telemetry_message_invalid(wire: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryMessage.from_dict(wire)
    assert info.value.field == field


@pytest.mark.parametrize("wire", [None, [], "x", 3])
def test_telemetry_message_from_non_mapping(wire: Any) -> None:
    with pytest.raises(SchemaError) as info:
        TelemetryMessage.from_dict(wire)
    assert info.value.field == "message"


def test_telemetry_message_constructor_checks_types() -> None:
    header = TelemetryHeader(run_id="r", source="s")
    with pytest.raises(SchemaError) as info:
        TelemetryMessage(HEADER_WIRE, LifecycleEvent(LifecycleEventType.ENGINE_STARTED))  # type: ignore[arg-type]
    assert info.value.field == "header"
    with pytest.raises(SchemaError) as info:
        TelemetryMessage(header, LIFECYCLE_BODY)  # type: ignore[arg-type]
    assert info.value.field == "body"


def test_telemetry_message_accepts_a_mapping_that_is_not_a_dict() -> None:
    wire = MappingProxyType({**HEADER_WIRE, "body": MappingProxyType(TASK_BODY)})
    assert TelemetryMessage.from_dict(wire) == TelemetryMessage.from_dict(message_wire(TASK_BODY))


# --- Constraint --------------------------------------------------------------------------------------


def test_constraint_defaults() -> None:
    constraint = Constraint(id="c", scope="global", type=ConstraintType.PAUSE)
    assert constraint.params == {}
    assert constraint.expires_at is None
    assert constraint.to_dict() == {
        "id": "c",
        "scope": "global",
        "type": "pause",
        "params": {},
        "expires_at": None,
    }


@pytest.mark.parametrize(
    "wire",
    [
        {"id": "p", "scope": "global", "type": "pause", "params": {}, "expires_at": None},
        {"id": "p", "scope": "project:etl", "type": "pause", "params": {"reason": "x"}, "expires_at": 5.0},
        CONSTRAINT_WIRE,
        {"id": "r", "scope": "task:a", "type": "rate_limit", "params": {"rate": "10/s"}, "expires_at": None},
    ],
)
def test_constraint_round_trip(wire: dict[str, Any]) -> None:
    constraint = Constraint.from_dict(wire)
    assert constraint.to_dict() == wire
    assert Constraint.from_dict(constraint.to_dict()) == constraint


def test_constraint_optional_fields_default_when_absent() -> None:
    constraint = Constraint.from_dict({"id": "p", "scope": "global", "type": "pause"})
    assert constraint.params == {}
    assert constraint.expires_at is None


def test_constraint_int_expiry_becomes_float() -> None:
    constraint = Constraint.from_dict({**CONSTRAINT_WIRE, "expires_at": 10})
    assert constraint.expires_at == 10.0
    assert isinstance(constraint.expires_at, float)


def test_constraint_is_expired() -> None:
    constraint = Constraint.from_dict({**CONSTRAINT_WIRE, "expires_at": 100.0})
    assert not constraint.is_expired(99.999)
    assert constraint.is_expired(100.0)
    assert constraint.is_expired(101.0)
    assert not Constraint("c", "global", ConstraintType.PAUSE).is_expired(1e18)


@pytest.mark.parametrize(
    ("name", "bad", "field"),
    [
        ("id", "", "id"),
        ("id", None, "id"),
        ("id", 1, "id"),
        ("scope", "", "scope"),
        ("scope", None, "scope"),
        ("scope", 1, "scope"),
        ("scope", "task", "scope"),
        ("scope", "task:a/b", "scope"),
        ("scope", "task:#", "scope"),
        ("scope", "task:+", "scope"),
        ("scope", "global/x", "scope"),
        ("scope", "task:", "scope"),
        ("scope", ":x", "scope"),
        ("scope", "task:a\x00", "scope"),
        ("type", "throttle", "type"),
        ("type", "PAUSE", "type"),
        ("type", None, "type"),
        ("type", 1, "type"),
        ("params", None, "params"),
        ("params", [], "params"),
        ("params", "limit=2", "params"),
        ("params", {}, "params.limit"),
        ("params", {"limit": 0}, "params.limit"),
        ("params", {"limit": -1}, "params.limit"),
        ("params", {"limit": 1.5}, "params.limit"),
        ("params", {"limit": 2.0}, "params.limit"),
        ("params", {"limit": "2"}, "params.limit"),
        ("params", {"limit": True}, "params.limit"),
        ("params", {"limit": None}, "params.limit"),
        ("expires_at", "soon", "expires_at"),
        ("expires_at", True, "expires_at"),
        ("expires_at", float("nan"), "expires_at"),
        ("expires_at", float("inf"), "expires_at"),
        ("expires_at", [], "expires_at"),
    ],
)
def test_constraint_invalid_field(name: str, bad: Any, field: str) -> None:
    with pytest.raises(SchemaError) as info:
        Constraint.from_dict({**CONSTRAINT_WIRE, name: bad})
    assert info.value.field == field
    kwargs = dict(CONSTRAINT_WIRE)
    kwargs[name] = bad
    with pytest.raises(SchemaError) as info:
        Constraint(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    "params",
    [{}, {"rate": None}, {"rate": 10}, {"rate": "10"}, {"rate": "0/s"}, {"rate": "10/d"}, {"rate": ""}],
)
def test_rate_limit_constraint_params(params: dict[str, Any]) -> None:
    wire = {"id": "r", "scope": "task:a", "type": "rate_limit", "params": params}
    with pytest.raises(SchemaError) as info:
        Constraint.from_dict(wire)
    assert info.value.field == "params.rate"


def test_pause_takes_any_params() -> None:
    constraint = Constraint.from_dict(
        {"id": "p", "scope": "global", "type": "pause", "params": {"why": "deploy"}}
    )
    assert constraint.params == {"why": "deploy"}


def test_concurrency_limit_accepts_large_ints() -> None:
    constraint = Constraint.from_dict({**CONSTRAINT_WIRE, "params": {"limit": 10**6}})
    assert constraint.params["limit"] == 10**6


@pytest.mark.parametrize("name", ["id", "scope", "type"])
def test_constraint_required_fields(name: str) -> None:
    with pytest.raises(SchemaError) as info:
        Constraint.from_dict({k: v for k, v in CONSTRAINT_WIRE.items() if k != name})
    assert info.value.field == name
    assert info.value.problem == "is missing"


def test_constraint_from_non_mapping() -> None:
    with pytest.raises(SchemaError) as info:
        Constraint.from_dict([("id", "x")])  # type: ignore[arg-type]
    assert info.value.field == "constraint"


def test_constraint_scope_error_keeps_the_topic_error_as_cause() -> None:
    with pytest.raises(SchemaError) as info:
        Constraint("c", "task:a/b", ConstraintType.PAUSE)
    assert info.value.__cause__ is not None
    assert "'/'" in info.value.problem


# --- parse_rate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "per_second"),
    [
        ("10/s", 10.0),
        ("5/m", 5 / 60),
        ("100/h", 100 / 3600),
        ("1/s", 1.0),
        ("0.5/s", 0.5),
        ("2.5/m", 2.5 / 60),
        (" 10 / s ", 10.0),
        ("3600/h", 1.0),
        ("10/s\n", 10.0),
    ],
)
def test_parse_rate(rate: str, per_second: float) -> None:
    assert parse_rate(rate) == pytest.approx(per_second)


@pytest.mark.parametrize(
    "rate",
    [
        "",
        "10",
        "/s",
        "10/",
        "10/d",
        "10/S",
        "10/sec",
        "10 per s",
        "-1/s",
        "0/s",
        "0.0/m",
        "1e3/s",
        "ten/s",
        "10/s/s",
        ".5/s",
        "10/s x",
        "\u0661\u0660/s",  # non-ASCII (Arabic-Indic) digits
        "9" * 400 + "/s",  # overflows a float
        None,
        10,
        10.0,
        ["10/s"],
    ],
)
def test_parse_rate_refuses_bad_rates(rate: Any) -> None:
    with pytest.raises(SchemaError) as info:
        parse_rate(rate)
    assert info.value.field == "params.rate"


# --- StatusMessage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["online", "offline"])
def test_status_message_round_trip(status: str) -> None:
    wire = {**STATUS_WIRE, "status": status}
    message = StatusMessage.from_dict(wire)
    assert message.to_dict() == wire
    assert StatusMessage.from_dict(message.to_dict()) == message


def test_status_message_defaults_ts_to_now() -> None:
    message = StatusMessage(status="online", source="w")
    assert _is_utc_iso(message.ts)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("status", "Online"),
        ("status", "away"),
        ("status", None),
        ("status", ["online"]),
        ("status", {}),
        ("source", ""),
        ("source", None),
        ("source", 5),
        ("ts", "2025-01-02T03:04:05"),
        ("ts", "2025-01-02T03:04:05+02:00"),
        ("ts", "now"),
        ("ts", None),
    ],
)
def test_status_message_invalid_field(name: str, bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        StatusMessage.from_dict({**STATUS_WIRE, name: bad})
    assert info.value.field == name
    kwargs = dict(STATUS_WIRE)
    kwargs[name] = bad
    with pytest.raises(SchemaError) as info:
        StatusMessage(**kwargs)
    assert info.value.field == name


@pytest.mark.parametrize("name", ["status", "source", "ts"])
def test_status_message_required_fields(name: str) -> None:
    with pytest.raises(SchemaError) as info:
        StatusMessage.from_dict({k: v for k, v in STATUS_WIRE.items() if k != name})
    assert info.value.field == name


def test_status_message_from_non_mapping() -> None:
    with pytest.raises(SchemaError):
        StatusMessage.from_dict("online")  # type: ignore[arg-type]


# --- every schema: frozen, and never a bare KeyError/TypeError on any mangled field -------------------

Decoder = Callable[[Mapping[str, Any]], object]

VALID_WIRES: list[tuple[str, Decoder, dict[str, Any]]] = [
    ("header", TelemetryHeader.from_dict, HEADER_WIRE),
    ("task", TelemetryMessage.from_dict, message_wire(TASK_BODY)),
    ("lifecycle", TelemetryMessage.from_dict, message_wire(LIFECYCLE_BODY)),
    ("resource", TelemetryMessage.from_dict, message_wire(RESOURCE_BODY)),
    ("unknown", TelemetryMessage.from_dict, message_wire({"type": "X", "y": 1})),
    ("constraint-concurrency", Constraint.from_dict, CONSTRAINT_WIRE),
    (
        "constraint-rate",
        Constraint.from_dict,
        {"id": "r", "scope": "task:a", "type": "rate_limit", "params": {"rate": "5/m"}, "expires_at": None},
    ),
    ("status", StatusMessage.from_dict, STATUS_WIRE),
]

MANGLED_VALUES: list[Any] = [None, "", "x", 0, -1, 1.5, True, [], ["x"], {}, {"x": 1}, float("nan")]


def _paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in data.items():
        out.append((*prefix, key))
        if isinstance(value, Mapping):
            out.extend(_paths(value, (*prefix, key)))
    return out


@pytest.mark.parametrize(("label", "decode", "wire"), VALID_WIRES, ids=[w[0] for w in VALID_WIRES])
def test_mangling_any_field_gives_schema_error_or_a_valid_object(
    label: str, decode: Decoder, wire: dict[str, Any]
) -> None:
    decode(wire)  # the reference wire form is valid
    error_fields: list[str] = []
    for path in _paths(wire):
        for bad in [*MANGLED_VALUES, "<missing>"]:
            mangled = copy.deepcopy(wire)
            target = mangled
            for key in path[:-1]:
                target = target[key]
            if bad == "<missing>":
                del target[path[-1]]
            else:
                target[path[-1]] = bad
            try:
                decode(mangled)
            except SchemaError as exc:
                error_fields.append(exc.field)
    assert error_fields, f"{label}: no mangled field was refused"
    assert all(error_fields), f"{label}: a SchemaError without a field name"


@pytest.mark.parametrize(
    "instance",
    [
        TelemetryHeader(run_id="r", source="s"),
        TaskStateEvent("t", "n", TaskState.PENDING),
        LifecycleEvent(LifecycleEventType.ENGINE_STARTED),
        ResourceEvent("db", ResourceAction.RELEASE, 0.0),
        UnknownEvent("X"),
        TelemetryMessage(TelemetryHeader(run_id="r", source="s"), UnknownEvent("X")),
        Constraint("c", "global", ConstraintType.PAUSE),
        StatusMessage("online", "w"),
    ],
)
def test_every_schema_is_frozen_and_slotted(instance: Any) -> None:
    first_field = dataclasses.fields(instance)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, first_field, "changed")
    assert not hasattr(instance, "__dict__")
