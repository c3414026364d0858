"""Unit tests of the in-memory fake: delivery, retained state, inspection, fault injection, stats."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from cascade.connectors.protocol import (
    ConnectionFailedError,
    Connector,
    ConnectorError,
    NotConnectedError,
    PayloadError,
    StatusMessage,
    TopicError,
    status_topic,
)
from cascade.connectors.testing import (
    InMemoryBroker,
    InMemoryConnector,
    PublishRecord,
    Recorder,
    SettleTimeoutError,
    eventually,
)

FAST: dict[str, Any] = {"reconnect_min_delay": 0.001, "reconnect_max_delay": 0.01}


def online(connector: InMemoryConnector) -> bool:
    """`connector.connected`, read through a call so that mypy does not narrow it across awaits."""
    return connector.connected


def make(broker: InMemoryBroker, source: str, **options: Any) -> InMemoryConnector:
    return InMemoryConnector(broker, source=source, **{**FAST, **options})


# ---------------------------------------------------------------------------------------- basics


@pytest.mark.asyncio
async def test_connector_implements_the_protocol_and_round_trips(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a") as a, make(memory_broker, "b") as b:
        assert isinstance(a, Connector)
        received = Recorder()
        await b.subscribe("t/+", received)
        await a.publish("t/1", {"n": 1})
        await a.publish("t/2", {"n": 2}, qos=1)
        await memory_broker.settle()
        assert received.messages == [("t/1", {"n": 1}), ("t/2", {"n": 2})]


@pytest.mark.asyncio
async def test_publish_returns_before_delivery() -> None:
    """The fake is asynchronous like a real connector: qos 0 only queues."""
    broker = InMemoryBroker()
    async with make(broker, "a") as a:
        received = Recorder()
        await a.subscribe("t", received)
        await a.publish("t", {"n": 1})
        assert received.messages == []
        await broker.settle()
        assert received.payloads == [{"n": 1}]


@pytest.mark.asyncio
async def test_a_connector_without_a_broker_gets_a_private_one() -> None:
    first, second = InMemoryConnector(), InMemoryConnector()
    assert first.broker is not second.broker
    joined = InMemoryConnector(broker=first.broker)
    assert joined.broker is first.broker


@pytest.mark.asyncio
async def test_brokers_are_isolated_worlds() -> None:
    one, two = InMemoryBroker(), InMemoryBroker()
    async with make(one, "a") as a, make(two, "b") as b:
        heard = Recorder()
        await b.subscribe("#", heard)
        await a.publish("t", {"n": 1}, qos=1, retain=True)
        await one.settle()
        await two.settle()
        assert "t" in one.retained
        assert "t" not in two.retained
        assert [r.topic for r in two.history] == [status_topic("b")]
        assert heard.topics == [status_topic("b")]


def test_default_sources_are_unique_and_valid() -> None:
    sources = {InMemoryConnector().source for _ in range(20)}
    assert len(sources) == 20
    for source in sources:
        status_topic(source)


def test_constructor_validates_options() -> None:
    with pytest.raises(ValueError):
        InMemoryConnector(max_buffered=0)
    with pytest.raises(ValueError):
        InMemoryConnector(reconnect_min_delay=2.0, reconnect_max_delay=1.0)
    with pytest.raises(ValueError):
        InMemoryConnector(flush_timeout=-1)
    with pytest.raises(TopicError):
        InMemoryConnector(source="bad/source")


@pytest.mark.asyncio
async def test_repr_shows_state_and_no_internals() -> None:
    broker = InMemoryBroker()
    connector = make(broker, "worker-1")
    assert repr(connector) == "InMemoryConnector(source='worker-1', disconnected, subscriptions=0)"
    async with connector:
        await connector.subscribe("t", Recorder())
        assert repr(connector) == "InMemoryConnector(source='worker-1', connected, subscriptions=1)"
        assert repr(broker).startswith("InMemoryBroker(running, connections=1, retained=1")
        await broker.stop()
        assert "reconnecting" in repr(connector)
        assert repr(broker).startswith("InMemoryBroker(stopped")
        await broker.start()


@pytest.mark.asyncio
async def test_context_manager_is_reusable_but_not_reentrant() -> None:
    connector = make(InMemoryBroker(), "a")
    async with connector:
        assert online(connector)
        with pytest.raises(ConnectorError, match="re-entrant"):
            async with connector:
                pass
        assert online(connector)
    assert not online(connector)
    async with connector:
        assert online(connector)


@pytest.mark.asyncio
async def test_connect_while_the_broker_is_stopped_fails_as_unreachable() -> None:
    broker = InMemoryBroker()
    await broker.stop()
    connector = make(broker, "a")
    with pytest.raises(ConnectionFailedError) as info:
        await connector.connect()
    assert info.value.reason == "unreachable"
    with pytest.raises(NotConnectedError):
        await connector.publish("t", {})


# ----------------------------------------------------------------------------- retained, history


@pytest.mark.asyncio
async def test_retained_is_a_read_only_snapshot(memory_connector: InMemoryConnector) -> None:
    broker = memory_connector.broker
    await memory_connector.publish("r", {"v": 1}, qos=1, retain=True)
    snapshot = broker.retained
    assert snapshot["r"] == {"v": 1}
    with pytest.raises(TypeError):
        snapshot["r"] = {}  # type: ignore[index]
    await memory_connector.publish("r", {"v": 2}, qos=1, retain=True)
    assert snapshot["r"] == {"v": 1}
    assert broker.retained["r"] == {"v": 2}
    await memory_connector.publish("r", {}, qos=1, retain=True)
    assert "r" not in broker.retained


@pytest.mark.asyncio
async def test_inject_empty_retained_clears_and_malformed_retained_is_only_raw(
    memory_connector: InMemoryConnector,
) -> None:
    broker = memory_connector.broker
    await memory_connector.publish("r", {"v": 1}, qos=1, retain=True)
    await broker.inject("r", b"", retain=True)
    assert "r" not in broker.retained
    await broker.inject("bad", b"\xff", retain=True)
    assert "bad" not in broker.retained
    assert broker.retained_raw["bad"] == b"\xff"


@pytest.mark.asyncio
async def test_history_records_every_accepted_publish(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a") as a:
        await a.publish("t", {"n": 1})
        await a.publish("r", {"n": 2}, qos=1, retain=True)
        await memory_broker.inject("x", b'{"n": 3}', retain=True)
        await memory_broker.inject("x", b"not json")
        await memory_broker.settle()
        history = memory_broker.history
    assert history[0].topic == status_topic("a")
    assert StatusMessage.from_dict(history[0].payload).status == "online"
    assert history[1:4] == [
        PublishRecord("t", {"n": 1}, 0, False, "a"),
        PublishRecord("r", {"n": 2}, 1, True, "a"),
        PublishRecord("x", {"n": 3}, 0, True, None),
    ]
    assert len(history) == 4
    final = memory_broker.history[-1]
    assert (final.topic, final.payload["status"], final.retain) == (status_topic("a"), "offline", True)
    with pytest.raises(AttributeError):
        final.topic = "changed"  # type: ignore[misc]
    memory_broker.clear_history()
    assert memory_broker.history == []


@pytest.mark.asyncio
async def test_history_can_be_switched_off() -> None:
    broker = InMemoryBroker(keep_history=False)
    async with make(broker, "a") as a:
        await a.publish("t", {"n": 1}, qos=1)
    assert broker.history == []


# -------------------------------------------------------------------------------------- delivery


@pytest.mark.asyncio
async def test_inject_reaches_subscribers_and_malformed_is_counted(
    memory_connector: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    broker = memory_connector.broker
    received = Recorder()
    await memory_connector.subscribe("in/#", received)
    await broker.inject("in/a", b"\xff\xfe")
    await broker.inject("in/a", b"[1]")
    await broker.inject("in/a", b'{"ok": 1}')
    await broker.inject("in/a", b"")
    await broker.settle()
    assert received.payloads == [{"ok": 1}, {}]
    assert memory_connector.stats.malformed == 2
    warnings = [r for r in caplog.records if r.name == "cascade.connectors.testing"]
    assert len(warnings) == 2
    assert all("'in/a'" in r.getMessage() for r in warnings)


@pytest.mark.asyncio
async def test_inject_checks_its_arguments(memory_broker: InMemoryBroker) -> None:
    with pytest.raises(TopicError):
        await memory_broker.inject("a/#", b"{}")
    with pytest.raises(PayloadError):
        await memory_broker.inject("a", "text")  # type: ignore[arg-type]
    await memory_broker.stop()
    with pytest.raises(ConnectorError, match="stopped"):
        await memory_broker.inject("a", b"{}")


@pytest.mark.asyncio
async def test_callback_errors_are_logged_with_the_topic_and_counted(
    memory_connector: InMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_topic: str, _payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    healthy = Recorder()
    await memory_connector.subscribe("t", broken)
    await memory_connector.subscribe("t", healthy)
    await memory_connector.publish("t", {"n": 1})
    await memory_connector.publish("t", {"n": 2})
    await memory_connector.broker.settle()
    assert healthy.payloads == [{"n": 1}, {"n": 2}]
    stats = memory_connector.stats
    assert (stats.delivered, stats.callback_errors) == (4, 2)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "'t'" in errors[0].getMessage()
    assert errors[0].exc_info is not None


@pytest.mark.asyncio
async def test_overlapping_subscriptions_get_fresh_dicts_once(memory_connector: InMemoryConnector) -> None:
    got: list[dict[str, Any]] = []

    async def keep(_topic: str, payload: dict[str, Any]) -> None:
        got.append(payload)

    for topic_filter in ("a/#", "a/+", "a/b", "a/b"):
        await memory_connector.subscribe(topic_filter, keep)
    await memory_connector.publish("a/b", {"x": [1]})
    await memory_connector.broker.settle()
    assert got == [{"x": [1]}] * 4
    assert len({id(p) for p in got}) == 4
    assert len({id(p["x"]) for p in got}) == 4


@pytest.mark.asyncio
async def test_subscribe_from_inside_a_callback_replays_retained_inline(
    memory_connector: InMemoryConnector,
) -> None:
    await memory_connector.publish("state", {"paused": True}, qos=1, retain=True)
    inner = Recorder("inner")
    seen_at_return: list[int] = []

    async def subscribe_more(_topic: str, _payload: dict[str, Any]) -> None:
        await memory_connector.subscribe("state", inner)
        seen_at_return.append(len(inner))

    await memory_connector.subscribe("go", subscribe_more)
    await memory_connector.publish("go", {})
    await memory_connector.broker.settle()
    assert seen_at_return == [1]
    assert inner.payloads == [{"paused": True}]


@pytest.mark.asyncio
async def test_disconnect_from_inside_a_callback_stops_further_callbacks(
    memory_broker: InMemoryBroker,
) -> None:
    publisher = make(memory_broker, "p")
    subscriber = make(memory_broker, "s")
    await publisher.connect()
    await subscriber.connect()
    calls: list[int] = []

    async def stop_on_first(_topic: str, payload: dict[str, Any]) -> None:
        calls.append(payload["i"])
        await subscriber.disconnect()

    await subscriber.subscribe("t", stop_on_first)
    for i in range(5):
        await publisher.publish("t", {"i": i})
    await memory_broker.settle()
    assert calls == [0]
    assert not online(subscriber)
    assert memory_broker.retained[status_topic("s")]["status"] == "offline"
    await publisher.disconnect()


@pytest.mark.asyncio
async def test_a_tight_publish_loop_while_connected_drops_nothing(memory_broker: InMemoryBroker) -> None:
    """A connected publisher yields to its sender when its queue grows: no overflow, no task per message."""
    async with (
        make(memory_broker, "p", max_buffered=1000) as publisher,
        make(memory_broker, "s") as subscriber,
    ):
        count = 0

        async def counter(_topic: str, _payload: dict[str, Any]) -> None:
            nonlocal count
            count += 1

        await subscriber.subscribe("t", counter)
        tasks_before = len(asyncio.all_tasks())
        most_tasks = tasks_before
        for i in range(20_000):
            await publisher.publish("t", {"i": i})
            if i % 1000 == 0:
                most_tasks = max(most_tasks, len(asyncio.all_tasks()))
        await memory_broker.settle()
        assert count == 20_000
        assert publisher.stats.dropped == 0
        assert most_tasks == tasks_before


# ------------------------------------------------------------------------------------------ settle


@pytest.mark.asyncio
async def test_settle_waits_for_chains_of_deliveries(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a") as a, make(memory_broker, "b") as b:
        final = Recorder()

        async def relay(_topic: str, payload: dict[str, Any]) -> None:
            await a.publish("second", {"hop": payload["hop"] + 1})

        await a.subscribe("first", relay)
        await b.subscribe("second", final)
        await b.publish("first", {"hop": 1})
        await memory_broker.settle()
        assert final.payloads == [{"hop": 2}]


@pytest.mark.asyncio
async def test_settle_times_out_naming_what_is_busy(memory_connector: InMemoryConnector) -> None:
    release = asyncio.Event()

    async def stuck(_topic: str, _payload: dict[str, Any]) -> None:
        await release.wait()

    await memory_connector.subscribe("slow/topic", stuck)
    await memory_connector.publish("slow/topic", {})
    with pytest.raises(SettleTimeoutError, match="callback running on 'slow/topic'") as info:
        await memory_connector.broker.settle(timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    release.set()
    await memory_connector.broker.settle()


@pytest.mark.asyncio
async def test_settle_during_an_outage_returns_and_after_start_waits_for_reconnect(
    memory_broker: InMemoryBroker,
) -> None:
    async with make(memory_broker, "a") as a:
        received = Recorder()
        await a.subscribe("t", received)
        await memory_broker.stop()
        await a.publish("t", {"n": 1})
        await memory_broker.settle()
        assert received.payloads == []
        await memory_broker.start()
        await memory_broker.settle()
        assert received.payloads == [{"n": 1}]
        assert a.stats.reconnects == 1


# ------------------------------------------------------------------------------------------ faults


@pytest.mark.asyncio
async def test_outage_buffers_drops_oldest_and_resends_in_order(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a", max_buffered=100) as a, make(memory_broker, "b") as b:
        received = Recorder()
        await b.subscribe("t", received)
        await a.publish("keep", {"v": 1}, qos=1, retain=True)
        await memory_broker.stop()
        assert not online(a)
        assert memory_broker.connected == ()
        for i in range(150):
            await a.publish("t", {"i": i})
        assert a.stats.dropped == 50
        await memory_broker.start()
        await memory_broker.settle()
        assert [p["i"] for p in received.payloads] == list(range(50, 150))
        assert memory_broker.retained["keep"] == {"v": 1}
        assert (a.stats.published, a.stats.reconnects, b.stats.reconnects) == (151, 1, 1)
        assert set(memory_broker.connected) == {a, b}


@pytest.mark.asyncio
async def test_qos1_is_never_dropped_by_overflow(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a", max_buffered=2) as a:
        received = Recorder()
        await a.subscribe("t", received)
        await memory_broker.stop()
        controls = [asyncio.ensure_future(a.publish("t", {"q": i}, qos=1)) for i in range(3)]
        await eventually(lambda: a.stats.published == 3)  # queued; they cannot finish while it is down
        await a.publish("t", {"i": 0})
        assert a.stats.dropped == 1
        assert not any(c.done() for c in controls)
        await memory_broker.start()
        await asyncio.gather(*controls)
        await memory_broker.settle()
        assert received.payloads == [{"q": 0}, {"q": 1}, {"q": 2}]


@pytest.mark.asyncio
async def test_subscribe_during_outage_returns_and_replays_after_start(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "a") as a:
        await a.publish("r", {"v": 1}, qos=1, retain=True)
        await memory_broker.stop()
        received = Recorder()
        await a.subscribe("r", received)
        assert received.payloads == []
        await memory_broker.start()
        await memory_broker.settle()
        assert received.payloads == [{"v": 1}]


@pytest.mark.asyncio
async def test_drop_fires_the_last_will_and_the_connector_comes_back(memory_broker: InMemoryBroker) -> None:
    async with make(memory_broker, "worker") as worker, make(memory_broker, "observer") as observer:
        statuses = Recorder()
        await observer.subscribe(status_topic("worker"), statuses)
        await memory_broker.drop(worker)
        assert not online(worker)
        assert memory_broker.retained[status_topic("worker")]["status"] == "offline"
        await memory_broker.settle()
        assert [p["status"] for p in statuses.payloads] == ["online", "offline", "online"]
        assert online(worker)
        assert worker.stats.reconnects == 1
        will = [r for r in memory_broker.history if r.payload.get("status") == "offline"]
        assert [(r.source, r.retain, r.qos) for r in will] == [("worker", True, 1)]
        await memory_broker.drop(worker)
        await memory_broker.stop()
        await memory_broker.drop(worker)  # not connected: a no-op
        await memory_broker.start()


@pytest.mark.asyncio
async def test_drop_rejects_a_connector_of_another_broker(memory_broker: InMemoryBroker) -> None:
    with pytest.raises(ValueError):
        await memory_broker.drop(InMemoryConnector())


@pytest.mark.asyncio
async def test_disconnect_during_outage_gives_up_after_flush_timeout(memory_broker: InMemoryBroker) -> None:
    connector = make(memory_broker, "a", flush_timeout=0.01)
    await connector.connect()
    await memory_broker.stop()
    await connector.publish("t", {"n": 1})
    pending = asyncio.ensure_future(connector.publish("t", {"n": 2}, qos=1))
    await eventually(lambda: connector.stats.published == 2)
    await connector.disconnect()
    with pytest.raises(NotConnectedError):
        await pending
    assert connector.stats.dropped == 2
    await memory_broker.start()
    await memory_broker.settle()
    assert memory_broker.retained[status_topic("a")]["status"] == "online"  # never said goodbye


@pytest.mark.asyncio
async def test_concurrent_disconnects_both_wait_for_the_end(memory_broker: InMemoryBroker) -> None:
    connector = make(memory_broker, "a")
    await connector.connect()
    await asyncio.gather(connector.disconnect(), connector.disconnect())
    assert memory_broker.retained[status_topic("a")]["status"] == "offline"
    assert [r.payload["status"] for r in memory_broker.history] == ["online", "offline"]


@pytest.mark.asyncio
async def test_close_disconnects_every_connector(memory_broker: InMemoryBroker) -> None:
    a, b = make(memory_broker, "a"), make(memory_broker, "b")
    await a.connect()
    await b.connect()
    await memory_broker.close()
    assert not online(a)
    assert not online(b)
    with pytest.raises(NotConnectedError):
        await a.publish("t", {})


# ------------------------------------------------------------------------------------------- stats


@pytest.mark.asyncio
async def test_stats_is_a_snapshot(memory_connector: InMemoryConnector) -> None:
    before = memory_connector.stats
    await memory_connector.publish("t", {})
    assert before.published == 0
    assert memory_connector.stats.published == 1
    assert memory_connector.stats is not memory_connector.stats


@pytest.mark.asyncio
async def test_fixture_connector_is_connected_and_on_the_fixture_broker(
    memory_broker: InMemoryBroker, memory_connector: InMemoryConnector
) -> None:
    assert online(memory_connector)
    assert memory_connector.broker is memory_broker
    assert memory_broker.connected == (memory_connector,)


@pytest.mark.asyncio
async def test_a_callback_cancelled_by_itself_does_not_kill_the_dispatcher(
    memory_connector: InMemoryConnector,
) -> None:
    received = Recorder()

    async def cancelled(_topic: str, _payload: dict[str, Any]) -> None:
        raise asyncio.CancelledError

    await memory_connector.subscribe("t", cancelled)
    await memory_connector.subscribe("t", received)
    await memory_connector.publish("t", {"n": 1})
    await memory_connector.publish("t", {"n": 2})
    await memory_connector.broker.settle()
    assert received.payloads == [{"n": 1}, {"n": 2}]
    assert memory_connector.stats.callback_errors == 2


@pytest.mark.asyncio
async def test_close_restarts_a_stopped_broker_so_queues_flush(memory_broker: InMemoryBroker) -> None:
    connector = make(memory_broker, "a")
    await connector.connect()
    await memory_broker.stop()
    await connector.publish("t", {"n": 1})
    await memory_broker.close()
    assert memory_broker.running
    assert connector.stats.dropped == 0
    assert [r.topic for r in memory_broker.history][-2:] == ["t", status_topic("a")]
