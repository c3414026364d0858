"""RunTelemetry over both real connectors: what a watcher receives decodes and matches its topic."""

from __future__ import annotations

import uuid

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import (
    TELEMETRY_FILTER,
    NotConnectedError,
    ResourceAction,
    RunTelemetry,
    TaskState,
    decode_telemetry,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder


@pytest.mark.asyncio
async def test_qos_1_telemetry_over_the_fake_is_published_at_qos_1() -> None:
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, source="w") as connector:
        telemetry = RunTelemetry(connector, project_id="etl", run_id="r1", source="w", qos=1)
        await telemetry.engine_started()
        await telemetry.resource("db", ResourceAction.ACQUIRE, 1)
    records = [r for r in broker.history if r.topic == telemetry.topic]
    assert [r.qos for r in records] == [1, 1]
    assert [decode_telemetry(r.topic, r.payload).header.project_id for r in records] == ["etl", "etl"]
    await broker.close()


@pytest.mark.asyncio
async def test_publishing_on_a_connector_that_is_not_connected_raises() -> None:
    telemetry = RunTelemetry(InMemoryConnector(), run_id="r", source="w")
    with pytest.raises(NotConnectedError):
        await telemetry.engine_started()


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_qos_1_telemetry_over_mosquitto_arrives_under_the_header_it_names(
    mosquitto: MosquittoServer,
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    received = Recorder()
    watcher, engine = MqttConnector.from_url(mosquitto.url), MqttConnector.from_url(mosquitto.url)
    async with watcher, engine:
        await watcher.subscribe(TELEMETRY_FILTER.replace("+/+/+", f"acme/etl/{run_id}"), received)
        telemetry = RunTelemetry(engine, org_id="acme", project_id="etl", run_id=run_id, source="w", qos=1)
        await telemetry.task_state("t1", "load", TaskState.FAILED, duration_ms=3.0, error="boom")
        await received.wait_for(1)
    topic, payload = received.messages[0]
    message = decode_telemetry(topic, payload)
    assert topic == f"cascade/telemetry/acme/etl/{run_id}/events"
    header = message.header
    assert (header.org_id, header.project_id, header.run_id) == ("acme", "etl", run_id)
