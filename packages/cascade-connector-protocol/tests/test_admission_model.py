"""A hypothesis model of admission: ConstraintBook.admit agrees with a brute-force reading of the rules.

The model keeps the plain list of running tasks and of every start, and recomputes each answer from
them (no counters), so a bookkeeping slip in the book shows up as a disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass

from cascade.connectors.protocol import (
    AdmissionVerdict,
    Constraint,
    ConstraintBook,
    ConstraintType,
    RunningTask,
    parse_rate,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

SCOPES = ["global", "project:p", "project:q", "task:a", "task:b", "team:x"]
# (task, project, extra scopes)
TASKS: list[tuple[str, str | None, tuple[str, ...]]] = [
    ("a", None, ()),
    ("a", "p", ()),
    ("b", "q", ()),
    ("b", "p", ("team:x",)),
    ("c", "p", ()),
]


@st.composite
def _constraint(draw: st.DrawFn) -> Constraint:
    kind = draw(st.sampled_from(list(ConstraintType)))
    params: dict[str, object] = {}
    if kind is ConstraintType.CONCURRENCY:
        params = {"limit": draw(st.integers(1, 3))}
    elif kind is ConstraintType.RATE_LIMIT:
        params = {"rate": draw(st.sampled_from(["1/s", "2/s", "4/s", "30/m", "3/m"]))}
    # expires_at here is an offset from the clock's now (see AdmissionMachine.constrain).
    offset = draw(st.none() | st.sampled_from([0.5, 1.0, 3.0, 8.0, 20.0]))
    return Constraint("m", draw(st.sampled_from(SCOPES)), kind, params, offset)


STATEFUL = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Start:
    task: str
    project: str | None
    extras: tuple[str, ...]
    at: float


def covering(task: str, project: str | None, extras: tuple[str, ...]) -> list[str]:
    scopes = ["global"] + ([f"project:{project}"] if project is not None else []) + [f"task:{task}"]
    return scopes + [s for s in extras if s not in scopes]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class AdmissionMachine(RuleBasedStateMachine):
    running_tasks = Bundle("running_tasks")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.book = ConstraintBook(clock=self.clock)
        self.constraints: dict[str, Constraint] = {}
        self.running: list[tuple[RunningTask, Start]] = []
        self.starts: list[Start] = []

    # -- the world changes ---------------------------------------------------------------------------

    @rule(constraint=_constraint())
    def constrain(self, constraint: Constraint) -> None:
        expires = None if constraint.expires_at is None else self.clock.now + constraint.expires_at
        placed = Constraint(constraint.id, constraint.scope, constraint.type, constraint.params, expires)
        self.book.set(placed)
        self.constraints[placed.scope] = placed

    @rule(scope=st.sampled_from(SCOPES))
    def resume(self, scope: str) -> None:
        self.book.clear(scope)
        self.constraints.pop(scope, None)

    @rule(step=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0]))
    def advance(self, step: float) -> None:
        self.clock.now += step

    @rule(target=running_tasks, index=st.integers(0, len(TASKS) - 1), force=st.booleans())
    def start(self, index: int, force: bool) -> RunningTask | None:
        """An engine starts a task when admitted (or, `force`, overrides the book)."""
        task, project, extras = TASKS[index]
        if not force and not self.book.admit(task, project, extras).allowed:
            return None
        running = self.book.started(task, project, extras)
        start = Start(task, project, extras, self.clock.now)
        assert running.scopes == tuple(covering(task, project, extras))
        assert running.started_at == self.clock.now
        self.running.append((running, start))
        self.starts.append(start)
        return running

    @rule(running=consumes(running_tasks))
    def finish(self, running: RunningTask | None) -> None:
        if running is None:
            return
        entry = next(e for e in self.running if e[0] is running)
        self.running.remove(entry)
        assert self.book.finished(running)
        assert not self.book.finished(running)

    # -- the book agrees with the brute-force model ---------------------------------------------------

    def live(self) -> dict[str, Constraint]:
        return {s: c for s, c in self.constraints.items() if not c.is_expired(self.clock.now)}

    def inside(self, scope: str) -> int:
        return sum(1 for _, s in self.running if scope in covering(s.task, s.project, s.extras))

    @invariant()
    def running_counts_agree(self) -> None:
        assert self.book.running() == len(self.running)
        for scope in SCOPES:
            assert self.book.running(scope) == self.inside(scope)

    @invariant()
    def admission_agrees(self) -> None:
        now = self.clock.now
        live = self.live()
        for task, project, extras in TASKS:
            answer = self.book.admit(task, project, extras)
            in_force = [live[s] for s in covering(task, project, extras) if s in live]
            pauses = [c for c in in_force if c.type is ConstraintType.PAUSE]
            full = [
                c
                for c in in_force
                if c.type is ConstraintType.CONCURRENCY and self.inside(c.scope) >= c.params["limit"]
            ]
            slow: dict[str, float] = {}
            for c in in_force:
                if c.type is not ConstraintType.RATE_LIMIT:
                    continue
                last = max(
                    (s.at for s in self.starts if c.scope in covering(s.task, s.project, s.extras)),
                    default=None,
                )
                if last is not None and now < last + 1.0 / parse_rate(c.params["rate"]):
                    due = last + 1.0 / parse_rate(c.params["rate"])
                    slow[c.scope] = (due if c.expires_at is None else min(due, c.expires_at)) - now
            if pauses or full:
                blocking = pauses or full
                verdict = AdmissionVerdict.PAUSED if pauses else AdmissionVerdict.CONCURRENCY
                assert answer.verdict is verdict
                assert answer.scopes == tuple(c.scope for c in blocking)
                ends = [c.expires_at for c in blocking]
                if any(end is None for end in ends):
                    assert answer.wait_s is None
                else:
                    assert answer.wait_s == max(0.0, max(e for e in ends if e is not None) - now)
            elif slow:
                assert answer.verdict is AdmissionVerdict.RATE_LIMITED
                assert answer.scopes == tuple(slow)
                assert answer.wait_s == max(slow.values())
                assert answer.wait_s is not None
                assert answer.wait_s > 0
            else:
                assert answer.allowed
                assert answer.wait_s == 0.0


TestAdmissionMachine = AdmissionMachine.TestCase
TestAdmissionMachine.settings = STATEFUL
