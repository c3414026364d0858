"""The outbound pipeline without a broker: batching, the in-flight window, confirms, resend after a loss."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from cascade.connectors.mqtt._outbound import MAX_UNWRITTEN, Ack, AckKind, Outbound
from cascade.connectors.protocol import ConnectorError, ConnectorStats, NotConnectedError
from cascade.connectors.protocol.core import OutboundBuffer, Outgoing

LOG = logging.getLogger("test.mqtt.outbound")
SYNC = "$cascade/sync/test"


class Written:
    def __init__(self) -> None:
        self.done = False

    def is_published(self) -> bool:
        return self.done


class FakeWire:
    """Records what the pipeline hands over; message ids from 1."""

    def __init__(self) -> None:
        self.lost = False
        self.batches: list[list[str]] = []
        self.written: list[Written] = []
        self.qos1: dict[int, str] = {}
        self._mid = 0

    def send_qos0(self, batch: Sequence[tuple[str, bytes, bool, object]]) -> Written | None:
        if self.lost:
            return None
        self.batches.append([topic for topic, _data, _retain, _ack in batch])
        written = Written()
        self.written.append(written)
        return written

    def publish_qos1(self, topic: str, payload: bytes, retain: bool, expiry: int | None = None) -> int | None:
        if self.lost:
            return None
        self._mid += 1
        self.qos1[self._mid] = topic
        return self._mid

    def write_now(self) -> None:
        for written in self.written:
            written.done = True


def make(max_buffered: int = 100, receive_maximum: int = 20) -> tuple[Outbound, FakeWire, ConnectorStats]:
    stats = ConnectorStats()
    buffer: OutboundBuffer[Ack] = OutboundBuffer(max_buffered, stats, LOG)
    out = Outbound(buffer, SYNC, LOG, lambda c, t: None, lambda c: f"code {c}")
    wire = FakeWire()
    out.attach(wire, receive_maximum)
    return out, wire, stats


def q0(topic: str) -> Outgoing[Ack]:
    return Outgoing(topic, b"{}", False, None)


def q1(topic: str, loop: asyncio.AbstractEventLoop) -> tuple[Outgoing[Ack], asyncio.Future[None]]:
    future: asyncio.Future[None] = loop.create_future()
    return Outgoing(topic, b"{}", False, Ack(future, AckKind.USER)), future


def mid_of(wire: FakeWire, topic: str) -> int:
    return next(mid for mid, t in wire.qos1.items() if t == topic)


@pytest.mark.asyncio
async def test_qos0_goes_in_one_batch_then_a_confirm_clears_it() -> None:
    out, wire, _ = make()
    for n in range(10):
        out.buffer.append_qos0(q0(f"t/{n}"))
    out.flush()
    assert wire.batches == [[f"t/{n}" for n in range(10)]]
    assert list(wire.qos1.values()) == [SYNC]  # the confirm behind the batch
    assert len(out.unconfirmed) == 1
    out.published(mid_of(wire, SYNC), 0)
    assert len(out.unconfirmed) == 0
    assert out.confirm is None


@pytest.mark.asyncio
async def test_unwritten_batches_are_bounded() -> None:
    out, wire, _ = make(max_buffered=100_000)
    big = b"x" * (64 * 1024)
    for n in range(MAX_UNWRITTEN + 3):
        out.buffer.append_qos0(Outgoing(f"t/{n}", big, False, None))
    out.flush()
    assert len(wire.batches) == MAX_UNWRITTEN
    assert len(out.queue) == 3
    wire.write_now()
    out.flush()
    assert len(wire.batches) == MAX_UNWRITTEN + 3


@pytest.mark.asyncio
async def test_the_inflight_window_follows_receive_maximum() -> None:
    out, wire, _ = make(receive_maximum=2)
    loop = asyncio.get_running_loop()
    futures = []
    for n in range(5):
        entry, future = q1(f"c/{n}", loop)
        out.buffer.append_qos1(entry)
        futures.append(future)
    out.flush()
    assert list(wire.qos1.values()) == ["c/0", "c/1"]
    out.published(mid_of(wire, "c/0"), 0)
    assert futures[0].done()
    assert futures[0].result() is None
    out.flush()
    assert list(wire.qos1.values()) == ["c/0", "c/1", "c/2"]
    assert out.buffer.qos1_queued == 2


@pytest.mark.asyncio
async def test_a_refused_qos1_publish_raises_with_the_reason() -> None:
    out, wire, _ = make()
    entry, future = q1("ro/x", asyncio.get_running_loop())
    out.buffer.append_qos1(entry)
    out.flush()
    out.published(mid_of(wire, "ro/x"), 0x87)
    with pytest.raises(ConnectorError, match=r"refused the qos=1 publish to 'ro/x': code 135"):
        future.result()


@pytest.mark.asyncio
async def test_a_loss_puts_unconfirmed_batches_and_unacked_qos1_back_in_send_order() -> None:
    out, wire, stats = make()
    loop = asyncio.get_running_loop()
    out.buffer.append_qos0(q0("a"))
    out.buffer.append_qos0(q0("b"))
    out.flush()  # batch [a, b] and the confirm
    entry, future = q1("c", loop)
    out.buffer.append_qos1(entry)
    out.flush()
    out.buffer.append_qos0(q0("d"))  # published after, still queued
    wire.lost = True
    out.lost()
    assert [e.topic for e in out.queue] == ["a", "b", "c", "d"]
    assert out.buffer.qos1_queued == 1
    assert (len(out.inflight), len(out.unconfirmed), out.confirm) == (0, 0, None)
    second = FakeWire()
    out.attach(second, 20)
    out.flush()
    assert second.batches[0] == ["a", "b"]
    assert "c" in second.qos1.values()
    assert stats.dropped == 0
    assert not future.done()


@pytest.mark.asyncio
async def test_what_comes_back_after_a_loss_is_bounded_by_max_buffered() -> None:
    out, wire, stats = make(max_buffered=100)
    for n in range(150):  # handed over before the loss was noticed (never confirmed)
        out.buffer.append_qos0(q0(f"t/{n}"))
        if n % 50 == 49:
            out.flush()
    assert len(out.queue) == 0
    wire.lost = True
    out.lost()
    assert [e.topic for e in out.queue] == [f"t/{n}" for n in range(50, 150)]
    assert stats.dropped == 50


@pytest.mark.asyncio
async def test_finish_counts_what_never_went_out_and_fails_waiting_callers() -> None:
    out, wire, stats = make()
    wire.lost = True
    entry, future = q1("c", asyncio.get_running_loop())
    out.buffer.append_qos0(q0("a"))
    out.buffer.append_qos1(entry)
    out.lost()
    out.finish(stats)
    assert stats.dropped == 2
    with pytest.raises(NotConnectedError, match="acknowledged"):
        future.result()
    assert len(out.queue) == 0


@pytest.mark.asyncio
async def test_written_then_lost_unconfirmed_is_never_counted_dropped_at_finish() -> None:
    # A reset between the write and the broker's confirm (a network cut, not a graceful broker stop):
    # the messages go back to the queue to be sent again; if the session ends first, they may well
    # have arrived, so they are unconfirmed, not dropped (docs/contract.md, promise 12).
    out, wire, stats = make()
    loop = asyncio.get_running_loop()
    out.buffer.append_qos0(q0("a"))
    out.buffer.append_qos0(q0("b"))
    out.flush()
    entry, future = q1("c", loop)
    out.buffer.append_qos1(entry)
    out.flush()
    wire.write_now()  # a, b and c are on the wire
    out.buffer.append_qos0(q0("d"))  # queued, never written
    wire.lost = True
    out.lost()
    assert [e.topic for e in out.queue] == ["a", "b", "c", "d"]
    assert out.finish(stats) == (1, 3)
    assert (stats.dropped, stats.unconfirmed) == (1, 3)
    with pytest.raises(NotConnectedError):
        future.result()
    assert out.rewritten == {}


@pytest.mark.asyncio
async def test_a_message_written_again_is_no_longer_marked_as_written_before() -> None:
    out, wire, stats = make()
    out.buffer.append_qos0(q0("a"))
    out.flush()
    wire.write_now()
    wire.lost = True
    out.lost()
    assert len(out.rewritten) == 1
    second = FakeWire()
    out.attach(second, 20)
    out.flush()  # "a" goes out again on the new connection
    assert second.batches[0] == ["a"]
    assert out.rewritten == {}
    out.published(mid_of(second, SYNC), 0)  # confirmed there
    assert out.finish(stats) == (0, 0)


@pytest.mark.asyncio
async def test_a_batch_the_lost_wire_refused_stays_marked_as_written_before() -> None:
    out, wire, stats = make()
    out.buffer.append_qos0(q0("a"))
    out.flush()
    wire.write_now()
    wire.lost = True
    out.lost()
    out.attach(wire, 20)  # a connection that is already going away again
    out.flush()
    assert [e.topic for e in out.queue] == ["a"]
    assert out.finish(stats) == (0, 1)


@pytest.mark.asyncio
async def test_idle_waiter_resolves_once_everything_is_confirmed() -> None:
    out, wire, _ = make()
    loop = asyncio.get_running_loop()
    out.buffer.append_qos0(q0("a"))
    out.idle_waiter = loop.create_future()
    out.flush()
    assert not out.idle_waiter.done()  # the batch is not confirmed yet
    out.published(mid_of(wire, SYNC), 0)
    out.check_idle()
    assert out.idle_waiter.done()


@pytest.mark.asyncio
async def test_a_refused_marker_is_reported() -> None:
    stats = ConnectorStats()
    refused: list[tuple[int, str]] = []
    out = Outbound(OutboundBuffer(10, stats, LOG), SYNC, LOG, lambda c, t: refused.append((c, t)), str)
    wire = FakeWire()
    out.attach(wire, 20)
    out.send_control(Outgoing(SYNC, b"1", False, Ack(None, AckKind.MARKER, 1)))
    out.flush()
    out.published(mid_of(wire, SYNC), 0x87)
    assert refused == [(0x87, SYNC)]
