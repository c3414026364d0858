"""The shared core's small parts: state machine, backoff, settings checks, guard, presence, topic cache."""

from __future__ import annotations

import math
import os
import random

import pytest
from cascade.connectors.protocol import (
    ConnectorError,
    StatusMessage,
    TopicError,
    decode_payload,
    validate_topic,
)
from cascade.connectors.protocol.core import (
    Backoff,
    ConnectorState,
    ContextGuard,
    IllegalTransitionError,
    Presence,
    ReentryError,
    StateMachine,
    TopicCache,
    check_delay_range,
    check_int,
    check_seconds,
    default_source,
    host_segment,
)
from hypothesis import given
from hypothesis import strategies as st

S = ConnectorState


def test_the_lifecycle_walks_its_legal_path() -> None:
    machine = StateMachine()
    assert machine.state is S.IDLE
    assert not machine.accepting
    for state in (S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CONNECTED, S.CLOSING, S.IDLE):
        machine.to(state)
        assert machine.state is state
    machine.to(S.CONNECTING)
    machine.to(S.IDLE)  # the first connection failed


@pytest.mark.parametrize(
    ("start", "wanted"),
    [
        ([], S.CONNECTED),
        ([], S.CLOSING),
        ([S.CONNECTING], S.RECONNECTING),
        ([S.CONNECTING, S.CONNECTED], S.IDLE),
        ([S.CONNECTING, S.CONNECTED, S.CLOSING], S.CONNECTED),
    ],
)
def test_an_illegal_transition_is_an_internal_error(
    start: list[ConnectorState], wanted: ConnectorState
) -> None:
    machine = StateMachine()
    for state in start:
        machine.to(state)
    before = machine.state
    with pytest.raises(IllegalTransitionError) as info:
        machine.to(wanted)
    assert isinstance(info.value, ConnectorError)
    assert (info.value.current, info.value.wanted) == (before, wanted)
    assert machine.state is before


def test_accepting_while_connected_or_reconnecting() -> None:
    machine = StateMachine()
    seen = []
    for state in (S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.CLOSING):
        machine.to(state)
        seen.append(machine.accepting)
    assert seen == [False, True, True, False]


@given(st.floats(0.0, 5.0), st.floats(0.001, 10.0), st.integers(0, 2**32 - 1))
def test_backoff_stays_between_min_and_a_doubling_cap(low: float, span: float, seed: int) -> None:
    high = low + span
    backoff = Backoff(low, high, rng=random.Random(seed))
    for attempt in range(40):
        delay = backoff.next_delay()
        cap = min(high, low * 2.0 ** min(attempt, 32))
        assert low <= delay <= max(cap, low)
    assert backoff.attempts == 40
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() <= max(min(high, low), low)


def test_backoff_is_jittered_and_reaches_the_cap() -> None:
    backoff = Backoff(0.1, 1.0, rng=random.Random(7))
    for _ in range(10):
        backoff.next_delay()
    later = [backoff.next_delay() for _ in range(200)]
    assert len(set(later)) > 150  # jitter: not one fixed delay
    assert max(later) > 0.9
    assert min(later) >= 0.1


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (float("nan"), 1.0, "reconnect_min_delay must be finite"),
        (0.1, float("nan"), "reconnect_max_delay must be finite"),
        (0.1, float("inf"), "reconnect_max_delay must be finite"),
        (-1, 1.0, "reconnect_min_delay must be at least 0"),
        (0.0, 0.0, "reconnect_max_delay must be more than 0"),
        (2.0, 1.0, "must be at least reconnect_min_delay"),
        (True, 1.0, "must be a number of seconds, not bool"),
        ("1", 1.0, "must be a number of seconds, not str"),
    ],
)
def test_delay_ranges_are_checked(low: object, high: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_delay_range(low, high)
    with pytest.raises(ValueError, match=message):
        Backoff(low, high)  # type: ignore[arg-type]


def test_seconds_and_ints() -> None:
    assert check_seconds("flush_timeout", 0) == 0.0
    assert isinstance(check_seconds("flush_timeout", 2), float)
    for bad in (float("nan"), math.inf, -math.inf):
        with pytest.raises(ValueError, match="flush_timeout must be finite"):
            check_seconds("flush_timeout", bad)
    with pytest.raises(ValueError, match="connect_timeout must be more than 0"):
        check_seconds("connect_timeout", 0.0, positive=True)
    with pytest.raises(ValueError, match="flush_timeout must be at least 0, not -1"):
        check_seconds("flush_timeout", -1)
    assert check_int("port", 1, 1, 65535) == 1
    with pytest.raises(ValueError, match="port must be between 1 and 65535, not 0"):
        check_int("port", 0, 1, 65535)
    with pytest.raises(ValueError, match="max_buffered must be at least 1, not 0"):
        check_int("max_buffered", 0, 1)
    with pytest.raises(ValueError, match="must be an int, not bool"):
        check_int("max_buffered", True, 1)
    with pytest.raises(ValueError, match="must be an int, not float"):
        check_int("max_buffered", 1.0, 1)


def test_the_guard_is_reusable_but_not_reentrant() -> None:
    guard = ContextGuard("Widget")
    inside = [guard.inside]
    guard.check()
    guard.enter()
    inside.append(guard.inside)
    with pytest.raises(ReentryError, match="Widget is not re-entrant") as info:
        guard.check()
    assert isinstance(info.value, ConnectorError)
    with pytest.raises(ReentryError):
        guard.enter()
    guard.exit()
    inside.append(guard.inside)
    guard.enter()  # reusable
    inside.append(guard.inside)
    assert inside == [False, True, False, True]


def test_default_sources_are_unique_valid_and_carry_the_pid() -> None:
    sources = {default_source() for _ in range(50)}
    assert len(sources) == 50
    for source in sources:
        Presence(source)  # a valid topic level
        assert f"-{os.getpid()}-" in source
    assert default_source("abc").endswith(f"-{os.getpid()}-abc")
    assert host_segment("a/b+c#d\x00e f") == "a_b_c_d_e_f"
    assert host_segment("") == "host"


def test_presence_payloads() -> None:
    presence = Presence("worker-1")
    assert presence.topic == "cascade/status/worker-1"
    online = StatusMessage.from_dict(decode_payload(presence.online()))
    offline = StatusMessage.from_dict(decode_payload(presence.offline()))
    assert (online.status, online.source) == ("online", "worker-1")
    assert (offline.status, offline.source) == ("offline", "worker-1")
    assert "worker-1" in repr(presence)
    with pytest.raises(TopicError):
        Presence("a/b")


def test_topic_cache_validates_once_and_stays_bounded() -> None:
    cache = TopicCache(limit=3)
    for topic in ("a", "b", "c", "d"):
        cache.add(topic)
        assert topic in cache.known
    assert len(cache.known) <= 3
    with pytest.raises(TopicError):
        cache.add("a/+")
    assert "a/+" not in cache.known


@pytest.mark.parametrize(
    "name", ["a/b", "a+b", "a#b", "a b", "a\tb", "a\x00b", "a\x85b", "a\ud800b", "a\ufffeb", "a\U0010ffffb"]
)
def test_host_segment_makes_any_host_name_one_valid_topic_level(name: str) -> None:
    segment = host_segment(name)
    assert segment == "a_b"
    validate_topic(f"cascade/status/{segment}")
