"""What an operator does through any `Connector`: send and clear constraints, read what is in force.

Every function takes a connected `Connector` (the MQTT one, the in-memory fake, any other) and
raises the connector's own `ConnectorError` subclasses. Publishes are QoS 1 and wait for the
broker's acknowledgement, across an outage if need be: bound them with `asyncio.timeout`.
"""

from __future__ import annotations

__all__ = [
    "OPERATOR_SOURCE_PREFIX",
    "is_operator_source",
    "new_constraint",
    "describe_command",
    "send_constraint",
    "ResumeOutcome",
    "Resumed",
    "resume",
    "ConstraintListing",
    "WorkerListing",
    "read_constraints",
    "read_workers",
]

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    Connector,
    ConnectorError,
    Constraint,
    ConstraintBook,
    ConstraintType,
    StatusMessage,
    constraint_topic,
    source_from_status_topic,
)

from ._text import plural, time_left

OPERATOR_SOURCE_PREFIX = "cascade-mqtt-cli-"
"""Presence name prefix of operator tools (``cascade-mqtt``); `read_workers` callers may hide them."""


def is_operator_source(source: str) -> bool:
    """Whether `source` is an operator tool's connection (not a worker)."""
    return source.startswith(OPERATOR_SOURCE_PREFIX)


def new_constraint(
    scope: str,
    ctype: ConstraintType,
    params: dict[str, Any] | None = None,
    ttl: float | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Constraint:
    """A new constraint with a fresh id; `ttl` in seconds (None: until resumed).

    Raises `TopicError` for an invalid scope and `SchemaError` for invalid params.
    """
    expires_at = clock() + ttl if ttl is not None else None
    constraint = Constraint(uuid.uuid4().hex, scope, ctype, dict(params or {}), expires_at)
    constraint_topic(constraint.scope)  # validates the scope (TopicError)
    return constraint


def describe_command(constraint: Constraint, *, now: float | None = None) -> str:
    """The one line a successful pause/limit reports, e.g. ``paused global (expires in 1m 00s)``."""
    if constraint.type is ConstraintType.PAUSE:
        what = f"paused {constraint.scope}"
    elif constraint.type is ConstraintType.CONCURRENCY:
        what = f"limited {constraint.scope} to {plural(constraint.params['limit'], 'running task')}"
    else:
        what = f"limited {constraint.scope} to {constraint.params['rate']} task starts"
    if constraint.expires_at is None:
        return f"{what} (until resumed)"
    return f"{what} (expires in {time_left(constraint.expires_at, time.time() if now is None else now)})"


async def send_constraint(connector: Connector, constraint: Constraint) -> None:
    """Publish `constraint` retained at QoS 1 on its scope's topic; returns once acknowledged.

    It replaces whatever constraint the scope held. Engines connected now receive it at once; engines
    that start later receive it before their first task (it is retained).
    """
    await connector.publish(constraint_topic(constraint.scope), constraint.to_dict(), qos=1, retain=True)


class ResumeOutcome(Enum):
    """What `resume` found on the scope's topic."""

    CLEARED = "cleared"
    """A constraint in force was cleared."""
    EXPIRED = "expired"
    """Only an expired constraint was retained; it was cleared (nothing was in force)."""
    UNREADABLE = "unreadable"
    """A retained message that does not decode was cleared."""
    NOTHING = "nothing"
    """Nothing was retained on the scope: nothing was sent."""


@dataclass(frozen=True, slots=True)
class Resumed:
    """The result of `resume`: the `outcome` and the constraint that was retained, if it decoded."""

    scope: str
    outcome: ResumeOutcome
    constraint: Constraint | None = None

    @property
    def was_in_force(self) -> bool:
        """Whether a constraint was in force on the scope (and is cleared now)."""
        return self.outcome is ResumeOutcome.CLEARED or self.outcome is ResumeOutcome.UNREADABLE


async def resume(connector: Connector, scope: str, *, clock: Callable[[], float] = time.time) -> Resumed:
    """Clear `scope`'s retained constraint (the empty payload, QoS 1; returns once acknowledged).

    Reads the scope's retained state first: when nothing is retained, nothing is sent
    (`ResumeOutcome.NOTHING`). Raises `TopicError` for an invalid scope.
    """
    topic = constraint_topic(scope)
    seen: list[dict[str, Any]] = []

    async def on_message(_topic: str, payload: dict[str, Any]) -> None:
        seen.append(payload)

    handle = await connector.subscribe(topic, on_message)
    await handle.unsubscribe()
    retained = seen[-1] if seen else {}
    if not retained:
        return Resumed(scope, ResumeOutcome.NOTHING)
    book = ConstraintBook(clock)
    try:
        constraint = book.apply(topic, retained)
    except ConnectorError:
        constraint = None
    await connector.publish(topic, {}, qos=1, retain=True)
    if constraint is None:
        return Resumed(scope, ResumeOutcome.UNREADABLE)
    outcome = ResumeOutcome.CLEARED if book.active() else ResumeOutcome.EXPIRED
    return Resumed(scope, outcome, constraint)


@dataclass(frozen=True, slots=True)
class ConstraintListing:
    """The retained constraints (`book`) and why each retained message that did not decode was skipped."""

    book: ConstraintBook
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkerListing:
    """The workers' retained presence (sorted by source) and why each unreadable one was skipped."""

    workers: list[StatusMessage]
    skipped: list[str] = field(default_factory=list)


async def read_constraints(
    connector: Connector, *, clock: Callable[[], float] = time.time
) -> ConstraintListing:
    """The constraints retained on the broker (``book.active()``: those in force at `clock`)."""
    book = ConstraintBook(clock)
    skipped: list[str] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        try:
            book.apply(topic, payload)
        except ConnectorError as exc:
            skipped.append(f"{topic}: {exc}")

    handle = await connector.subscribe(CONSTRAINTS_FILTER, on_message)
    await handle.unsubscribe()
    return ConstraintListing(book, skipped)


async def read_workers(connector: Connector, *, hide: Callable[[str], bool] | None = None) -> WorkerListing:
    """Every worker's retained presence, sorted by source; sources for which `hide` is true are left
    out (for example `is_operator_source`).
    """
    workers: dict[str, StatusMessage] = {}
    skipped: list[str] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        try:
            source = source_from_status_topic(topic)
            if not payload:
                workers.pop(source, None)
                return
            workers[source] = StatusMessage.from_dict(payload)
        except ConnectorError as exc:
            skipped.append(f"{topic}: {exc}")

    handle = await connector.subscribe(STATUS_FILTER, on_message)
    await handle.unsubscribe()
    found = [workers[s] for s in sorted(workers) if hide is None or not hide(s)]
    return WorkerListing(found, skipped)
