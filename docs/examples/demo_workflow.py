"""The demo's simulated workflow: chains of extract -> transform -> api_call -> load tasks.

Durations are random but the same for one seed; about one task in thirteen fails, and the tasks
downstream of a failure are skipped (`expected_outcome` says how the run must end).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cascade.connectors.protocol import TaskState

STAGES = ("extract", "transform", "api_call", "load")
ERRORS = {
    "extract": "source table locked (SQLSTATE 55P03)",
    "transform": "ValueError: column 'amount' has 3 nulls",
    "api_call": "HTTP 503 from https://api.example.com/v2/orders",
    "load": "disk quota exceeded on /warehouse",
}
_FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of the simulated workflow: `duration` in seconds, `depends_on` a task id or None."""

    task_id: str
    name: str
    duration: float
    fails: bool
    depends_on: str | None

    @property
    def error(self) -> str:
        """The error text the task fails with ("" when it does not fail)."""
        return ERRORS[self.name] if self.fails else ""


def make_workflow(n_tasks: int, seed: int, speed: float = 1.0) -> list[TaskSpec]:
    """Chains of extract -> transform -> api_call -> load, `n_tasks` in all, the same for one `seed`.

    About one task in thirteen fails (at least one); durations are 0.4-1.5 s divided by `speed`.
    """
    rng = random.Random(seed)
    ids: list[tuple[str, str, str | None]] = []
    for chain in range(math.ceil(n_tasks / len(STAGES))):
        previous: str | None = None
        for stage in STAGES[: n_tasks - len(ids)]:
            ids.append((f"{stage}-{chain + 1:02d}", stage, previous))
            previous = ids[-1][0]
    failing = set(rng.sample(range(n_tasks), max(1, n_tasks // 13)))
    return [
        TaskSpec(task_id, name, round(rng.uniform(0.4, 1.5) / speed, 4), i in failing, depends_on)
        for i, (task_id, name, depends_on) in enumerate(ids)
    ]


def expected_outcome(workflow: Sequence[TaskSpec]) -> dict[str, int]:
    """Final task state -> count, as the engine must end (failed tasks skip their downstream)."""
    states: dict[str, TaskState] = {}
    for spec in workflow:  # dependencies come first in the list
        upstream = states.get(spec.depends_on) if spec.depends_on else TaskState.COMPLETED
        if upstream is not TaskState.COMPLETED:
            states[spec.task_id] = TaskState.SKIPPED
        else:
            states[spec.task_id] = TaskState.FAILED if spec.fails else TaskState.COMPLETED
    counts = Counter(states.values())
    return {state.value: counts[state] for state in _FINAL}
