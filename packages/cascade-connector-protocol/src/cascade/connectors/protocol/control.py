"""The control and presence messages: `Constraint` (with `ConstraintType`, `parse_rate`) and `StatusMessage`.

Re-exported by `cascade.connectors.protocol.schemas`; see there for the conventions.
"""

from __future__ import annotations

__all__ = ["ConstraintType", "Constraint", "StatusMessage", "parse_rate"]

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

from ._fields import _enum, _get, _mapping, _number, _str, _timestamp, utc_now_iso
from .errors import SchemaError, TopicError
from .topics import validate_scope


class ConstraintType(StrEnum):
    """The kind of a control constraint."""

    PAUSE = "pause"
    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"


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
