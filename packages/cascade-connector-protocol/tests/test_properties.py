"""Property tests: schema round trips, the index against topic_matches, the codec, the ConstraintBook."""

from __future__ import annotations

import unicodedata
from datetime import UTC
from typing import Any

import pytest
from cascade.connectors.protocol import (
    Constraint,
    ConstraintBook,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    StatusMessage,
    SubscriptionIndex,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    TopicError,
    UnknownEvent,
    constraint_topic,
    decode_payload,
    encode_payload,
    scope_from_topic,
    status_topic,
    telemetry_topic,
    topic_matches,
    validate_filter,
    validate_scope,
    validate_topic,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

# Modest, deterministic settings: the whole protocol suite must stay at a few seconds. No deadline:
# a shared CI machine must not turn a slow example into a failure.
FAST = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
STATEFUL = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- strategies --------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


def refused_by_mqtt(ch: str) -> bool:
    """The oracle for the topic grammar, written apart from its implementation (MQTT 5 §1.5.4)."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Cc", "Cs")  # C0, DEL, C1; lone surrogates
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE  # U+xFFFE and U+xFFFF in every plane
    )


non_empty_text = st.text(min_size=1, max_size=12)
segment = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="/+#:").filter(
        lambda ch: not refused_by_mqtt(ch)
    ),
    min_size=1,
    max_size=8,
).filter(lambda part: not part.isspace())
scopes = st.one_of(
    st.just("global"),
    st.builds(
        lambda kind, names: ":".join([kind, *names]), segment, st.lists(segment, min_size=1, max_size=3)
    ),
)
finite = st.floats(allow_nan=False, allow_infinity=False)
timestamps = st.builds(
    lambda dt, z: dt.isoformat().replace("+00:00", "Z") if z else dt.isoformat(),
    st.datetimes(timezones=st.just(UTC)),
    st.booleans(),
)

headers = st.builds(
    TelemetryHeader,
    v=st.sampled_from(["1.0", "1.1", "1.42", "1"]),
    ts=timestamps,
    run_id=non_empty_text,
    org_id=non_empty_text,
    project_id=non_empty_text,
    source=non_empty_text,
)
task_events = st.builds(
    TaskStateEvent,
    task_id=non_empty_text,
    task_name=non_empty_text,
    state=st.sampled_from(TaskState),
    duration_ms=st.floats(min_value=0, allow_nan=False, allow_infinity=False) | st.integers(0, 10**9),
    error=st.text(max_size=20),
    metadata=json_objects,
)
lifecycle_events = st.builds(LifecycleEvent, st.sampled_from(LifecycleEventType))
resource_events = st.builds(
    ResourceEvent, resource_name=non_empty_text, action=st.sampled_from(ResourceAction), current_usage=finite
)
unknown_events = st.builds(
    UnknownEvent,
    type=non_empty_text.filter(lambda t: t not in {"TaskStateEvent", "LifecycleEvent", "ResourceEvent"}),
    data=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "type"), json_values, max_size=4),
)
bodies = task_events | lifecycle_events | resource_events | unknown_events
messages = st.builds(TelemetryMessage, header=headers, body=bodies)

rates = st.builds(
    lambda n, frac, unit: f"{n}{frac}/{unit}",
    st.integers(1, 10_000),
    st.sampled_from(["", ".5", ".25"]),
    st.sampled_from("smh"),
)


def _constraints(scope_strategy: st.SearchStrategy[str], expiry: st.SearchStrategy[float | None]) -> Any:
    pause = st.builds(
        Constraint,
        id=non_empty_text,
        scope=scope_strategy,
        type=st.just(ConstraintType.PAUSE),
        params=json_objects,
        expires_at=expiry,
    )
    concurrency = st.builds(
        Constraint,
        id=non_empty_text,
        scope=scope_strategy,
        type=st.just(ConstraintType.CONCURRENCY),
        params=st.builds(lambda n: {"limit": n}, st.integers(1, 1000)),
        expires_at=expiry,
    )
    rate_limit = st.builds(
        Constraint,
        id=non_empty_text,
        scope=scope_strategy,
        type=st.just(ConstraintType.RATE_LIMIT),
        params=st.builds(lambda r: {"rate": r}, rates),
        expires_at=expiry,
    )
    return pause | concurrency | rate_limit


constraints = _constraints(scopes, st.none() | finite)
statuses = st.builds(
    StatusMessage, status=st.sampled_from(["online", "offline"]), source=non_empty_text, ts=timestamps
)

# --- schema round trips ------------------------------------------------------------------------------


@FAST
@given(headers)
def test_header_round_trip(header: TelemetryHeader) -> None:
    assert TelemetryHeader.from_dict(header.to_dict()) == header
    assert TelemetryHeader.from_dict(decode_payload(encode_payload(header.to_dict()))) == header


@FAST
@given(bodies)
def test_body_round_trip(body: TaskStateEvent | LifecycleEvent | ResourceEvent | UnknownEvent) -> None:
    cls = type(body)
    assert cls.from_dict(body.to_dict()) == body
    assert cls.from_dict(decode_payload(encode_payload(body.to_dict()))) == body


@FAST
@given(messages)
def test_telemetry_message_round_trip(message: TelemetryMessage) -> None:
    assert TelemetryMessage.from_dict(message.to_dict()) == message
    assert TelemetryMessage.from_dict(decode_payload(encode_payload(message.to_dict()))) == message


@FAST
@given(constraints)
def test_constraint_round_trip(constraint: Constraint) -> None:
    assert Constraint.from_dict(constraint.to_dict()) == constraint
    assert Constraint.from_dict(decode_payload(encode_payload(constraint.to_dict()))) == constraint


@FAST
@given(statuses)
def test_status_round_trip(status: StatusMessage) -> None:
    assert StatusMessage.from_dict(status.to_dict()) == status
    assert StatusMessage.from_dict(decode_payload(encode_payload(status.to_dict()))) == status


@FAST
@given(scopes)
def test_scope_topic_round_trip(scope: str) -> None:
    assert validate_scope(scope) == scope
    topic = constraint_topic(scope)
    assert scope_from_topic(topic) == scope
    assert topic_matches("cascade/constraints/#", topic)
    # The scope never adds wildcards, and adds exactly one topic level per ':'-separated part.
    assert "+" not in topic
    assert "#" not in topic
    assert topic.count("/") == 2 + scope.count(":")


# --- the topic grammar refuses what brokers refuse ------------------------------------------------------

# Any code point at all (lone surrogates included), weighted towards the refused ones and their neighbours.
boundary_characters = st.sampled_from(
    [chr(c) for c in (0x00, 0x09, 0x0A, 0x1F, 0x20, 0x7E, 0x7F, 0x85, 0x9F, 0xA0, 0xD800, 0xDFFF)]
    + [chr(c) for c in (0xFDCF, 0xFDD0, 0xFDEF, 0xFDF0, 0xFFFD, 0xFFFE, 0xFFFF, 0x1FFFE, 0x10FFFF)]
)
any_character = st.characters(exclude_categories=()) | st.characters(categories=["Cs"]) | boundary_characters
grammar_text = st.text(alphabet=any_character, min_size=1, max_size=12)
# The checks are cheap: more examples than FAST, to reach every class of refused code point.
GRAMMAR = settings(FAST, max_examples=300)


def first_refused(text: str) -> int:
    return next((i for i, ch in enumerate(text) if refused_by_mqtt(ch)), -1)


def assert_refusal_names(error: TopicError, text: str, index: int) -> None:
    assert f"U+{ord(text[index]):04X}" in error.problem
    assert f"at index {index}" in error.problem


@GRAMMAR
@given(grammar_text.filter(lambda t: "+" not in t and "#" not in t))
def test_topic_names_and_filters_refuse_exactly_the_refused_characters(text: str) -> None:
    index = first_refused(text)
    for validate in (validate_topic, validate_filter):
        if index < 0:
            assert validate(text) == text
            assert text.encode("utf-8")  # whatever passes is sendable
        else:
            with pytest.raises(TopicError) as info:
                validate(text)
            assert_refusal_names(info.value, text, index)


@GRAMMAR
@given(grammar_text.filter(lambda t: not any(ch in t for ch in "/+#:")))
def test_scope_parts_and_topic_parts_refuse_exactly_the_refused_characters(part: str) -> None:
    index = first_refused(part)
    scope = f"task:{part}"
    if index < 0 and not part.isspace():
        assert validate_scope(scope) == scope
        assert scope_from_topic(constraint_topic(scope)) == scope
    else:
        with pytest.raises(TopicError) as info:
            validate_scope(scope)
        assert info.value.kind == "scope"
        if index >= 0:
            assert_refusal_names(info.value, scope, index + len("task:"))
        else:
            assert "whitespace only" in info.value.problem
    if index < 0:
        assert status_topic(part) == f"cascade/status/{part}"
        assert telemetry_topic(part, part, part).count("/") == 5
    else:
        with pytest.raises(TopicError) as info:
            status_topic(part)
        assert_refusal_names(info.value, part, index)
        with pytest.raises(TopicError) as info:
            telemetry_topic("o", "p", part)
        assert info.value.kind == "run_id"


# --- codec ---------------------------------------------------------------------------------------------


@FAST
@given(json_objects)
def test_codec_round_trip(payload: dict[str, Any]) -> None:
    data = encode_payload(payload)
    assert (data == b"") == (payload == {})
    decoded = decode_payload(data)
    assert decoded == payload
    assert decoded is not payload


# --- SubscriptionIndex agrees with topic_matches ---------------------------------------------------------

topic_levels = st.sampled_from(["", "a", "b", "$x"])
topics = st.lists(topic_levels, min_size=1, max_size=4).map("/".join).filter(bool)
filter_levels = st.sampled_from(["", "a", "b", "$x", "+"])
filters = st.builds(
    lambda levels, multi: "/".join([*levels, "#"]) if multi else "/".join(levels) or "+",
    st.lists(filter_levels, min_size=0, max_size=3),
    st.booleans(),
)


@FAST
@given(
    subscriptions=st.lists(filters, min_size=1, max_size=12),
    probes=st.lists(topics, min_size=1, max_size=12),
    removed=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_index_agrees_with_topic_matches(
    subscriptions: list[str], probes: list[str], removed: list[bool]
) -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for i, topic_filter in enumerate(subscriptions):
        index.add(topic_filter, i)
    live = dict(enumerate(subscriptions))

    def check() -> None:
        for topic in probes:
            got = index.match(topic)
            assert len(got) == len(set(got))
            expected = {i for i, f in live.items() if topic_matches(f, topic)}
            assert set(got) == expected, (topic, live)

    check()
    for i in range(len(subscriptions)):
        if removed[i]:
            assert index.remove(i) is True
            del live[i]
    assert len(index) == len(live)
    check()


class IndexMachine(RuleBasedStateMachine):
    """Random add / re-add / remove sequences; every step, the index equals a scan with topic_matches."""

    def __init__(self) -> None:
        super().__init__()
        self.index: SubscriptionIndex[int] = SubscriptionIndex()
        self.model: dict[int, str] = {}

    @rule(value=st.integers(0, 7), topic_filter=filters)
    def add(self, value: int, topic_filter: str) -> None:
        self.index.add(topic_filter, value)
        self.model[value] = topic_filter

    @rule(value=st.integers(0, 7))
    def remove(self, value: int) -> None:
        assert self.index.remove(value) is (value in self.model)
        self.model.pop(value, None)

    @rule(topic=topics)
    def match(self, topic: str) -> None:
        got = self.index.match(topic)
        assert len(got) == len(set(got))
        assert set(got) == {v for v, f in self.model.items() if topic_matches(f, topic)}

    @precondition(lambda self: not self.model)
    @rule()
    def empty_index_is_pruned(self) -> None:
        assert self.index._root.is_empty()

    @invariant()
    def same_size_and_filters(self) -> None:
        assert len(self.index) == len(self.model)
        for value, topic_filter in self.model.items():
            assert value in self.index
            assert self.index.filter_of(value) == topic_filter


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = STATEFUL


# --- ConstraintBook -----------------------------------------------------------------------------------

BOOK_SCOPES = ["global", "project:p", "project:q", "task:a", "task:b", "team:x"]
book_constraints = _constraints(st.sampled_from(BOOK_SCOPES), st.none() | st.integers(0, 20).map(float))
TASKS = [("a", None), ("a", "p"), ("b", "q"), ("c", "p"), ("c", None)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class BookMachine(RuleBasedStateMachine):
    """Random set / clear / apply sequences and clock moves agree with a plain dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.book = ConstraintBook(clock=self.clock)
        self.model: dict[str, Constraint] = {}

    def live(self) -> dict[str, Constraint]:
        return {s: c for s, c in self.model.items() if not c.is_expired(self.clock.now)}

    @rule(constraint=book_constraints)
    def set(self, constraint: Constraint) -> None:
        self.book.set(constraint)
        self.model[constraint.scope] = constraint

    @rule(constraint=book_constraints)
    def apply(self, constraint: Constraint) -> None:
        stored = self.book.apply(constraint_topic(constraint.scope), constraint.to_dict())
        assert stored == constraint
        self.model[constraint.scope] = constraint

    @rule(scope=st.sampled_from(BOOK_SCOPES))
    def apply_empty(self, scope: str) -> None:
        assert self.book.apply(constraint_topic(scope), {}) is None
        self.model.pop(scope, None)

    @rule(scope=st.sampled_from(BOOK_SCOPES))
    def clear(self, scope: str) -> None:
        was_live = scope in self.live()
        assert self.book.clear(scope) is was_live
        self.model.pop(scope, None)

    @rule(step=st.integers(0, 6))
    def advance(self, step: int) -> None:
        self.clock.now += step

    @invariant()
    def agrees_with_model(self) -> None:
        live = self.live()
        assert self.book.active() == [live[s] for s in sorted(live)]
        assert len(self.book) == len(live)
        for scope in BOOK_SCOPES:
            assert self.book.get(scope) == live.get(scope)
        expiries = [c.expires_at for c in live.values() if c.expires_at is not None]
        assert self.book.next_expiry() == (min(expiries) if expiries else None)
        for task, project in TASKS:
            covering = ["global", f"task:{task}"] + ([f"project:{project}"] if project else [])
            in_force = [live[s] for s in covering if s in live]
            assert self.book.is_paused(task, project) == any(c.type is ConstraintType.PAUSE for c in in_force)
            limits = {c.scope: c.params["limit"] for c in in_force if c.type is ConstraintType.CONCURRENCY}
            assert self.book.concurrency_limits(task, project) == limits
            assert self.book.effective_concurrency(task, project) == (
                min(limits.values()) if limits else None
            )
            assert set(self.book.rate_limits(task, project)) == {
                c.scope for c in in_force if c.type is ConstraintType.RATE_LIMIT
            }
            # team:x applies only when passed explicitly.
            with_team = self.book.applicable(task, project, ["team:x"])
            assert [c.scope for c in with_team] == [
                s for s in [*self.book.covering_scopes(task, project), "team:x"] if s in live
            ]


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = STATEFUL


@FAST
@given(
    others=st.lists(book_constraints, max_size=6),
    task=non_empty_text,
    project=st.none() | non_empty_text,
    extra=st.lists(scopes, max_size=2),
)
def test_global_pause_pauses_every_task(
    others: list[Constraint], task: str, project: str | None, extra: list[str]
) -> None:
    book = ConstraintBook(clock=lambda: 0.0)
    for constraint in others:
        book.set(constraint)
    book.set(Constraint("g", "global", ConstraintType.PAUSE))
    assert book.is_paused(task, project, extra)


@FAST
@given(
    contents=st.lists(book_constraints, max_size=8),
    task=st.sampled_from(["a", "b", "c"]),
    project=st.sampled_from([None, "p", "q"]),
    extra=st.lists(st.sampled_from(BOOK_SCOPES), max_size=2),
)
def test_limits_come_only_from_covering_scopes_and_effective_is_the_min(
    contents: list[Constraint], task: str, project: str | None, extra: list[str]
) -> None:
    book = ConstraintBook(clock=lambda: 0.0)
    for constraint in contents:
        book.set(constraint)
    covering = set(book.covering_scopes(task, project, extra))
    limits = book.concurrency_limits(task, project, extra)
    rates = book.rate_limits(task, project, extra)
    assert set(limits) <= covering
    assert set(rates) <= covering
    assert all(c.scope in covering for c in book.applicable(task, project, extra))
    assert book.effective_concurrency(task, project, extra) == (min(limits.values()) if limits else None)
    assert book.effective_rate(task, project, extra) == (min(rates.values()) if rates else None)
    # One more covering limit can only lower (never raise) the effective limit: the most restrictive wins.
    before = book.effective_concurrency(task, project, extra)
    book.set(Constraint("extra", "team:y", ConstraintType.CONCURRENCY, {"limit": 5}))
    after = book.effective_concurrency(task, project, [*extra, "team:y"])
    assert after == (5 if before is None else min(before, 5))
    assert book.effective_concurrency(task, project, extra) == before
