"""`ConstraintBook`: the constraints in force, and what they mean for a task.

This is the one place engines, the operator CLI and tools take constraint semantics from.

Feeding the book: subscribe to `CONSTRAINTS_FILTER` and hand every message to `ConstraintBook.apply`
(or use `ConstraintBook.on_message` as the callback). A retained `Constraint` on
``constraint_topic(scope)`` is the one constraint in force for that scope; a later one replaces it;
the empty payload ``{}`` clears it (resume).

Semantics:

- **Coverage.** A constraint on scope S covers every task inside S: ``global`` covers all tasks,
  ``project:P`` covers the tasks of project P, ``task:T`` covers the tasks named T. Other
  ``kind:name`` scopes are kept and listed, but apply to a task only when the caller passes them in
  ``extra_scopes``.
- **All covering constraints apply at once.** They are separate pools; none overrides another. A task
  is paused if ANY covering scope is paused; each covering concurrency limit caps the number of running
  tasks inside its own scope; each covering rate limit caps task starts per second inside its own
  scope. So the most restrictive one wins.
- **Expiry.** A constraint with ``expires_at`` (Unix seconds) stops applying when
  ``clock() >= expires_at``; expired constraints are ignored and purged lazily. `next_expiry` tells an
  engine when to look again.
- **Admission.** `admit` answers "may this task start now?" from the constraints in force and the
  tasks the engine said are running (`started` / `finished`): not if a covering scope is paused, nor
  if a covering concurrency limit is reached by the running tasks inside its scope, nor if a covering
  rate limit of r starts per second saw a start inside its scope less than 1/r seconds ago (an even
  spacing, no bursts). Starts and running tasks are counted in every covering scope whether or not
  a constraint is in force there yet, so a limit that arrives later sees what already runs.

The book is plain synchronous state (no locks, no I/O): use it from one thread or event loop.
"""

from __future__ import annotations

__all__ = ["ConstraintBook"]

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .admission import Admission, AdmissionVerdict, RunningTask
from .errors import SchemaError
from .schemas import Constraint, ConstraintType, parse_rate
from .topics import scope_from_topic, validate_scope

_GLOBAL_SCOPE = "global"


class ConstraintBook:
    """The constraints in force, one per scope, and the questions an engine asks about a task.

    `clock` returns the current Unix time in seconds (inject a fake one in tests).
    """

    __slots__ = ("_by_scope", "_clock", "_inside", "_last_start", "_running")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._by_scope: dict[str, Constraint] = {}
        self._running: set[RunningTask] = set()
        self._inside: dict[str, int] = {}  # scope -> running tasks inside it
        self._last_start: dict[str, float] = {}  # scope -> clock() at the latest start inside it

    def __repr__(self) -> str:
        return f"ConstraintBook({len(self)} in force)"

    # -- feeding ---------------------------------------------------------------------------------

    def apply(self, topic: str, payload: Mapping[str, Any]) -> Constraint | None:
        """Consume one message received on `CONSTRAINTS_FILTER`; return the constraint now stored.

        ``{}`` (the empty payload) clears the scope of `topic` and returns None. Otherwise the payload
        must decode as a `Constraint` whose ``scope`` equals ``scope_from_topic(topic)``. Raises
        `TopicError` (not a constraint topic) or `SchemaError` (bad payload; field ``scope`` when the
        scopes differ) and then leaves the book unchanged.
        """
        scope = scope_from_topic(topic)
        if isinstance(payload, Mapping) and not payload:
            self._by_scope.pop(scope, None)
            return None
        constraint = Constraint.from_dict(payload)
        if constraint.scope != scope:
            raise SchemaError(
                "scope", f"{constraint.scope!r} does not match the topic's scope {scope!r} ({topic})"
            )
        self._by_scope[scope] = constraint
        return constraint

    async def on_message(self, topic: str, payload: dict[str, Any]) -> None:
        """A connector `Callback` that calls `apply` (its errors propagate to the connector's log)."""
        self.apply(topic, payload)

    def set(self, constraint: Constraint) -> None:
        """Store `constraint` as the one in force for its scope (replacing any other)."""
        if not isinstance(constraint, Constraint):
            raise SchemaError("constraint", f"must be a Constraint, not {type(constraint).__name__}")
        self._by_scope[constraint.scope] = constraint

    def clear(self, scope: str) -> bool:
        """Remove the constraint of `scope`; return whether one was in force (stored and not expired).

        Raises `TopicError` if `scope` is not a valid scope.
        """
        validate_scope(scope)
        removed = self._by_scope.pop(scope, None)
        return removed is not None and not removed.is_expired(self._clock())

    def purge(self) -> list[Constraint]:
        """Drop the expired constraints and return them (sorted by scope)."""
        now = self._clock()
        expired = [c for c in self._by_scope.values() if c.is_expired(now)]
        for constraint in expired:
            del self._by_scope[constraint.scope]
        return sorted(expired, key=_scope_key)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, scope: str) -> Constraint | None:
        """The constraint in force for exactly `scope`, or None (absent or expired).

        Raises `TopicError` if `scope` is not a valid scope.
        """
        validate_scope(scope)
        return self._live(scope, self._clock())

    def active(self) -> list[Constraint]:
        """Every constraint in force (not expired), sorted by scope."""
        self.purge()
        return sorted(self._by_scope.values(), key=_scope_key)

    def __len__(self) -> int:
        """The number of constraints in force (not expired)."""
        self.purge()
        return len(self._by_scope)

    def __contains__(self, scope: object) -> bool:
        """Whether a constraint is in force for exactly `scope`."""
        return isinstance(scope, str) and self._live(scope, self._clock()) is not None

    def __iter__(self) -> Iterator[Constraint]:
        """Iterate over `active` (a snapshot)."""
        return iter(self.active())

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` (Unix seconds) among the constraints in force, or None."""
        self.purge()
        times = [c.expires_at for c in self._by_scope.values() if c.expires_at is not None]
        return min(times) if times else None

    # -- what applies to a task --------------------------------------------------------------------

    @staticmethod
    def covering_scopes(task: str, project: str | None = None, extra_scopes: Iterable[str] = ()) -> list[str]:
        """The scopes that cover `task`, broadest first: ``global``, ``project:P``, ``task:T``, extras.

        Duplicates are removed; a single str in `extra_scopes` counts as one scope. Names are not
        validated: a name that cannot form a valid scope simply matches no constraint.
        """
        if isinstance(extra_scopes, str):
            extra_scopes = (extra_scopes,)
        scopes = [_GLOBAL_SCOPE]
        if project is not None:
            scopes.append(f"project:{project}")
        scopes.append(f"task:{task}")
        for scope in extra_scopes:
            if scope not in scopes:
                scopes.append(scope)
        return scopes

    def applicable(
        self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
    ) -> list[Constraint]:
        """The constraints in force that cover `task`, in `covering_scopes` order (broadest first)."""
        now = self._clock()
        out: list[Constraint] = []
        for scope in self.covering_scopes(task, project, extra_scopes):
            constraint = self._live(scope, now)
            if constraint is not None:
                out.append(constraint)
        return out

    def is_paused(self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()) -> bool:
        """Whether any covering scope is paused (the task must not start)."""
        return any(c.type is ConstraintType.PAUSE for c in self.applicable(task, project, extra_scopes))

    def concurrency_limits(
        self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
    ) -> dict[str, int]:
        """Covering scope -> maximum number of running tasks inside that scope."""
        return {
            c.scope: int(c.params["limit"])
            for c in self.applicable(task, project, extra_scopes)
            if c.type is ConstraintType.CONCURRENCY
        }

    def rate_limits(
        self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
    ) -> dict[str, float]:
        """Covering scope -> maximum task starts per second inside that scope (see `parse_rate`)."""
        return {
            c.scope: parse_rate(c.params["rate"])
            for c in self.applicable(task, project, extra_scopes)
            if c.type is ConstraintType.RATE_LIMIT
        }

    def effective_concurrency(
        self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
    ) -> int | None:
        """The smallest covering concurrency limit, or None when no concurrency limit covers `task`."""
        limits = self.concurrency_limits(task, project, extra_scopes)
        return min(limits.values()) if limits else None

    def effective_rate(
        self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()
    ) -> float | None:
        """The smallest covering rate in starts per second, or None when no rate limit covers `task`."""
        rates = self.rate_limits(task, project, extra_scopes)
        return min(rates.values()) if rates else None

    # -- admission: may a task start now? -----------------------------------------------------------

    def admit(self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()) -> Admission:
        """Whether `task` (of `project`) may start now, given the constraints in force and the
        tasks running (see `started`); never blocks, changes nothing.

        Checks pauses, then concurrency limits, then rate limits, and reports the first kind that
        holds the task back, with every covering scope of that kind that does (`Admission.scopes`).
        """
        now = self._clock()
        applicable = self.applicable(task, project, extra_scopes)
        paused = [c for c in applicable if c.type is ConstraintType.PAUSE]
        if paused:
            return Admission(
                AdmissionVerdict.PAUSED,
                tuple(c.scope for c in paused),
                _until_all_expire(paused, now),
                "paused by " + ", ".join(c.scope for c in paused),
            )
        full = [
            c
            for c in applicable
            if c.type is ConstraintType.CONCURRENCY and self._inside.get(c.scope, 0) >= c.params["limit"]
        ]
        if full:
            return Admission(
                AdmissionVerdict.CONCURRENCY,
                tuple(c.scope for c in full),
                _until_all_expire(full, now),
                "; ".join(
                    f"{c.scope} has {self._inside.get(c.scope, 0)} running, its limit is {c.params['limit']}"
                    for c in full
                ),
            )
        waits: dict[str, float] = {}
        for c in applicable:
            last = self._last_start.get(c.scope)
            if c.type is not ConstraintType.RATE_LIMIT or last is None:
                continue
            due = last + 1.0 / parse_rate(c.params["rate"])
            if now < due:
                waits[c.scope] = due - now if c.expires_at is None else min(due, c.expires_at) - now
        if waits:
            wait = max(waits.values())
            return Admission(
                AdmissionVerdict.RATE_LIMITED,
                tuple(waits),
                wait,
                "rate limit of " + ", ".join(waits) + f" allows the next start in {wait:.2f} s",
            )
        return Admission(AdmissionVerdict.ADMITTED)

    def started(self, task: str, project: str | None = None, extra_scopes: Iterable[str] = ()) -> RunningTask:
        """Record that `task` (of `project`) started now; it counts as running in every covering
        scope until `finished` is called with the returned `RunningTask`.

        Call it right after `admit` said yes (the book does not refuse a start it would not admit).
        """
        scopes = tuple(self.covering_scopes(task, project, extra_scopes))
        running = RunningTask(task, project, scopes, self._clock())
        self._running.add(running)
        for scope in scopes:
            self._inside[scope] = self._inside.get(scope, 0) + 1
            self._last_start[scope] = running.started_at
        return running

    def finished(self, running: RunningTask) -> bool:
        """Release a task recorded by `started`; return whether it was still running here.

        Calling it twice, or with a `RunningTask` of another book, is harmless and returns False.
        """
        if running not in self._running:
            return False
        self._running.remove(running)
        for scope in running.scopes:
            left = self._inside[scope] - 1
            if left:
                self._inside[scope] = left
            else:
                del self._inside[scope]
        return True

    def running(self, scope: str | None = None) -> int:
        """The number of tasks running (started, not finished) inside `scope`, or in all if None.

        Raises `TopicError` if `scope` is not a valid scope.
        """
        if scope is None:
            return len(self._running)
        validate_scope(scope)
        return self._inside.get(scope, 0)

    # -- internals -----------------------------------------------------------------------------------

    def _live(self, scope: str, now: float) -> Constraint | None:
        constraint = self._by_scope.get(scope)
        if constraint is None:
            return None
        if constraint.is_expired(now):
            del self._by_scope[scope]
            return None
        return constraint


def _scope_key(constraint: Constraint) -> str:
    return constraint.scope


def _until_all_expire(constraints: list[Constraint], now: float) -> float | None:
    """Seconds until every one of `constraints` has expired, or None if one never expires."""
    ends = [c.expires_at for c in constraints]
    if any(end is None for end in ends):
        return None
    return max(0.0, max(end for end in ends if end is not None) - now)
