"""The public operator API (`cascade.connectors.mqtt.operator`) with any `Connector`.

The same test bodies run over the in-memory fake and over `MqttConnector` on a real Mosquitto: the
API is typed against `Connector` only, so both must behave the same.
"""

from __future__ import annotations

import ast
import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector, operator
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.mqtt.operator import (
    LinkChange,
    LinkMonitor,
    LinkState,
    LinkView,
    ResumeOutcome,
    WatchModel,
    format_event,
    format_event_json,
    is_operator_source,
    new_constraint,
    read_constraints,
    read_workers,
    resume,
    send_constraint,
)
from cascade.connectors.protocol import (
    Connector,
    ConnectorStats,
    Constraint,
    ConstraintType,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    constraint_topic,
    status_topic,
    telemetry_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, eventually

OPERATOR_DIR = Path(operator.__file__).parent

Make = Callable[..., Awaitable[Connector]]


@pytest_asyncio.fixture(params=["memory", "mosquitto"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    """Connected connectors sharing one backend: the fake's broker, or the session's Mosquitto."""
    made: list[Connector] = []
    broker = InMemoryBroker()

    async def factory(source: str | None = None) -> Connector:
        connector: Connector
        if request.param == "memory":
            connector = InMemoryConnector(broker, source=source)
        else:
            server: MosquittoServer = request.getfixturevalue("mosquitto")
            connector = MqttConnector.from_url(server.url, source=source)
        await connector.connect()
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.disconnect()


def _scope(kind: str = "task") -> str:
    return f"{kind}:op-{uuid.uuid4().hex[:10]}"  # the session's Mosquitto is shared


def test_the_operator_api_never_imports_the_testing_package() -> None:
    for path in OPERATOR_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(name.startswith("cascade.connectors.testing") for name in names), path
    assert sorted(operator.__all__) == sorted(set(operator.__all__))
    assert all(hasattr(operator, name) for name in operator.__all__)


@pytest.mark.asyncio
async def test_send_read_and_resume_a_constraint(make: Make) -> None:
    cli = await make()
    scope = _scope()
    cap = new_constraint(scope, ConstraintType.CONCURRENCY, {"limit": 2}, ttl=60)
    await send_constraint(cli, cap)
    listing = await read_constraints(cli)
    assert listing.book.get(scope) == cap
    late = await make()  # a worker that connects later sees it: it is retained
    assert (await read_constraints(late)).book.get(scope) == cap

    done = await resume(cli, scope)
    assert (done.outcome, done.constraint, done.was_in_force) == (ResumeOutcome.CLEARED, cap, True)
    assert (await read_constraints(cli)).book.get(scope) is None
    again = await resume(cli, scope)
    assert (again.outcome, again.constraint, again.was_in_force) == (ResumeOutcome.NOTHING, None, False)


@pytest.mark.asyncio
async def test_resume_tells_expired_and_unreadable_apart(make: Make) -> None:
    cli = await make()
    expired_scope, junk_scope = _scope(), _scope()
    old = Constraint("old", expired_scope, ConstraintType.PAUSE, {}, expires_at=time.time() - 5)
    await send_constraint(cli, old)
    await cli.publish(constraint_topic(junk_scope), {"id": "x", "type": "warp"}, qos=1, retain=True)
    expired = await resume(cli, expired_scope)
    assert (expired.outcome, expired.constraint, expired.was_in_force) == (ResumeOutcome.EXPIRED, old, False)
    unreadable = await resume(cli, junk_scope)
    assert (unreadable.outcome, unreadable.was_in_force) == (ResumeOutcome.UNREADABLE, True)
    listing = await read_constraints(cli)
    assert not any(junk_scope in problem or expired_scope in problem for problem in listing.skipped)
    assert listing.book.get(expired_scope) is None  # both were cleared from the broker


@pytest.mark.asyncio
async def test_read_workers_lists_presence_and_hides_operator_tools(make: Make) -> None:
    worker_name = f"op-worker-{uuid.uuid4().hex[:8]}"
    tool_name = f"cascade-mqtt-cli-{uuid.uuid4().hex[:8]}"
    await make(source=worker_name)
    cli = await make(source=tool_name)
    shown = await read_workers(cli, hide=is_operator_source)
    sources = {w.source: w.status for w in shown.workers}
    assert sources.get(worker_name) == "online"
    assert tool_name not in sources
    everything = await read_workers(cli)
    assert {w.source for w in everything.workers} >= {worker_name, tool_name}
    await cli.publish(status_topic(worker_name), {}, qos=1, retain=True)  # leave the broker clean


@pytest.mark.asyncio
async def test_a_watch_model_fed_by_a_connector(make: Make) -> None:
    engine = await make()
    watcher = await make()
    model = WatchModel()
    events: list[str] = []

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        event = model.on_message(topic, payload)
        if event is not None:
            events.append(format_event(event))

    project = f"p{uuid.uuid4().hex[:8]}"
    handle = await watcher.subscribe(f"cascade/telemetry/+/{project}/+/events", on_message)
    header = TelemetryHeader(run_id="r1", project_id=project, source="w\u202eevil")
    body = TaskStateEvent("t1", "api\u200bcall\u2067", TaskState.FAILED, error="boom")
    await engine.publish(telemetry_topic("local", project, "r1"), TelemetryMessage(header, body).to_dict())
    await eventually(lambda: len(events) == 1, timeout=10)
    await handle.unsubscribe()
    assert model.totals()[TaskState.FAILED] == 1
    assert "task api\\u200bcall\\u2067 [t1] FAILED" in events[0]
    assert [f.task_name for f in model.failures] == ["api\u200bcall\u2067"]  # the model keeps the data


def test_json_events_escape_what_a_terminal_must_not_see() -> None:
    model = WatchModel()
    header = TelemetryHeader(ts="2024-05-01T12:00:00.000Z", run_id="r1", project_id="etl", source="w1")
    body = TaskStateEvent("t1", "a\u202eb\ud800", TaskState.RUNNING, error="x\ufeff")
    event = model.on_message(telemetry_topic("local", "etl", "r1"), TelemetryMessage(header, body).to_dict())
    assert event is not None
    line = format_event_json(event)
    assert line.encode("utf-8", "strict")  # a lone surrogate could not be written as UTF-8
    for escape in ("\\u202e", "\\ud800", "\\ufeff"):
        assert escape in line
    assert json.loads(line)["task_name"] == "a\u202eb\ud800"  # the same data
    assert "task a\\u202eb\\ud800 [t1] RUNNING" in format_event(event)


class _StatsOnly:
    """A connector that reports only what `Connector` promises (no ``connected`` property)."""

    def __init__(self) -> None:
        self.reconnects = 0

    @property
    def stats(self) -> ConnectorStats:
        return ConnectorStats(reconnects=self.reconnects)

    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None: ...
    async def subscribe(self, topic: str, callback: Any) -> Any: ...


def test_the_link_monitor_works_from_the_stats_alone() -> None:
    connector = _StatsOnly()
    now = [1000.0]
    monitor = LinkMonitor(connector, clock=lambda: now[0])
    assert monitor.view == LinkView(LinkState.CONNECTED, 1000.0)
    assert monitor.poll() is None
    connector.reconnects = 1  # lost and regained between two polls
    now[0] = 1001.0
    change = monitor.poll()
    assert change == LinkChange(LinkView(LinkState.CONNECTED, 1001.0, reconnects=1))
    assert change.view.may_have_missed
    assert monitor.poll() is None


@pytest.mark.asyncio
async def test_the_link_monitor_follows_an_outage_of_the_fake() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, reconnect_min_delay=0.01, reconnect_max_delay=0.05) as watcher:
        monitor = LinkMonitor(watcher)
        model = WatchModel()
        await broker.stop()
        lost = monitor.poll()
        assert lost is not None
        assert lost.view.state is LinkState.RECONNECTING
        line = format_event(model.on_link(lost))
        assert line.split("  ", 1)[1] == (
            "connection to the broker lost; reconnecting (telemetry sent meanwhile is missed)"
        )
        assert model.link == lost.view
        await broker.start()
        await eventually(lambda: watcher.connected, timeout=10)
        restored = monitor.poll()
        assert restored is not None
        assert restored.view.state is LinkState.CONNECTED
        assert restored.view.reconnects == 1
        assert restored.gap_seconds is not None
        assert restored.view.outage_seconds == pytest.approx(restored.gap_seconds)
        assert "connection to the broker restored after" in format_event(model.on_link(restored))
        assert monitor.poll() is None


@pytest.mark.asyncio
async def test_operator_commands_wait_across_an_outage_and_can_be_bounded() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker) as cli:
        await broker.stop()
        pause = new_constraint("global", ConstraintType.PAUSE)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await send_constraint(cli, pause)
        await broker.start()
        await send_constraint(cli, pause)
        assert broker.retained[constraint_topic("global")] == pause.to_dict()
