"""The inbound queue (promise 13): the max_inbound bound, QoS 0 drops the oldest, exact counters."""

from __future__ import annotations

import logging

import pytest
from cascade.connectors.protocol import ConnectorStats
from cascade.connectors.protocol.core import InboundQueue
from hypothesis import given
from hypothesis import strategies as st

LOG = logging.getLogger("test.core.inbound")


def make(max_inbound: int) -> tuple[InboundQueue[tuple[str, int]], ConnectorStats]:
    stats = ConnectorStats()
    return InboundQueue(max_inbound, stats, LOG, "test", is_kept=lambda entry: entry[0] != "q0"), stats


def test_qos0_beyond_the_bound_drops_the_oldest_with_one_warning_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue, stats = make(100)
    with caplog.at_level(logging.WARNING, LOG.name):
        for n in range(150):
            queue.append(("q0", n))
    assert stats.dropped_inbound == 50
    assert [n for _kind, n in queue.queue] == list(range(50, 150))
    assert len([r for r in caplog.records if "inbound backlog full" in r.getMessage()]) == 1
    while queue.queue:
        queue.popleft()  # drained: the episode is over
    with caplog.at_level(logging.WARNING, LOG.name):
        for n in range(101):
            queue.append(("q0", n))
    assert len([r for r in caplog.records if "inbound backlog full" in r.getMessage()]) == 2


def test_kept_entries_are_never_dropped_and_make_room() -> None:
    queue, stats = make(3)
    queue.append(("q0", 0))
    queue.append_kept(("q1", 1))
    queue.append(("q0", 2))
    queue.append_kept(("q1", 3))  # full: the oldest QoS 0 makes room
    assert list(queue.queue) == [("q1", 1), ("q0", 2), ("q1", 3)]
    queue.append(("q0", 4))  # full: the oldest QoS 0 (2) goes
    assert list(queue.queue) == [("q1", 1), ("q1", 3), ("q0", 4)]
    queue.append_kept(("q1", 5))
    queue.append(("q0", 6))  # only kept entries are queued: the new QoS 0 message is the one dropped
    assert list(queue.queue) == [("q1", 1), ("q1", 3), ("q1", 5)]
    assert stats.dropped_inbound == 4
    assert queue.full


def test_discard_all_counts_what_it_discards() -> None:
    queue, stats = make(10)
    for n in range(4):
        queue.append(("q0", n))
    queue.append_kept(("control", 9))
    assert queue.discard_all(lambda entry: entry[0] != "control") == 4
    assert stats.dropped_inbound == 4
    assert not queue.queue


def test_max_inbound_is_checked() -> None:
    with pytest.raises(ValueError, match="max_inbound"):
        make(0)


@given(
    st.integers(min_value=1, max_value=8),
    st.lists(st.sampled_from(["q0", "q1", "pop"]), max_size=60),
)
def test_the_bound_and_the_counters_match_a_model(max_inbound: int, ops: list[str]) -> None:
    queue, stats = make(max_inbound)
    model: list[tuple[str, int]] = []
    dropped = delivered = 0
    for n, op in enumerate(ops):
        if op == "pop":
            if model:
                assert queue.popleft() == model.pop(0)
                delivered += 1
            continue
        entry = (op, n)
        if len(model) >= max_inbound:
            droppable = [i for i, e in enumerate(model) if e[0] == "q0"]
            if droppable:
                del model[droppable[0]]
                dropped += 1
            elif op == "q0":
                dropped += 1
                queue.append(entry)  # only kept entries are queued: this one is dropped
                assert list(queue.queue) == model
                continue
        model.append(entry)
        if op == "q0":
            queue.append(entry)
        else:
            queue.append_kept(entry)
        assert list(queue.queue) == model
    assert stats.dropped_inbound == dropped
    kept = sum(1 for op in ops if op == "q1")
    # never beyond the bound unless only never-dropped entries are queued
    assert len(queue) <= max(max_inbound, kept)
    assert delivered + len(queue) + dropped == sum(1 for op in ops if op != "pop")
    assert queue.kept == sum(1 for kind, _n in queue.queue if kind != "q0")
