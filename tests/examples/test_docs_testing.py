"""The examples of docs/testing.md, as real tests (test_docs_snippets.py checks the page quotes them)."""

from __future__ import annotations

from typing import Any

import pytest
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    Connector,
    Constraint,
    ConstraintBook,
    ConstraintType,
    constraint_topic,
    status_topic,
    telemetry_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder, eventually


# --8<-- [start:engine]
class TinyWorker:
    """The part of an engine that matters here: obey pauses, report what ran."""

    def __init__(self, connector: Connector, run_id: str) -> None:
        self.connector = connector
        self.book = ConstraintBook()
        self.telemetry = telemetry_topic("local", "default", run_id)

    async def start(self) -> None:
        # Returns after the retained constraints were delivered: no pause can be missed.
        await self.connector.subscribe(CONSTRAINTS_FILTER, self.book.on_message)

    async def run_task(self, name: str) -> bool:
        if self.book.is_paused(name):
            return False
        await self.connector.publish(self.telemetry, {"task": name, "state": "COMPLETED"})
        return True


@pytest.mark.asyncio
async def test_a_paused_task_does_not_run(
    memory_broker: InMemoryBroker, memory_connector: InMemoryConnector
) -> None:
    async with InMemoryConnector(memory_broker) as operator:
        pause = Constraint(id="c1", scope="task:extract", type=ConstraintType.PAUSE)
        await operator.publish(constraint_topic("task:extract"), pause.to_dict(), qos=1, retain=True)

    worker = TinyWorker(memory_connector, run_id="run-1")
    await worker.start()
    assert not await worker.run_task("extract")
    assert await worker.run_task("load")

    await memory_broker.settle()  # every publish handed over, every callback run
    sent = [r.payload for r in memory_broker.history if r.topic == worker.telemetry]
    assert sent == [{"task": "load", "state": "COMPLETED"}]


# --8<-- [end:engine]


# --8<-- [start:outage]
@pytest.mark.asyncio
async def test_telemetry_survives_a_broker_outage(memory_broker: InMemoryBroker) -> None:
    worker = InMemoryConnector(memory_broker, reconnect_min_delay=0.01, reconnect_max_delay=0.05)
    async with worker:
        topic = telemetry_topic("local", "default", "run-1")
        await memory_broker.stop()  # every connector loses its connection
        await worker.publish(topic, {"event": "ENGINE_STOPPED"})  # buffered; never raises
        assert memory_broker.history[-1].topic != topic

        await memory_broker.start()  # connectors reconnect by themselves (backoff with jitter)
        await memory_broker.settle()  # ... reconnected, re-subscribed, queue flushed
        assert memory_broker.history[-1].payload == {"event": "ENGINE_STOPPED"}
        assert worker.stats.reconnects == 1


# --8<-- [end:outage]


# --8<-- [start:drop]
@pytest.mark.asyncio
async def test_observers_learn_when_a_worker_dies(memory_broker: InMemoryBroker) -> None:
    worker = InMemoryConnector(memory_broker, source="worker-1", reconnect_min_delay=0.01)
    async with worker, InMemoryConnector(memory_broker, source="observer") as observer:
        statuses = Recorder()
        await observer.subscribe(STATUS_FILTER, statuses)
        await memory_broker.drop(worker)  # abrupt loss: the broker publishes the last will
        await memory_broker.settle()  # ... and the worker reconnects by itself

        worker_statuses = [p["status"] for t, p in statuses.messages if t == status_topic("worker-1")]
        assert worker_statuses == ["online", "offline", "online"]  # retained, the last will, reconnected


# --8<-- [end:drop]


# --8<-- [start:inject]
@pytest.mark.asyncio
async def test_a_garbage_command_is_skipped_and_counted(memory_connector: InMemoryConnector) -> None:
    book = ConstraintBook()
    await memory_connector.subscribe(CONSTRAINTS_FILTER, book.on_message)
    broker = memory_connector.broker
    await broker.inject(constraint_topic("global"), b"\xff not json", retain=True)  # a foreign client
    await broker.settle()
    assert memory_connector.stats.malformed == 1
    assert len(book) == 0


# --8<-- [end:inject]


# --8<-- [start:eventually]
async def round_trip(connector: Connector) -> list[dict[str, Any]]:
    """Works unchanged on an MqttConnector: it only waits for conditions, never for a broker."""
    received = Recorder()
    await connector.subscribe("jobs/#", received)
    await connector.publish("jobs/1", {"n": 1})
    await eventually(lambda: len(received) == 1, timeout=5.0)
    return received.payloads


@pytest.mark.asyncio
async def test_round_trip(memory_connector: InMemoryConnector) -> None:
    assert await round_trip(memory_connector) == [{"n": 1}]


# --8<-- [end:eventually]
