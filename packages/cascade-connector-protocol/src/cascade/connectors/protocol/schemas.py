"""The messages on the wire: telemetry, constraints and presence.

Every schema is a frozen, slotted dataclass with ``to_dict()`` (JSON-ready) and ``from_dict()``.
Construction and decoding validate; invalid data raises `SchemaError` naming the field and the problem
(never a bare KeyError or TypeError).
"""

from __future__ import annotations

__all__ = [
    "SCHEMA_VERSION",
    "TaskState",
    "LifecycleEventType",
    "ResourceAction",
    "ConstraintType",
    "TelemetryHeader",
    "TaskStateEvent",
    "LifecycleEvent",
    "ResourceEvent",
    "UnknownEvent",
    "TelemetryBody",
    "TelemetryMessage",
    "Constraint",
    "StatusMessage",
    "parse_rate",
    "utc_now_iso",
]

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Union

from ._fields import _enum, _get, _mapping, _number, _str, _timestamp, utc_now_iso
from .control import Constraint, ConstraintType, StatusMessage, parse_rate
from .errors import SchemaError

SCHEMA_VERSION = "1.0"
"""The telemetry schema version this package writes; any ``1.x`` is read, another major is refused."""


class TaskState(StrEnum):
    """The state of one task."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    BLOCKED = "BLOCKED"


class LifecycleEventType(StrEnum):
    """An engine lifecycle event."""

    ENGINE_STARTED = "ENGINE_STARTED"
    ENGINE_STOPPED = "ENGINE_STOPPED"


class ResourceAction(StrEnum):
    """What happened to a resource."""

    ACQUIRE = "ACQUIRE"
    RELEASE = "RELEASE"


# ---------------------------------------------------------------------------------------------
# Telemetry


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryHeader:
    """Who sent a telemetry message and when. `ts` is ISO 8601 UTC (defaults to now)."""

    v: str = SCHEMA_VERSION
    ts: str = field(default_factory=utc_now_iso)
    run_id: str
    org_id: str = "local"
    project_id: str = "default"
    source: str

    def __post_init__(self) -> None:
        _check_version(self.v, "v")
        _timestamp(self.ts, "ts")
        for name in ("run_id", "org_id", "project_id", "source"):
            _str(getattr(self, name), name)

    def to_dict(self) -> dict[str, Any]:
        """The header's fields as a JSON-ready dict."""
        return {
            "v": self.v,
            "ts": self.ts,
            "run_id": self.run_id,
            "org_id": self.org_id,
            "project_id": self.project_id,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetryHeader:
        """Decode a header; raises `SchemaError`."""
        data = _mapping(data, "header")
        return cls(
            v=_check_version(_get(data, "v", ""), "v"),
            ts=_timestamp(_get(data, "ts", ""), "ts"),
            run_id=_str(_get(data, "run_id", ""), "run_id"),
            org_id=_str(data.get("org_id", "local"), "org_id"),
            project_id=_str(data.get("project_id", "default"), "project_id"),
            source=_str(_get(data, "source", ""), "source"),
        )


def _check_version(value: object, path: str) -> str:
    text = _str(value, path)
    major = text.split(".", 1)[0]
    if major != SCHEMA_VERSION.split(".", 1)[0]:
        supported = SCHEMA_VERSION.split(".", 1)[0]
        raise SchemaError(path, f"unsupported schema version {text!r} (this package reads {supported}.x)")
    return text


@dataclass(frozen=True, slots=True)
class TaskStateEvent:
    """A task changed state. `duration_ms` is in milliseconds; `error` is set for FAILED."""

    TYPE: ClassVar[str] = "TaskStateEvent"
    task_id: str
    task_name: str
    state: TaskState
    duration_ms: float = 0.0
    error: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _str(self.task_id, "body.task_id")
        _str(self.task_name, "body.task_name")
        object.__setattr__(self, "state", _enum(TaskState, self.state, "body.state"))
        object.__setattr__(self, "duration_ms", _number(self.duration_ms, "body.duration_ms"))
        if self.duration_ms < 0:
            raise SchemaError("body.duration_ms", "must not be negative")
        _str(self.error, "body.error", empty=True)
        _mapping(self.metadata, "body.metadata")

    def to_dict(self) -> dict[str, Any]:
        """The body as a JSON-ready dict, with its ``type``."""
        return {
            "type": self.TYPE,
            "task_id": self.task_id,
            "task_name": self.task_name,
            "state": self.state.value,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskStateEvent:
        """Decode a body of this type; raises `SchemaError`."""
        data = _mapping(data, "body")
        return cls(
            task_id=_get(data, "task_id", "body"),
            task_name=_get(data, "task_name", "body"),
            state=_get(data, "state", "body"),
            duration_ms=data.get("duration_ms", 0.0),
            error=data.get("error", ""),
            metadata=dict(_mapping(data.get("metadata", {}), "body.metadata")),
        )


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """The engine started or stopped."""

    TYPE: ClassVar[str] = "LifecycleEvent"
    event: LifecycleEventType

    def __post_init__(self) -> None:
        object.__setattr__(self, "event", _enum(LifecycleEventType, self.event, "body.event"))

    def to_dict(self) -> dict[str, Any]:
        """The body as a JSON-ready dict, with its ``type``."""
        return {"type": self.TYPE, "event": self.event.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LifecycleEvent:
        """Decode a body of this type; raises `SchemaError`."""
        data = _mapping(data, "body")
        return cls(event=_get(data, "event", "body"))


@dataclass(frozen=True, slots=True)
class ResourceEvent:
    """A resource was acquired or released; `current_usage` is the usage after the action."""

    TYPE: ClassVar[str] = "ResourceEvent"
    resource_name: str
    action: ResourceAction
    current_usage: float

    def __post_init__(self) -> None:
        _str(self.resource_name, "body.resource_name")
        object.__setattr__(self, "action", _enum(ResourceAction, self.action, "body.action"))
        object.__setattr__(self, "current_usage", _number(self.current_usage, "body.current_usage"))

    def to_dict(self) -> dict[str, Any]:
        """The body as a JSON-ready dict, with its ``type``."""
        return {
            "type": self.TYPE,
            "resource_name": self.resource_name,
            "action": self.action.value,
            "current_usage": self.current_usage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceEvent:
        """Decode a body of this type; raises `SchemaError`."""
        data = _mapping(data, "body")
        return cls(
            resource_name=_get(data, "resource_name", "body"),
            action=_get(data, "action", "body"),
            current_usage=_get(data, "current_usage", "body"),
        )


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A body whose ``type`` this version does not know (sent by a newer engine); kept, not refused."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _str(self.type, "body.type")
        _mapping(self.data, "body.data")
        if "type" in self.data:
            raise SchemaError("body.data", "must not repeat 'type'")

    def to_dict(self) -> dict[str, Any]:
        """The body as it arrived."""
        return {"type": self.type, **self.data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnknownEvent:
        """Keep an unknown body as is."""
        data = _mapping(data, "body")
        rest = {k: v for k, v in data.items() if k != "type"}
        return cls(type=_str(_get(data, "type", "body"), "body.type"), data=rest)


TelemetryBody = Union[TaskStateEvent, LifecycleEvent, ResourceEvent, UnknownEvent]  # noqa: UP007

_BODY_TYPES: dict[str, type[TaskStateEvent] | type[LifecycleEvent] | type[ResourceEvent]] = {
    TaskStateEvent.TYPE: TaskStateEvent,
    LifecycleEvent.TYPE: LifecycleEvent,
    ResourceEvent.TYPE: ResourceEvent,
}


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """One telemetry message: ``{"v", "ts", "run_id", "org_id", "project_id", "source", "body": {...}}``."""

    header: TelemetryHeader
    body: TelemetryBody

    def __post_init__(self) -> None:
        if not isinstance(self.header, TelemetryHeader):
            raise SchemaError("header", f"must be a TelemetryHeader, not {type(self.header).__name__}")
        if not isinstance(self.body, TaskStateEvent | LifecycleEvent | ResourceEvent | UnknownEvent):
            raise SchemaError("body", f"must be a telemetry event, not {type(self.body).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a JSON-ready dict."""
        out = self.header.to_dict()
        out["body"] = self.body.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetryMessage:
        """Decode the wire form; unknown body types become `UnknownEvent`; raises `SchemaError`."""
        data = _mapping(data, "message")
        header = TelemetryHeader.from_dict(data)
        body_data = _mapping(_get(data, "body", ""), "body")
        body_type = _str(_get(body_data, "type", "body"), "body.type")
        decoder = _BODY_TYPES.get(body_type)
        body: TelemetryBody = (
            decoder.from_dict(body_data) if decoder is not None else UnknownEvent.from_dict(body_data)
        )
        return cls(header=header, body=body)
