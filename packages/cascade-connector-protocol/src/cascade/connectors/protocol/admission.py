"""The answer to "may this task start now?": `Admission`, and the `RunningTask` an engine holds.

`ConstraintBook.admit` gives the answer, `ConstraintBook.started` records a start and returns the
`RunningTask`, `ConstraintBook.finished` releases it. See `cascade.connectors.protocol.constraints`.
"""

from __future__ import annotations

__all__ = ["Admission", "AdmissionVerdict", "RunningTask"]

from dataclasses import dataclass
from enum import StrEnum


class AdmissionVerdict(StrEnum):
    """Why a task may or may not start now (checked in this order)."""

    ADMITTED = "admitted"
    """No covering constraint holds it back: start it (then call `ConstraintBook.started`)."""
    PAUSED = "paused"
    """A covering scope is paused."""
    CONCURRENCY = "concurrency"
    """A covering concurrency limit is reached by the tasks running inside its scope."""
    RATE_LIMITED = "rate_limited"
    """A covering rate limit does not allow another start inside its scope yet."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of `ConstraintBook.admit` for one task at one moment.

    - `verdict`: `AdmissionVerdict`; `allowed` is ``verdict is ADMITTED``.
    - `scopes`: the covering scopes holding the task back, broadest first (empty when admitted).
    - `wait_s`: seconds after which the answer can change by itself (a rate limit's next slot, or
      the blocking constraints' expiry): ask again then. ``0.0`` when admitted; ``None`` when only an
      event you will see can change it (a running task finishing, a new constraint message).
    - `reason`: one line for people, for example ``"paused by project:etl"``.
    """

    verdict: AdmissionVerdict
    scopes: tuple[str, ...] = ()
    wait_s: float | None = 0.0
    reason: str = "admitted"

    @property
    def allowed(self) -> bool:
        """Whether the task may start now."""
        return self.verdict is AdmissionVerdict.ADMITTED


@dataclass(frozen=True, slots=True, eq=False)
class RunningTask:
    """A task the engine started (from `ConstraintBook.started`); pass it to `finished` when it ends.

    `scopes` are the covering scopes it counts in (for concurrency limits); `started_at` is the
    book's clock (Unix seconds) at the start. Compared by identity: each start is its own.
    """

    task: str
    project: str | None
    scopes: tuple[str, ...]
    started_at: float
