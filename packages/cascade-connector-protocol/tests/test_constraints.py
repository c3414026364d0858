"""ConstraintBook: feeding it from constraint topics, coverage, expiry, and the answers for a task."""

from __future__ import annotations

from typing import Any

import pytest
from cascade.connectors.protocol import (
    Callback,
    Constraint,
    ConstraintBook,
    ConstraintType,
    SchemaError,
    TopicError,
    constraint_topic,
)
from cascade.connectors.protocol.core import invoke


class FakeClock:
    """A clock an engine test moves by hand (Unix seconds)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pause(scope: str, expires_at: float | None = None, cid: str = "p") -> Constraint:
    return Constraint(cid, scope, ConstraintType.PAUSE, {}, expires_at)


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


# --- apply -------------------------------------------------------------------------------------------


def test_apply_stores_and_returns_the_constraint(book: ConstraintBook) -> None:
    wire = concurrency("task:api_call", 2).to_dict()
    stored = book.apply("cascade/constraints/task/api_call", wire)
    assert stored == concurrency("task:api_call", 2)
    assert book.get("task:api_call") == stored
    assert len(book) == 1


def test_apply_replaces_the_scope_constraint(book: ConstraintBook) -> None:
    topic = constraint_topic("global")
    book.apply(topic, pause("global").to_dict())
    book.apply(topic, concurrency("global", 3).to_dict())
    assert book.get("global") == concurrency("global", 3)
    assert len(book) == 1


def test_apply_empty_payload_clears(book: ConstraintBook) -> None:
    topic = constraint_topic("project:etl")
    book.apply(topic, pause("project:etl").to_dict())
    assert book.apply(topic, {}) is None
    assert book.get("project:etl") is None
    assert len(book) == 0
    assert book.apply(topic, {}) is None  # clearing nothing is fine


@pytest.mark.parametrize(
    ("topic", "payload_scope"),
    [
        ("cascade/constraints/task/a", "task:b"),
        ("cascade/constraints/global", "task:a"),
        ("cascade/constraints/task/a", "global"),
        ("cascade/constraints/task/a/b", "task:a"),
    ],
)
def test_apply_refuses_a_payload_for_another_scope(
    book: ConstraintBook, topic: str, payload_scope: str
) -> None:
    book.set(pause("task:a", cid="before"))
    with pytest.raises(SchemaError) as info:
        book.apply(topic, pause(payload_scope, cid="after").to_dict())
    assert info.value.field == "scope"
    assert book.active() == [pause("task:a", cid="before")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "x"}, "scope"),
        ({"id": "x", "scope": "task:a", "type": "bogus"}, "type"),
        ({"id": "x", "scope": "task:a", "type": "concurrency", "params": {"limit": 0}}, "params.limit"),
        ({"id": "x", "scope": "task:a", "type": "rate_limit", "params": {"rate": "fast"}}, "params.rate"),
        ({"scope": "task:a", "type": "pause"}, "id"),
        ({"id": "x", "scope": "task:a/b", "type": "pause"}, "scope"),
    ],
)
def test_apply_refuses_bad_payloads_and_leaves_the_book_unchanged(
    book: ConstraintBook, payload: dict[str, Any], field: str
) -> None:
    book.set(pause("task:a"))
    with pytest.raises(SchemaError) as info:
        book.apply("cascade/constraints/task/a", payload)
    assert info.value.field == field
    assert book.active() == [pause("task:a")]


def test_apply_refuses_non_mapping_payload(book: ConstraintBook) -> None:
    with pytest.raises(SchemaError):
        book.apply("cascade/constraints/global", [])  # type: ignore[arg-type]
    assert len(book) == 0


@pytest.mark.parametrize(
    "topic",
    [
        "cascade/status/w1",
        "cascade/constraints",
        "cascade/constraints/task",
        "cascade/constraints/task/+",
        "cascade/constraints/#",
        "",
    ],
)
def test_apply_refuses_non_constraint_topics(book: ConstraintBook, topic: str) -> None:
    book.set(pause("global"))
    with pytest.raises(TopicError):
        book.apply(topic, {})
    with pytest.raises(TopicError):
        book.apply(topic, pause("global").to_dict())
    assert book.active() == [pause("global")]


@pytest.mark.asyncio
async def test_on_message_is_a_connector_callback(book: ConstraintBook) -> None:
    callback: Callback = book.on_message  # type-checked: fits Connector.subscribe
    await invoke(callback, "cascade/constraints/global", pause("global").to_dict())
    assert book.is_paused("any")
    await book.on_message("cascade/constraints/global", {})
    assert not book.is_paused("any")
    with pytest.raises(SchemaError):
        await book.on_message("cascade/constraints/global", {"id": "x"})


# --- set / clear / get / active ----------------------------------------------------------------------


def test_set_get_clear(book: ConstraintBook) -> None:
    book.set(pause("task:a"))
    assert book.get("task:a") == pause("task:a")
    assert "task:a" in book
    assert book.clear("task:a") is True
    assert book.clear("task:a") is False
    assert book.get("task:a") is None
    assert "task:a" not in book


def test_set_refuses_non_constraints(book: ConstraintBook) -> None:
    with pytest.raises(SchemaError) as info:
        book.set(pause("global").to_dict())  # type: ignore[arg-type]
    assert info.value.field == "constraint"


@pytest.mark.parametrize("scope", ["task", "task:a/b", "", "task:#"])
def test_get_and_clear_validate_the_scope(book: ConstraintBook, scope: str) -> None:
    with pytest.raises(TopicError):
        book.get(scope)
    with pytest.raises(TopicError):
        book.clear(scope)


def test_contains_with_non_str_is_false(book: ConstraintBook) -> None:
    book.set(pause("global"))
    assert 1 not in book
    assert None not in book


def test_active_is_sorted_by_scope(book: ConstraintBook) -> None:
    for scope in ["task:z", "global", "project:p", "task:a", "team:x"]:
        book.set(pause(scope))
    assert [c.scope for c in book.active()] == ["global", "project:p", "task:a", "task:z", "team:x"]
    assert [c.scope for c in book] == ["global", "project:p", "task:a", "task:z", "team:x"]
    assert len(book) == 5


def test_repr_is_short(book: ConstraintBook) -> None:
    book.set(pause("global"))
    assert repr(book) == "ConstraintBook(1 in force)"


# --- coverage and answers ------------------------------------------------------------------------------


def test_covering_scopes() -> None:
    assert ConstraintBook.covering_scopes("t") == ["global", "task:t"]
    assert ConstraintBook.covering_scopes("t", "p") == ["global", "project:p", "task:t"]
    assert ConstraintBook.covering_scopes("t", "p", ["team:x", "global", "team:x"]) == [
        "global",
        "project:p",
        "task:t",
        "team:x",
    ]
    assert ConstraintBook.covering_scopes("t", None, "team:x") == ["global", "task:t", "team:x"]


def test_global_pause_pauses_every_task(book: ConstraintBook) -> None:
    assert not book.is_paused("a")
    book.set(pause("global"))
    assert book.is_paused("a")
    assert book.is_paused("b", "p")
    assert book.is_paused("c", "q", ["team:x"])


def test_project_pause_only_covers_that_project(book: ConstraintBook) -> None:
    book.set(pause("project:etl"))
    assert book.is_paused("load", "etl")
    assert not book.is_paused("load", "other")
    assert not book.is_paused("load")  # no project given


def test_task_pause_only_covers_that_task_name(book: ConstraintBook) -> None:
    book.set(pause("task:api_call"))
    assert book.is_paused("api_call")
    assert book.is_paused("api_call", "any-project")
    assert not book.is_paused("api_call_2")
    assert not book.is_paused("other")


def test_other_scopes_apply_only_when_passed_explicitly(book: ConstraintBook) -> None:
    book.set(pause("team:data"))
    assert book.get("team:data") is not None
    assert book.active() == [pause("team:data")]
    assert not book.is_paused("t", "p")
    assert book.is_paused("t", "p", ["team:data"])
    assert book.is_paused("t", extra_scopes="team:data")


def test_task_names_that_cannot_form_a_scope_match_nothing(book: ConstraintBook) -> None:
    book.set(pause("task:a:b"))
    assert book.is_paused("a:b")  # ':' in a name is fine, the scope is task:a:b
    assert not book.is_paused("a/b")
    assert not book.is_paused("")
    assert book.applicable("x/+/#", "p/q") == []


def test_applicable_lists_every_covering_constraint_broadest_first(book: ConstraintBook) -> None:
    book.set(concurrency("task:t", 2))
    book.set(pause("project:p"))
    book.set(rate("global", "10/s"))
    book.set(pause("task:other"))
    assert [c.scope for c in book.applicable("t", "p")] == ["global", "project:p", "task:t"]
    assert [c.scope for c in book.applicable("t")] == ["global", "task:t"]


def test_concurrency_limits_only_include_covering_scopes(book: ConstraintBook) -> None:
    book.set(concurrency("global", 50))
    book.set(concurrency("project:etl", 10))
    book.set(concurrency("task:load", 3))
    book.set(concurrency("task:other", 1))
    book.set(concurrency("project:other", 1))
    book.set(concurrency("team:x", 2))
    assert book.concurrency_limits("load", "etl") == {"global": 50, "project:etl": 10, "task:load": 3}
    assert book.concurrency_limits("load") == {"global": 50, "task:load": 3}
    assert book.concurrency_limits("extract", "etl") == {"global": 50, "project:etl": 10}
    assert book.concurrency_limits("extract", "etl", ["team:x"]) == {
        "global": 50,
        "project:etl": 10,
        "team:x": 2,
    }
    assert book.effective_concurrency("load", "etl") == 3
    assert book.effective_concurrency("extract", "etl") == 10
    assert book.effective_concurrency("extract", "etl", ["team:x"]) == 2
    assert book.effective_concurrency("extract", "elsewhere") == 50


def test_effective_concurrency_is_none_without_limits(book: ConstraintBook) -> None:
    book.set(pause("task:t"))
    book.set(rate("global", "1/s"))
    assert book.concurrency_limits("t") == {}
    assert book.effective_concurrency("t") is None


def test_rate_limits_are_in_starts_per_second(book: ConstraintBook) -> None:
    book.set(rate("global", "100/h"))
    book.set(rate("project:p", "5/m"))
    book.set(rate("task:t", "10/s"))
    book.set(rate("task:u", "1/s"))
    assert book.rate_limits("t", "p") == pytest.approx(
        {"global": 100 / 3600, "project:p": 5 / 60, "task:t": 10.0}
    )
    assert book.effective_rate("t", "p") == pytest.approx(100 / 3600)
    assert book.rate_limits("v") == pytest.approx({"global": 100 / 3600})
    book.clear("global")
    assert book.effective_rate("v") is None
    assert book.effective_rate("u") == 1.0


def test_all_covering_constraints_apply_at_once(book: ConstraintBook) -> None:
    # A narrower scope never lifts a broader one: a task concurrency of 100 does not override a
    # global pause, and the tightest limit wins whatever its scope.
    book.set(pause("global"))
    book.set(concurrency("task:t", 100))
    book.set(concurrency("project:p", 4))
    assert book.is_paused("t", "p")
    assert book.effective_concurrency("t", "p") == 4
    book.clear("global")
    assert not book.is_paused("t", "p")


# --- expiry ------------------------------------------------------------------------------------------


def test_expired_constraints_are_ignored(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(pause("global", expires_at=1_010.0))
    assert book.is_paused("t")
    assert book.get("global") is not None
    clock.now = 1_009.999
    assert book.is_paused("t")
    clock.now = 1_010.0  # now >= expires_at: expired
    assert not book.is_paused("t")
    assert book.get("global") is None
    assert "global" not in book
    assert book.active() == []
    assert len(book) == 0


def test_expired_constraints_are_purged(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(pause("task:a", expires_at=1_005.0))
    book.set(concurrency("task:b", 2, expires_at=1_001.0))
    book.set(rate("task:c", "1/s"))
    clock.now = 1_002.0
    assert book.purge() == [concurrency("task:b", 2, expires_at=1_001.0)]
    assert book.purge() == []
    assert [c.scope for c in book.active()] == ["task:a", "task:c"]
    clock.now = 2_000.0
    assert [c.scope for c in book.purge()] == ["task:a"]
    assert len(book) == 1


def test_expired_constraint_is_not_in_force_when_cleared(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(pause("global", expires_at=1_001.0))
    clock.now = 1_001.0
    assert book.clear("global") is False


def test_constraint_arriving_already_expired_has_no_effect(book: ConstraintBook) -> None:
    stored = book.apply("cascade/constraints/global", pause("global", expires_at=1.0).to_dict())
    assert stored is not None
    assert book.get("global") is None
    assert not book.is_paused("t")


def test_expiry_only_affects_its_own_scope(book: ConstraintBook, clock: FakeClock) -> None:
    book.set(concurrency("global", 5, expires_at=1_100.0))
    book.set(concurrency("task:t", 8))
    assert book.effective_concurrency("t") == 5
    clock.now = 1_100.0
    assert book.effective_concurrency("t") == 8
    assert book.concurrency_limits("t") == {"task:t": 8}


def test_next_expiry(book: ConstraintBook, clock: FakeClock) -> None:
    assert book.next_expiry() is None
    book.set(pause("task:a"))
    assert book.next_expiry() is None
    book.set(pause("task:b", expires_at=1_050.0))
    book.set(pause("task:c", expires_at=1_020.0))
    assert book.next_expiry() == 1_020.0
    clock.now = 1_020.0
    assert book.next_expiry() == 1_050.0
    clock.now = 1_050.0
    assert book.next_expiry() is None
    assert [c.scope for c in book.active()] == ["task:a"]


def test_default_clock_is_wall_time() -> None:
    book = ConstraintBook()
    book.set(pause("global", expires_at=1.0))  # 1970: long expired
    book.set(pause("task:t", expires_at=4_102_444_800.0))  # 2100
    assert book.get("global") is None
    assert book.get("task:t") is not None
