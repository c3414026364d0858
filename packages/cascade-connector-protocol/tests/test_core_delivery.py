"""Delivery: fresh dicts, plain and async callbacks, isolation, the log record, exact counters."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from cascade.connectors.protocol import Callback, ConnectorStats
from cascade.connectors.protocol.core import Delivery, check_callback, invoke

LOG = logging.getLogger("test.core.delivery")


@dataclass
class Sub:
    callback: Callback
    topic_filter: str = "t/#"
    active: bool = True


@dataclass
class Sink:
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        self.got.append((topic, payload))


def make() -> tuple[Delivery, ConnectorStats]:
    stats = ConnectorStats()
    return Delivery(stats, LOG), stats


@pytest.mark.asyncio
async def test_each_callback_gets_a_fresh_dict() -> None:
    delivery, stats = make()
    a, b = Sink(), Sink()
    assert await delivery.deliver("t/1", b'{"x": [1]}', [Sub(a), Sub(b)])
    assert a.got == b.got == [("t/1", {"x": [1]})]
    assert a.got[0][1] is not b.got[0][1]
    assert stats.delivered == 2


@pytest.mark.asyncio
async def test_plain_functions_partials_and_async_call_objects_all_work() -> None:
    delivery, stats = make()
    seen: list[str] = []

    def plain(topic: str, payload: dict[str, Any]) -> None:
        seen.append("plain")

    async def coro(tag: str, topic: str, payload: dict[str, Any]) -> None:
        seen.append(tag)

    subs = [Sub(plain), Sub(functools.partial(coro, "partial")), Sub(Sink())]
    await delivery.deliver("t/1", b"{}", subs)
    assert seen == ["plain", "partial"]
    assert (stats.delivered, stats.callback_errors) == (3, 0)


@pytest.mark.asyncio
async def test_a_plain_function_returning_a_value_is_not_awaited() -> None:
    delivery, stats = make()
    await delivery.deliver("t/1", b"{}", [Sub(lambda topic, payload: 42)])  # type: ignore[arg-type,return-value]
    assert (stats.delivered, stats.callback_errors) == (1, 0)


@pytest.mark.asyncio
async def test_invoke_awaits_only_awaitables() -> None:
    calls: list[str] = []

    def plain(topic: str, payload: dict[str, Any]) -> None:
        calls.append(topic)

    await invoke(plain, "a", {})
    await invoke(Sink(), "b", {})
    assert calls == ["a"]


def test_check_callback_refuses_non_callables() -> None:
    check_callback(print)
    with pytest.raises(TypeError, match="callback must be callable"):
        check_callback("not a function")


@pytest.mark.asyncio
async def test_a_raising_callback_is_isolated_logged_once_with_the_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivery, stats = make()
    after = Sink()

    async def boom(topic: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    def plain_boom(topic: str, payload: dict[str, Any]) -> None:
        raise ValueError("plain boom")

    with caplog.at_level(logging.ERROR, LOG.name):
        await delivery.deliver("t/err", b"{}", [Sub(boom), Sub(plain_boom), Sub(after)])
    assert after.got == [("t/err", {})]
    assert (stats.delivered, stats.callback_errors) == (3, 2)
    records = [r for r in caplog.records if r.name == LOG.name]
    assert [r.getMessage() for r in records] == ["subscription callback for 't/err' raised"] * 2
    assert records[0].exc_info is not None
    assert getattr(records[0], "topic") == "t/err"  # noqa: B009
    assert getattr(records[0], "topic_filter") == "t/#"  # noqa: B009


@pytest.mark.asyncio
async def test_a_callbacks_own_cancellation_is_counted_not_propagated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivery, stats = make()
    after = Sink()

    async def cancels(topic: str, payload: dict[str, Any]) -> None:
        raise asyncio.CancelledError

    with caplog.at_level(logging.ERROR, LOG.name):
        await delivery.deliver("t/c", b"{}", [Sub(cancels), Sub(after)])
    assert len(after.got) == 1
    assert stats.callback_errors == 1
    assert [r.getMessage() for r in caplog.records if r.name == LOG.name] == [
        "subscription callback for 't/c' was cancelled"
    ]


@pytest.mark.asyncio
async def test_a_real_cancellation_of_the_task_propagates() -> None:
    delivery, stats = make()
    started = asyncio.Event()
    after = Sink()

    async def slow(topic: str, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(delivery.deliver("t/1", b"{}", [Sub(slow), Sub(after)]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after.got == []
    assert stats.callback_errors == 0


@pytest.mark.asyncio
async def test_malformed_is_counted_once_and_nobody_is_called(caplog: pytest.LogCaptureFixture) -> None:
    delivery, stats = make()
    a = Sink()
    with caplog.at_level(logging.WARNING, LOG.name):
        assert not await delivery.deliver("t/bad", b"[1]", [Sub(a), Sub(a)])
    assert a.got == []
    assert stats.malformed == 1
    assert stats.delivered == 0
    assert "'t/bad'" in caplog.text


@pytest.mark.asyncio
async def test_inactive_targets_and_a_closed_delivery_get_nothing() -> None:
    delivery, stats = make()
    a, b = Sink(), Sink()
    closer = Sub(Sink())

    async def close_it(topic: str, payload: dict[str, Any]) -> None:
        delivery.close()

    await delivery.deliver("t/1", b"{}", [Sub(a, active=False), Sub(close_it), Sub(b), closer])
    assert a.got == []
    assert b.got == []
    assert stats.delivered == 1
    assert not delivery.open
