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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar, Union, cast

from .errors import SchemaError, TopicError
from .topics import validate_scope

SCHEMA_VERSION = "1.0"
"""The telemetry schema version this package writes; any ``1.x`` is read, another major is refused."""


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class ConstraintType(StrEnum):
    """The kind of a control constraint."""

    PAUSE = "pause"
    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"


# ---------------------------------------------------------------------------------------------
# Field readers: each raises SchemaError(field, problem).

_E = TypeVar("_E", bound=StrEnum)


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be an object, not {type(value).__name__}")
    return value


def _get(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise SchemaError(_join(path, key), "is missing")
    return data[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _str(value: object, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SchemaError(path, f"must be a string, not {type(value).__name__}")
    if not empty and not value:
        raise SchemaError(path, "must not be empty")
    return value


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(path, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise SchemaError(path, "must be finite")
    return float(value)


def _enum(enum: type[_E], value: object, path: str) -> _E:
    allowed = ", ".join(m.value for m in enum)
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise SchemaError(path, f"must be one of {allowed}, not {value!r}")


def _timestamp(value: object, path: str) -> str:
    text = _str(value, path)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SchemaError(path, f"is not an ISO 8601 timestamp: {text!r}") from exc
    if parsed.utcoffset() is None or parsed.utcoffset() != UTC.utcoffset(None):
        raise SchemaError(path, f"must be in UTC (end with 'Z' or '+00:00'): {text!r}")
    return text


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


# ---------------------------------------------------------------------------------------------
# Constraints

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*", re.ASCII)
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(rate: str) -> float:
    """Parse ``"<n>/<s|m|h>"`` (for example ``10/s``, ``5/m``, ``100/h``) into events per second.

    Raises `SchemaError` (field ``params.rate``) if malformed or not positive.
    """
    if not isinstance(rate, str):
        raise SchemaError("params.rate", f"must be a string like '10/s', not {type(rate).__name__}")
    match = _RATE.fullmatch(rate)
    if match is None:
        raise SchemaError("params.rate", f"must look like '10/s', '5/m' or '100/h', not {rate!r}")
    count = float(match.group(1))
    if not math.isfinite(count):
        raise SchemaError("params.rate", f"is out of range: {rate[:40]!r}")
    if count <= 0:
        raise SchemaError("params.rate", f"must be positive, not {rate!r}")
    return count / _RATE_UNITS[match.group(2)]


def _check_params(ctype: ConstraintType, params: Mapping[str, Any]) -> None:
    if ctype is ConstraintType.CONCURRENCY:
        limit = params.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise SchemaError("params.limit", f"must be an integer >= 1, not {limit!r}")
        if limit < 1:
            raise SchemaError("params.limit", f"must be >= 1, not {limit}")
    elif ctype is ConstraintType.RATE_LIMIT:
        if "rate" not in params:
            raise SchemaError("params.rate", "is missing")
        parse_rate(params["rate"])


@dataclass(frozen=True, slots=True)
class Constraint:
    """A control command in force for a scope, retained on `constraint_topic(scope)`.

    `type` is pause, concurrency (``params={"limit": int >= 1}``) or rate_limit
    (``params={"rate": "10/s"}``). `expires_at` is a Unix time in seconds, or None for no expiry.
    """

    id: str
    scope: str
    type: ConstraintType
    params: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None

    def __post_init__(self) -> None:
        _str(self.id, "id")
        try:
            validate_scope(self.scope)
        except TopicError as exc:
            raise SchemaError("scope", exc.problem) from exc
        object.__setattr__(self, "type", _enum(ConstraintType, self.type, "type"))
        _mapping(self.params, "params")
        _check_params(self.type, self.params)
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", _number(self.expires_at, "expires_at"))

    def is_expired(self, now: float) -> bool:
        """Whether the constraint has expired at Unix time `now` (seconds)."""
        return self.expires_at is not None and now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a JSON-ready dict."""
        return {
            "id": self.id,
            "scope": self.scope,
            "type": self.type.value,
            "params": dict(self.params),
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Constraint:
        """Decode the wire form; raises `SchemaError`."""
        data = _mapping(data, "constraint")
        return cls(
            id=_get(data, "id", ""),
            scope=_str(_get(data, "scope", ""), "scope"),
            type=_get(data, "type", ""),
            params=dict(_mapping(data.get("params", {}), "params")),
            expires_at=data.get("expires_at"),
        )


# ---------------------------------------------------------------------------------------------
# Presence

PresenceStatus = Literal["online", "offline"]


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A worker's presence, retained on `status_topic(source)`. `ts` is ISO 8601 UTC (defaults to now)."""

    status: PresenceStatus
    source: str
    ts: str = field(default_factory=utc_now_iso)

    def __post_init__(self) -> None:
        if self.status not in ("online", "offline"):
            raise SchemaError("status", f"must be 'online' or 'offline', not {self.status!r}")
        _str(self.source, "source")
        _timestamp(self.ts, "ts")

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a JSON-ready dict."""
        return {"status": self.status, "source": self.source, "ts": self.ts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusMessage:
        """Decode the wire form; raises `SchemaError`."""
        data = _mapping(data, "status message")
        status = _get(data, "status", "")
        if status not in ("online", "offline"):
            raise SchemaError("status", f"must be 'online' or 'offline', not {status!r}")
        return cls(
            status=cast(PresenceStatus, status),
            source=_get(data, "source", ""),
            ts=_get(data, "ts", ""),
        )
