"""docs/engine-quickstart.md and docs/mqtt.md are real.

Every ```python block in those pages follows a ``<!-- snippet: PATH#REGION -->`` marker and equals that
region of this file (``# --8<-- [start:REGION]`` / ``[end:REGION]``), and the tests below run every
region: the engine against the in-memory fake and against a real Mosquitto.
"""

from __future__ import annotations

import os
import re
import ssl
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles

# --8<-- [start:engine]
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    Connector,
    ConstraintBook,
    LifecycleEvent,
    LifecycleEventType,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    telemetry_topic,
)


async def run_engine(connector: Connector, run_id: str, source: str, tasks: list[str]) -> list[str]:
    """Run `tasks` in order, skipping paused ones; return the names that ran."""
    book = ConstraintBook()
    topic = telemetry_topic("local", "default", run_id)

    async def emit(body: TelemetryBody) -> None:
        message = TelemetryMessage(TelemetryHeader(run_id=run_id, source=source), body)
        await connector.publish(topic, message.to_dict())  # qos=0: queued, returns at once

    await connector.connect()
    try:
        # Returns only after every retained constraint was handed to the book: a pause that is
        # already in force is known before the first task starts.
        await connector.subscribe(CONSTRAINTS_FILTER, book.on_message)
        await emit(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))
        ran = []
        for number, name in enumerate(tasks):
            task_id = f"{run_id}-{number}"
            if book.is_paused(name):
                await emit(TaskStateEvent(task_id, name, TaskState.SKIPPED))
                continue
            await emit(TaskStateEvent(task_id, name, TaskState.RUNNING))
            ran.append(name)  # ... the real work ...
            await emit(TaskStateEvent(task_id, name, TaskState.COMPLETED, duration_ms=1.5))
        await emit(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED))
        return ran
    finally:
        await connector.disconnect()  # sends what is still queued: ENGINE_STOPPED is not lost


# --8<-- [end:engine]

from cascade.connectors.protocol import (  # noqa: E402 - the snippet above owns the first import block
    TELEMETRY_FILTER,
    Constraint,
    ConstraintType,
    constraint_topic,
)
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/engine-quickstart.md", "docs/mqtt.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- snippet: (?P<path>[^#\s]+)#(?P<region>[\w-]+) -->\n$")


def region(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = f"# --8<-- [start:{name}]\n"
    end = f"# --8<-- [end:{name}]"
    assert start in text, f"{path}: no region {name!r}"
    body = text.split(start, 1)[1].split(end, 1)[0]
    return textwrap.dedent(body).strip("\n") + "\n"


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_is_a_tested_snippet(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = [m for m in FENCE.finditer(text) if m.group(1) == "python"]
    assert blocks, f"{page} has no python example"
    for match in blocks:
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].splitlines(keepends=True)
        marker = MARKER.search(before[-1] if before else "")
        assert marker is not None, f"{page}:{line}: python block without a '<!-- snippet: ... -->' marker"
        expected = region(ROOT / marker["path"], marker["region"])
        assert match.group(2) == expected, f"{page}:{line} differs from {marker['path']}#{marker['region']}"


def pause(scope: str) -> Constraint:
    return Constraint(id=uuid.uuid4().hex, scope=scope, type=ConstraintType.PAUSE)


# --8<-- [start:memory-test]
@pytest.mark.asyncio
async def test_the_engine_skips_paused_tasks() -> None:
    broker = InMemoryBroker()
    operator = InMemoryConnector(broker)
    watcher = InMemoryConnector(broker)
    events = Recorder()
    async with operator, watcher:
        await watcher.subscribe(TELEMETRY_FILTER, events)
        # A pause already in force (retained) before the engine starts.
        pause = Constraint(id="c1", scope="task:load", type=ConstraintType.PAUSE)
        await operator.publish(constraint_topic("task:load"), pause.to_dict(), qos=1, retain=True)

        ran = await run_engine(InMemoryConnector(broker), "run-1", "worker-1", ["extract", "load"])

        assert ran == ["extract"]
        await broker.settle()
        bodies = [TelemetryMessage.from_dict(payload).body for payload in events.payloads]
        assert bodies[-2] == TaskStateEvent("run-1-1", "load", TaskState.SKIPPED)
        assert bodies[-1] == LifecycleEvent(LifecycleEventType.ENGINE_STOPPED)
    await broker.close()


# --8<-- [end:memory-test]


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_production_snippet_runs_against_mosquitto(
    mosquitto_factory: Callable[..., MosquittoServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = mosquitto_factory()
    monkeypatch.setenv("CASCADE_MQTT_URL", server.url)
    # --8<-- [start:production]
    from cascade.connectors.mqtt import MqttConnector

    url = os.environ.get("CASCADE_MQTT_URL", "mqtt://localhost:1883")
    connector = MqttConnector.from_url(url, source="etl-worker-1")
    ran = await run_engine(connector, "run-42", connector.source, ["extract", "transform", "load"])
    # --8<-- [end:production]
    assert ran == ["extract", "transform", "load"]
    assert connector.stats.published == 8
    assert connector.stats.dropped == 0


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_engine_obeys_a_retained_pause_over_mqtt(mosquitto: MosquittoServer) -> None:
    from cascade.connectors.mqtt import MqttConnector

    scope = f"task:load-{uuid.uuid4().hex[:8]}"
    name = scope.split(":", 1)[1]
    async with MqttConnector.from_url(mosquitto.url) as operator:
        await operator.publish(constraint_topic(scope), pause(scope).to_dict(), qos=1, retain=True)
        try:
            ran = await run_engine(MqttConnector.from_url(mosquitto.url), "run-7", "w", ["extract", name])
            assert ran == ["extract"]
        finally:
            await operator.publish(constraint_topic(scope), {}, qos=1, retain=True)  # resume (clean up)


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_url_snippet(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    server = mosquitto_factory(users={"worker": "s3cret"})
    url = f"mqtt://worker:s3cret@{server.host}:{server.port}/?keepalive=30&max_buffered=50000"
    # --8<-- [start:url]
    from cascade.connectors.mqtt import MqttConnector
    from cascade.connectors.protocol import StatusMessage, status_topic

    async with MqttConnector.from_url(url, source="etl-worker-1") as connector:
        seen = []

        async def on_status(topic: str, payload: dict[str, object]) -> None:
            seen.append(StatusMessage.from_dict(payload).status)

        await connector.subscribe(status_topic("etl-worker-1"), on_status)
        assert seen == ["online"]  # retained, delivered before subscribe() returned
        await connector.publish("plant/line-1/temperature", {"celsius": 21.5})  # queued: returns at once
        await connector.publish("plant/line-1/setpoint", {"celsius": 20}, qos=1, retain=True)  # acked
    # --8<-- [end:url]
    assert connector.stats.published == 2


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_tls_snippet(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    ca_file = str(tls_files.ca_file)
    tls_port = server.tls_port
    assert tls_port is not None
    # --8<-- [start:tls]
    from cascade.connectors.mqtt import MqttConnector

    context = ssl.create_default_context(cafile=ca_file)  # verifies the chain and the host name
    # context.load_cert_chain("client.pem", "client.key")  # if the broker wants client certificates
    async with MqttConnector("localhost", tls_port, tls=context) as connector:
        await connector.publish("secure/hello", {"over": "TLS"}, qos=1)
    # same thing as a URL:
    connector = MqttConnector.from_url(f"mqtts://localhost:{tls_port}/?ca_file={ca_file}")
    # --8<-- [end:tls]
    async with connector:
        await connector.publish("secure/hello", {"over": "TLS"}, qos=1)


@pytest.mark.asyncio
async def test_the_failover_snippet(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    # --8<-- [start:failover]
    from cascade.connectors.mqtt import MqttConnector

    async def watch_cluster(url: str) -> str | None:
        """`url` names every node: mqtt://user:pw@node-a:1883,node-b:1883"""
        async with MqttConnector.from_url(url) as connector:
            print("connected to", connector.broker_address, "with MQTT", connector.protocol_version)
            return connector.protocol_version

    # --8<-- [end:failover]
    first, second = mosquitto_factory(), mosquitto_factory()
    second_port = second.port
    second.stop()  # the second node is down: the first one serves
    assert await watch_cluster(f"mqtt://{first.host}:{first.port},{second.host}:{second_port}") == "5"
