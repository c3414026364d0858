"""The demo's engine model (``demo_engine.py``) obeys constraints through a `ConstraintBook`."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest
from cascade.connectors.protocol import (
    TELEMETRY_FILTER,
    Constraint,
    ConstraintType,
    TaskState,
    TelemetryMessage,
    constraint_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder

SPEED = 40.0  # task durations 10-37.5 ms
FINAL = (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)


def test_workflow_is_deterministic_per_seed(demo: Any) -> None:
    first = demo.make_workflow(40, seed=3)
    assert first == demo.make_workflow(40, seed=3)
    assert first != demo.make_workflow(40, seed=4)
    assert len(first) == 40
    assert len({t.task_id for t in first}) == 40
    assert sum(t.fails for t in first) == 3
    expected = demo.expected_outcome(first)
    assert sum(expected.values()) == 40
    assert expected["FAILED"] == 3
    assert expected["SKIPPED"] > 0
    ids = [t.task_id for t in first]
    assert all(t.depends_on is None or ids.index(t.depends_on) < ids.index(t.task_id) for t in first)


async def _retain(broker: InMemoryBroker, constraint: Constraint) -> None:
    async with InMemoryConnector(broker, source="operator") as operator:
        await operator.publish(constraint_topic(constraint.scope), constraint.to_dict(), qos=1, retain=True)


async def _clear(broker: InMemoryBroker, scope: str) -> None:
    async with InMemoryConnector(broker, source="operator") as operator:
        await operator.publish(constraint_topic(scope), {}, qos=1, retain=True)


def _engine(
    demo: Any, connector: InMemoryConnector, *, tasks: int = 16, seed: int = 1, workers: int = 4
) -> Any:
    return demo.SimulatedEngine(
        connector, demo.make_workflow(tasks, seed, SPEED), project="p", run_id="r", max_workers=workers
    )


@pytest.mark.asyncio
async def test_runs_to_the_end_and_publishes_every_state_change(demo: Any) -> None:
    broker = InMemoryBroker()
    recorder = Recorder()
    async with InMemoryConnector(broker, source="watcher") as watcher, InMemoryConnector(broker) as conn:
        await watcher.subscribe(TELEMETRY_FILTER, recorder)
        engine = _engine(demo, conn)
        report = await asyncio.wait_for(engine.run(), 30)
        await broker.settle()
    assert {k: v for k, v in report.counts().items() if v} == {
        k: v for k, v in demo.expected_outcome(engine.workflow).items() if v
    }
    assert report.max_running <= 4
    messages = [TelemetryMessage.from_dict(p) for p in recorder.payloads]
    assert messages[0].body.to_dict() == {"type": "LifecycleEvent", "event": "ENGINE_STARTED"}
    assert messages[-1].body.to_dict() == {"type": "LifecycleEvent", "event": "ENGINE_STOPPED"}
    final: dict[str, str] = {}
    for message in messages[1:-1]:
        body = message.body.to_dict()
        final[body["task_id"]] = body["state"]
    assert Counter(final.values()) == Counter(s.value for s in report.states.values())
    assert len(messages) == report.published


@pytest.mark.asyncio
async def test_a_retained_pause_holds_the_first_task_until_resumed(demo: Any) -> None:
    broker = InMemoryBroker()
    await _retain(broker, Constraint("c", "project:p", ConstraintType.PAUSE))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn)
        running = asyncio.create_task(engine.run())
        await asyncio.wait_for(engine.still.wait(), 10)
        assert engine.report.starts == []
        assert engine.report.pauses[0].running_when_observed == 0
        await _clear(broker, "project:p")
        report = await asyncio.wait_for(running, 30)
    assert report.pauses[0].resumed_at is not None
    assert report.pauses[0].started_while_paused == 0
    assert sum(report.counts().values()) == 16


@pytest.mark.asyncio
async def test_a_pause_part_way_drains_running_tasks_and_starts_none(demo: Any) -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn, tasks=24)
        running = asyncio.create_task(engine.run())
        await engine.wait_until(lambda: engine.finished >= 4)
        await _retain(broker, Constraint("c", "global", ConstraintType.PAUSE))
        await asyncio.wait_for(engine.still.wait(), 10)
        episode = engine.report.pauses[0]
        assert episode.scope == "global"
        assert episode.still_at >= episode.observed_at
        assert not engine.running
        assert episode.started_while_paused == 0
        assert all(t <= episode.observed_at for t, _ in engine.report.starts)
        await _clear(broker, "global")
        report = await asyncio.wait_for(running, 30)
    assert sum(report.counts().values()) == 24
    assert episode.resumed_at is not None
    held = [t for t, _ in report.starts if episode.observed_at < t < episode.resumed_at]
    assert held == []
    assert any(t > episode.resumed_at for t, _ in report.starts)


@pytest.mark.asyncio
async def test_a_task_scoped_pause_holds_only_that_task(demo: Any) -> None:
    broker = InMemoryBroker()
    await _retain(broker, Constraint("c", "task:api_call", ConstraintType.PAUSE))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn)
        running = asyncio.create_task(engine.run())
        states = engine.report.states
        upstream = [t.task_id for t in engine.workflow if t.name in ("extract", "transform")]
        await engine.wait_until(lambda: all(states.get(t) in FINAL for t in upstream))
        assert not engine.paused  # only one task kind is paused, not the engine
        assert all(
            states[t.task_id] in (TaskState.PENDING, TaskState.SKIPPED)
            for t in engine.workflow
            if t.name == "api_call"
        )
        await _clear(broker, "task:api_call")
        report = await asyncio.wait_for(running, 30)
    assert sum(report.counts().values()) == 16


@pytest.mark.asyncio
async def test_concurrency_limits_cap_running_tasks(demo: Any) -> None:
    broker = InMemoryBroker()
    await _retain(broker, Constraint("c", "project:p", ConstraintType.CONCURRENCY, {"limit": 2}))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn, tasks=16, workers=6)
        report = await asyncio.wait_for(engine.run(), 30)
    assert report.cap == 2
    assert report.max_running == 2
    assert report.max_running_after_cap == 2


@pytest.mark.asyncio
async def test_every_covering_limit_is_its_own_pool(demo: Any) -> None:
    # task:extract allows 1 running extract; the project allows 3 in all: both hold at once.
    broker = InMemoryBroker()
    await _retain(broker, Constraint("a", "task:extract", ConstraintType.CONCURRENCY, {"limit": 1}))
    await _retain(broker, Constraint("b", "project:p", ConstraintType.CONCURRENCY, {"limit": 3}))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn, tasks=24, workers=8)
        running_extracts: list[int] = []
        original = engine._started

        async def spy(spec: Any) -> None:
            await original(spec)
            running_extracts.append(sum(1 for t in engine.running if t.startswith("extract")))
            assert engine.book.running("task:extract") == running_extracts[-1]
            assert engine.book.running() == len(engine.running)

        engine._started = spy
        report = await asyncio.wait_for(engine.run(), 30)
    assert max(running_extracts) == 1
    assert report.max_running <= 3
    # the book counted every start and every end: nothing is left running in any pool
    assert engine.book.running() == 0
    assert engine.book.running("task:extract") == engine.book.running("project:p") == 0


@pytest.mark.asyncio
async def test_rate_limits_space_task_starts(demo: Any) -> None:
    broker = InMemoryBroker()
    await _retain(broker, Constraint("c", "task:extract", ConstraintType.RATE_LIMIT, {"rate": "100/s"}))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn, tasks=20, workers=8)
        booked: list[float] = []  # each extract's start as the ConstraintBook recorded it
        original = engine._started

        async def spy(spec: Any) -> None:
            await original(spec)
            if spec.task_id.startswith("extract"):
                booked.append(engine.running[spec.task_id].started_at)

        engine._started = spy
        report = await asyncio.wait_for(engine.run(), 30)
    extract_starts = [t for t, task_id in report.starts if task_id.startswith("extract")]
    assert len(extract_starts) == len(booked) == 5
    gaps = [b - a for a, b in itertools.pairwise(booked)]
    assert min(gaps) >= 0.01 - 1e-9  # the book's clock: starts at least 1/100 s apart


@pytest.mark.asyncio
async def test_an_expiring_pause_releases_the_engine_by_itself(demo: Any) -> None:
    import time

    broker = InMemoryBroker()
    await _retain(broker, Constraint("c", "global", ConstraintType.PAUSE, expires_at=time.time() + 0.2))
    async with InMemoryConnector(broker) as conn:
        engine = _engine(demo, conn)
        report = await asyncio.wait_for(engine.run(), 30)  # nobody resumes: the TTL does
    assert sum(report.counts().values()) == 16
    assert report.starts
    (episode,) = report.pauses
    assert episode.scope == "global"
    assert episode.resumed_at is not None  # the expiry ended the episode, with no message
    assert episode.started_while_paused == 0
    assert all(t >= episode.resumed_at for t, _ in report.starts)


def test_the_demo_uses_only_public_names() -> None:
    import ast

    from .conftest import DEMO_PATH, ENGINE_PATH

    for path in DEMO_PATH.parent.glob("demo*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cascade"):
                assert not any(part.startswith("_") for part in node.module.split(".")), (path, node.module)
                assert not any(alias.name.startswith("_") for alias in node.names), (path, node.module)
    engine_lines = len(ENGINE_PATH.read_text().splitlines())
    assert engine_lines <= 300, f"the engine model should stay readable ({engine_lines} lines)"
