"""What each ``cascade-mqtt`` command does once connected (typed against the `Connector` protocol)."""

from __future__ import annotations

__all__ = [
    "make_constraint",
    "describe_command",
    "send_constraint",
    "send_resume",
    "read_constraints",
    "read_workers",
    "format_constraints",
    "format_workers",
]

import json
import time
import uuid
from collections.abc import Callable
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

from .session import publish_acked
from .text import describe_params, format_table, time_left
from .watch import describe_constraint


def make_constraint(
    scope: str,
    ctype: ConstraintType,
    params: dict[str, Any] | None = None,
    ttl: float | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Constraint:
    """A new constraint with a fresh id; `ttl` in seconds (None: until resumed)."""
    expires_at = clock() + ttl if ttl is not None else None
    return Constraint(uuid.uuid4().hex, scope, ctype, dict(params or {}), expires_at)


def describe_command(constraint: Constraint) -> str:
    """The one line a successful pause/limit prints, e.g. ``paused global (expires in 1m 00s)``."""
    if constraint.type is ConstraintType.PAUSE:
        what = f"paused {constraint.scope}"
    elif constraint.type is ConstraintType.CONCURRENCY:
        what = f"limited {constraint.scope} to {constraint.params['limit']} running tasks"
    else:
        what = f"limited {constraint.scope} to {constraint.params['rate']} task starts"
    if constraint.expires_at is None:
        return f"{what} (until resumed)"
    return f"{what} (expires in {time_left(constraint.expires_at, time.time())})"


async def send_constraint(
    connector: Connector, constraint: Constraint, *, ack_timeout: float, url: str
) -> None:
    """Publish `constraint` retained at qos 1 on its scope's topic; returns once acknowledged."""
    topic = constraint_topic(constraint.scope)
    await publish_acked(connector, topic, constraint.to_dict(), ack_timeout=ack_timeout, url=url)


async def send_resume(connector: Connector, scope: str, *, ack_timeout: float, url: str) -> None:
    """Clear `scope`'s retained constraint (the empty payload) at qos 1; returns once acknowledged."""
    await publish_acked(connector, constraint_topic(scope), {}, ack_timeout=ack_timeout, url=url)


async def read_constraints(connector: Connector) -> tuple[ConstraintBook, list[str]]:
    """The retained constraints (a `ConstraintBook`) and the problems of those that did not decode."""
    book = ConstraintBook()
    problems: list[str] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        try:
            book.apply(topic, payload)
        except ConnectorError as exc:
            problems.append(f"{topic}: {exc}")

    handle = await connector.subscribe(CONSTRAINTS_FILTER, on_message)
    await handle.unsubscribe()
    return book, problems


async def read_workers(
    connector: Connector, *, hide: Callable[[str], bool] = lambda source: False
) -> tuple[list[StatusMessage], list[str]]:
    """The retained presence of every worker (sorted by source) and the problems of those that did not decode.

    Sources for which `hide` is true are left out (the CLI's own connections).
    """
    workers: dict[str, StatusMessage] = {}
    problems: list[str] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        try:
            source = source_from_status_topic(topic)
            if not payload:
                workers.pop(source, None)
                return
            workers[source] = StatusMessage.from_dict(payload)
        except ConnectorError as exc:
            problems.append(f"{topic}: {exc}")

    handle = await connector.subscribe(STATUS_FILTER, on_message)
    await handle.unsubscribe()
    found = [workers[s] for s in sorted(workers) if not hide(s)]
    return found, problems


def format_constraints(book: ConstraintBook, *, as_json: bool, now: float) -> str:
    """The ``constraints`` output: a table (or JSON list) of scope, type, params and time left."""
    active = book.active()
    if as_json:
        items = [
            {
                **c.to_dict(),
                "expires_in": None if c.expires_at is None else max(0.0, round(c.expires_at - now, 3)),
            }
            for c in active
        ]
        return json.dumps(items, indent=2)
    if not active:
        return "no constraints in force"
    rows = [
        [
            c.scope,
            describe_constraint(c.type.value, c.params),
            describe_params(c.params),
            time_left(c.expires_at, now),
        ]
        for c in active
    ]
    return format_table(["SCOPE", "CONSTRAINT", "PARAMS", "EXPIRES IN"], rows)


def format_workers(workers: list[StatusMessage], *, as_json: bool) -> str:
    """The ``status`` output: a table (or JSON list) of workers, their presence and since when."""
    if as_json:
        return json.dumps([w.to_dict() for w in workers], indent=2)
    if not workers:
        return "no workers have announced their presence"
    rows = [[w.source, w.status, w.ts] for w in workers]
    online = sum(1 for w in workers if w.status == "online")
    table = format_table(["SOURCE", "STATUS", "SINCE"], rows)
    return f"{table}\n{online} online, {len(workers) - online} offline"
