"""The engine against the in-memory fake: no broker, no network, no sleeps."""

import asyncio

import pytest
from cascade.connectors.protocol import (
    TELEMETRY_FILTER,
    Constraint,
    ConstraintType,
    TaskState,
    constraint_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder, eventually
from my_engine import run_engine


@pytest.mark.asyncio
async def test_a_paused_task_waits_for_resume() -> None:
    broker = InMemoryBroker()
    operator, watcher = InMemoryConnector(broker), InMemoryConnector(broker)
    events, done = Recorder(), []

    async def work(name: str) -> None:
        done.append(name)

    async with operator, watcher:
        await watcher.subscribe(TELEMETRY_FILTER, events)
        # A pause already in force (retained) before the engine starts.
        pause = Constraint(id="c1", scope="task:load", type=ConstraintType.PAUSE)
        await operator.publish(constraint_topic("task:load"), pause.to_dict(), qos=1, retain=True)

        engine = asyncio.create_task(
            run_engine(InMemoryConnector(broker), ["extract", "load"], work,
                       project="etl", run_id="run-1", source="worker-1")
        )
        await eventually(lambda: done == ["extract"])  # extract ran; load is held
        await operator.publish(constraint_topic("task:load"), {}, qos=1, retain=True)  # resume

        assert await engine == {"run-1-0": TaskState.COMPLETED, "run-1-1": TaskState.COMPLETED}
        assert done == ["extract", "load"]
        await broker.settle()
        assert set(events.topics) == {"cascade/telemetry/local/etl/run-1/events"}
    await broker.close()
