"""ConstraintBook.admit / started / finished / running: may a task start now, and when may it."""

from __future__ import annotations

import pytest
from cascade.connectors.protocol import (
    Admission,
    AdmissionVerdict,
    Constraint,
    ConstraintBook,
    ConstraintType,
    TopicError,
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pause(scope: str, expires_at: float | None = None) -> Constraint:
    return Constraint("p", scope, ConstraintType.PAUSE, {}, expires_at)


def concurrency(scope: str, limit: int, expires_at: float | None = None) -> Constraint:
    return Constraint("c", scope, ConstraintType.CONCURRENCY, {"limit": limit}, expires_at)


def rate(scope: str, value: str, expires_at: float | None = None) -> Constraint:
    return Constraint("r", scope, ConstraintType.RATE_LIMIT, {"rate": value}, expires_at)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def book(clock: FakeClock) -> ConstraintBook:
    return ConstraintBook(clock=clock)


def test_nothing_in_force_admits(book: ConstraintBook) -> None:
    admission = book.admit("load", project="etl")
    assert admission == Admission(AdmissionVerdict.ADMITTED)
    assert admission.allowed
    assert admission.scopes == ()
    assert admission.wait_s == 0.0


def test_a_covering_pause_holds_the_task(book: ConstraintBook) -> None:
    book.set(pause("project:etl"))
    admission = book.admit("load", project="etl")
    assert not admission.allowed
    assert admission.verdict is AdmissionVerdict.PAUSED
    assert admission.scopes == ("project:etl",)
    assert admission.wait_s is None  # no expiry: only a resume can change it
    assert admission.reason == "paused by project:etl"
    assert book.admit("load", project="other").allowed
    assert book.admit("load").allowed  # no project: project scopes do not cover it


def test_every_covering_pause_is_named_and_the_wait_is_until_the_last_expires(
    book: ConstraintBook, clock: FakeClock
) -> None:
    book.set(pause("global", expires_at=clock.now + 5))
    book.set(pause("task:load", expires_at=clock.now + 30))
    admission = book.admit("load", project="etl")
    assert admission.scopes == ("global", "task:load")
    assert admission.wait_s == pytest.approx(30.0)
    assert admission.reason == "paused by global, task:load"
    book.set(pause("project:etl"))  # no expiry
    assert book.admit("load", project="etl").wait_s is None


def test_a_pause_that_expired_no_longer_holds(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(pause("task:load", expires_at=clock.now + 2))
    assert book.admit("load").verdict is AdmissionVerdict.PAUSED
    clock.now += 2
    assert book.admit("load").allowed


def test_an_extra_scope_covers_only_when_passed(book: ConstraintBook) -> None:
    book.set(pause("team:data"))
    assert book.admit("load").allowed
    assert book.admit("load", extra_scopes=["team:data"]).scopes == ("team:data",)
    assert book.admit("load", extra_scopes="team:data").verdict is AdmissionVerdict.PAUSED


def test_concurrency_counts_the_running_tasks_inside_the_scope(book: ConstraintBook) -> None:
    book.set(concurrency("project:etl", 2))
    first = book.started("extract", project="etl")
    assert book.admit("load", project="etl").allowed
    book.started("load", project="etl")
    admission = book.admit("transform", project="etl")
    assert admission.verdict is AdmissionVerdict.CONCURRENCY
    assert admission.scopes == ("project:etl",)
    assert admission.wait_s is None
    assert admission.reason == "project:etl has 2 running, its limit is 2"
    assert book.admit("transform", project="other").allowed  # another pool
    assert book.finished(first)
    assert book.admit("transform", project="etl").allowed


def test_separate_pools_each_cap_their_own_scope(book: ConstraintBook) -> None:
    # project:etl at 4 and task:load at 1: a second load waits; other tasks of etl do not.
    book.set(concurrency("project:etl", 4))
    book.set(concurrency("task:load", 1))
    book.started("load", project="etl")
    held = book.admit("load", project="etl")
    assert held.verdict is AdmissionVerdict.CONCURRENCY
    assert held.scopes == ("task:load",)
    assert book.admit("extract", project="etl").allowed
    for _ in range(3):
        book.started("extract", project="etl")
    both = book.admit("load", project="etl")
    assert both.scopes == ("project:etl", "task:load")
    assert book.running("project:etl") == 4
    assert book.running("task:load") == 1
    assert book.running("task:extract") == 3
    assert book.running("global") == 4
    assert book.running() == 4


def test_a_limit_arriving_later_sees_what_already_runs(book: ConstraintBook) -> None:
    for _ in range(3):
        book.started("load", project="etl")
    book.set(concurrency("global", 3))
    assert book.admit("anything").verdict is AdmissionVerdict.CONCURRENCY


def test_concurrency_wait_is_the_limit_expiry(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(concurrency("task:load", 1, expires_at=clock.now + 12.5))
    book.started("load")
    assert book.admit("load").wait_s == pytest.approx(12.5)


def test_finished_twice_or_from_another_book_is_harmless(book: ConstraintBook) -> None:
    running = book.started("load", project="etl")
    assert running.scopes == ("global", "project:etl", "task:load")
    assert running.started_at == 1_000.0
    assert book.finished(running)
    assert not book.finished(running)
    assert book.running() == 0
    assert book.running("project:etl") == 0
    assert not ConstraintBook().finished(book.started("load"))
    assert book.running() == 1


def test_two_starts_of_one_task_are_two_running_tasks(book: ConstraintBook) -> None:
    one = book.started("load")
    two = book.started("load")
    assert one != two
    assert book.running("task:load") == 2
    book.finished(one)
    assert book.running("task:load") == 1


def test_rate_limit_spaces_starts_evenly(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(rate("task:load", "30/m"))  # one start every 2 s
    assert book.admit("load").allowed  # nothing started yet
    book.finished(book.started("load"))
    clock.now += 0.5
    admission = book.admit("load")
    assert admission.verdict is AdmissionVerdict.RATE_LIMITED
    assert admission.scopes == ("task:load",)
    assert admission.wait_s == pytest.approx(1.5)
    assert admission.reason == "rate limit of task:load allows the next start in 1.50 s"
    assert book.admit("extract").allowed  # other tasks are outside task:load
    clock.now += 1.5
    assert book.admit("load").allowed


def test_rate_limit_counts_starts_before_it_arrived(book: ConstraintBook, clock: FakeClock) -> None:
    book.started("load", project="etl")
    book.set(rate("project:etl", "1/s"))
    clock.now += 0.25
    assert book.admit("extract", project="etl").wait_s == pytest.approx(0.75)


def test_rate_wait_is_the_longest_of_the_blocking_limits(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(rate("global", "2/s"))
    book.set(rate("task:load", "6/m"))
    book.started("load")
    clock.now += 0.1
    admission = book.admit("load")
    assert admission.scopes == ("global", "task:load")
    assert admission.wait_s == pytest.approx(9.9)
    clock.now += 0.4
    assert book.admit("load").scopes == ("task:load",)
    assert book.admit("other").allowed


def test_rate_wait_ends_at_the_limit_expiry(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(rate("task:load", "1/h", expires_at=clock.now + 60))
    book.started("load")
    assert book.admit("load").wait_s == pytest.approx(60.0)
    clock.now += 60
    assert book.admit("load").allowed


def test_pause_is_reported_before_concurrency_and_rate(book: ConstraintBook) -> None:
    book.set(concurrency("task:load", 1))
    book.set(rate("project:etl", "1/h"))
    book.started("load", project="etl")
    assert book.admit("load", project="etl").verdict is AdmissionVerdict.CONCURRENCY
    book.set(pause("global"))
    assert book.admit("load", project="etl").verdict is AdmissionVerdict.PAUSED
    book.clear("global")
    book.clear("task:load")
    assert book.admit("load", project="etl").verdict is AdmissionVerdict.RATE_LIMITED


def test_admit_changes_nothing(book: ConstraintBook) -> None:
    book.set(concurrency("task:load", 1))
    for _ in range(3):
        assert book.admit("load").allowed
    assert book.running() == 0


def test_running_refuses_an_invalid_scope(book: ConstraintBook) -> None:
    with pytest.raises(TopicError):
        book.running("task:a/b")


def test_admission_repr_names_the_verdict() -> None:
    assert "PAUSED" in repr(Admission(AdmissionVerdict.PAUSED, ("global",), None, "paused by global"))
