"""Field readers shared by the schemas: each raises `SchemaError(field, problem)`, never a bare error."""

from __future__ import annotations

__all__ = ["_enum", "_get", "_join", "_mapping", "_number", "_str", "_timestamp", "utc_now_iso"]

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from .errors import SchemaError

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


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
