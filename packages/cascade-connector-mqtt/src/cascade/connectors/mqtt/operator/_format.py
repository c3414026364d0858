"""The listings operators read: constraints in force and workers, as tables or JSON."""

from __future__ import annotations

__all__ = ["format_constraints", "format_workers"]

import json
import time

from cascade.connectors.protocol import ConstraintBook, StatusMessage

from ._model import describe_constraint
from ._text import age_seconds, describe_params, describe_presence, format_table, time_left


def format_constraints(book: ConstraintBook, *, as_json: bool, now: float) -> str:
    """A table (or JSON list) of the constraints in force: scope, type, params and time left.

    JSON adds ``expires_in`` (seconds from `now`, Unix seconds; null without expiry).
    """
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


def format_workers(workers: list[StatusMessage], *, as_json: bool, now: float | None = None) -> str:
    """A table (or JSON list) of workers: presence with its age, e.g. ``online (3s)`` or
    ``offline (2h 05m ago)``, and the time it was announced (its ``ts``).

    Ages are computed at `now` (Unix seconds; default: the current time). JSON adds ``age_s``
    (seconds since ``ts``, rounded to the millisecond) to each worker's wire form.
    """
    at = time.time() if now is None else now
    if as_json:
        return json.dumps([{**w.to_dict(), "age_s": _age(w.ts, at)} for w in workers], indent=2)
    if not workers:
        return "no workers have announced their presence"
    rows = [[w.source, describe_presence(w.status, w.ts, at), w.ts] for w in workers]
    online = sum(1 for w in workers if w.status == "online")
    table = format_table(["SOURCE", "STATUS", "SINCE"], rows)
    return f"{table}\n{online} online, {len(workers) - online} offline"


def _age(ts: str, now: float) -> float | None:
    try:
        return round(age_seconds(ts, now), 3)
    except ValueError:
        return None
