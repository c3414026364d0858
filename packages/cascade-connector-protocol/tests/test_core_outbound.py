"""The outbound buffer: overflow policy and counters, against a model (hypothesis)."""

from __future__ import annotations

import logging

import pytest
from cascade.connectors.protocol import ConnectorStats
from cascade.connectors.protocol.core import OutboundBuffer, Outgoing
from hypothesis import given
from hypothesis import strategies as st

LOG = logging.getLogger("test.core.outbound")


def make(max_buffered: int) -> tuple[OutboundBuffer[int], ConnectorStats]:
    stats = ConnectorStats()
    return OutboundBuffer(max_buffered, stats, LOG, "test"), stats


def q0(n: int) -> Outgoing[int]:
    return Outgoing(f"t/{n}", str(n).encode(), False, None)


def q1(n: int) -> Outgoing[int]:
    return Outgoing(f"t/{n}", str(n).encode(), True, n)


def test_outgoing_is_named_and_unpacks_as_four_fields() -> None:
    entry = q1(3)
    topic, data, retain, ack = entry
    assert (topic, data, retain, ack) == ("t/3", b"3", True, 3)
    assert (entry.qos, q0(1).qos) == (1, 0)


def test_full_buffer_drops_the_oldest_qos0_exactly(caplog: pytest.LogCaptureFixture) -> None:
    buf, stats = make(100)
    with caplog.at_level(logging.WARNING, LOG.name):
        for n in range(150):
            assert buf.append_qos0(q0(n))
    assert stats.dropped == 50
    assert [e.topic for e in buf.queue] == [f"t/{n}" for n in range(50, 150)]
    warnings = [r for r in caplog.records if "outbound buffer full" in r.getMessage()]
    assert len(warnings) == 1  # one per episode
    buf.new_episode()
    with caplog.at_level(logging.WARNING, LOG.name):
        buf.append_qos0(q0(999))
    assert len([r for r in caplog.records if "outbound buffer full" in r.getMessage()]) == 2


def test_qos1_is_never_dropped_and_may_exceed_the_bound() -> None:
    buf, stats = make(2)
    buf.append_qos1(q1(1))
    buf.append_qos1(q1(2))
    buf.append_qos1(q1(3))
    assert (len(buf), buf.qos1_queued, stats.dropped) == (3, 3, 0)
    assert not buf.append_qos0(q0(4))  # only QoS 1 queued: the new QoS 0 message is the one dropped
    assert (len(buf), stats.dropped) == (3, 1)
    assert not buf.make_room()


def test_make_room_skips_qos1_at_the_front() -> None:
    buf, stats = make(3)
    buf.append_qos1(q1(1))
    buf.append_qos0(q0(2))
    buf.append_qos0(q0(3))
    buf.append_qos0(q0(4))
    assert [e.topic for e in buf.queue] == ["t/1", "t/3", "t/4"]
    assert stats.dropped == 1


def test_popleft_push_front_and_take_all_keep_qos1_count() -> None:
    buf, _ = make(10)
    buf.append_qos1(q1(1))
    buf.append_qos0(q0(2))
    first = buf.popleft()
    second = buf.popleft()
    assert buf.qos1_queued == 0
    buf.push_front([first, second])
    assert [e.topic for e in buf.queue] == ["t/1", "t/2"]
    assert buf.qos1_queued == 1
    assert buf.take_all() == [first, second]
    assert (len(buf), buf.qos1_queued, bool(buf)) == (0, 0, False)
    with pytest.raises(IndexError):
        buf.popleft()
    assert "0/10" in repr(buf)


def test_entries_put_back_respect_the_bound_dropping_the_oldest_qos0() -> None:
    buf, stats = make(3)
    taken = [q0(1), q1(2), q0(3)]
    buf.append_qos0(q0(4))
    buf.append_qos0(q0(5))
    buf.push_front(taken)  # five entries for three places: the two oldest QoS 0 go
    assert [e.topic for e in buf.queue] == ["t/2", "t/4", "t/5"]
    assert (stats.dropped, buf.qos1_queued) == (2, 1)


def test_max_buffered_is_checked() -> None:
    with pytest.raises(ValueError, match="max_buffered must be at least 1"):
        make(0)


ops = st.lists(st.one_of(st.just("q0"), st.just("q1"), st.just("pop")), max_size=120)


@given(st.integers(1, 12), ops)
def test_counters_match_a_model(max_buffered: int, script: list[str]) -> None:
    buf, stats = make(max_buffered)
    model: list[tuple[int, int]] = []  # (n, qos)
    dropped = 0
    for n, op in enumerate(script):
        if op == "pop":
            if model:
                model.pop(0)
                buf.popleft()
            continue
        qos = 1 if op == "q1" else 0
        if len(model) >= max_buffered:
            oldest = next((i for i, (_, q) in enumerate(model) if q == 0), None)
            if oldest is not None:
                del model[oldest]
                dropped += 1
            elif qos == 0:
                dropped += 1
                assert not buf.append_qos0(q0(n))
                continue
        model.append((n, qos))
        if qos:
            buf.append_qos1(q1(n))
        else:
            assert buf.append_qos0(q0(n))
        assert len(buf) <= max(max_buffered, sum(q for _, q in model))
    assert [e.topic for e in buf.queue] == [f"t/{n}" for n, _ in model]
    assert buf.qos1_queued == sum(q for _, q in model)
    assert stats.dropped == dropped
