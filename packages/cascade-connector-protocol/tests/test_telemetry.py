"""RunTelemetry builds header and topic in one place; consumers check a header against its topic.

These tests use a tiny recording connector (the package has no dependencies); the same emitter runs
over the in-memory connector and a real Mosquitto in tests/protocol/test_run_telemetry.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cascade.connectors.protocol import (
    Callback,
    ConnectorStats,
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    RunTelemetry,
    SchemaError,
    SubscriptionHandle,
    TaskState,
    TaskStateEvent,
    TelemetryHeader,
    TelemetryMessage,
    TopicError,
    UnknownEvent,
    check_header_matches_topic,
    decode_telemetry,
    telemetry_topic,
)
from hypothesis import given, settings
from hypothesis import strategies as st


class RecordingConnector:
    """Records every publish (topic, payload, qos, retain); nothing else is needed here."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], int, bool]] = []

    @property
    def stats(self) -> ConnectorStats:
        return ConnectorStats(published=len(self.published))

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        self.published.append((topic, dict(payload), qos, retain))

    async def subscribe(self, topic: str, callback: Callback) -> SubscriptionHandle:
        raise AssertionError("not used")


def emitter(connector: RecordingConnector, **overrides: Any) -> RunTelemetry:
    options: dict[str, Any] = {"org_id": "acme", "project_id": "etl", "run_id": "run-7", "source": "w1"}
    options.update(overrides)
    return RunTelemetry(connector, **options)


def test_every_event_goes_to_the_topic_its_header_names() -> None:
    connector = RecordingConnector()
    telemetry = emitter(connector)
    assert telemetry.topic == "cascade/telemetry/acme/etl/run-7/events"

    async def run() -> list[TelemetryMessage]:
        return [
            await telemetry.engine_started(),
            await telemetry.task_state("t1", "extract", TaskState.RUNNING),
            await telemetry.task_state(
                "t1", "extract", TaskState.FAILED, duration_ms=12.5, error="boom", metadata={"attempt": 2}
            ),
            await telemetry.resource("db", ResourceAction.ACQUIRE, 3),
            await telemetry.engine_stopped(),
        ]

    sent = asyncio.run(run())
    assert [m.body for m in sent] == [
        LifecycleEvent(LifecycleEventType.ENGINE_STARTED),
        TaskStateEvent("t1", "extract", TaskState.RUNNING),
        TaskStateEvent("t1", "extract", TaskState.FAILED, 12.5, "boom", {"attempt": 2}),
        ResourceEvent("db", ResourceAction.ACQUIRE, 3.0),
        LifecycleEvent(LifecycleEventType.ENGINE_STOPPED),
    ]
    assert len(connector.published) == 5
    for (topic, payload, qos, retain), message in zip(connector.published, sent, strict=True):
        assert (topic, qos, retain) == (telemetry.topic, 0, False)
        assert payload == message.to_dict()
        decoded = decode_telemetry(topic, payload)
        assert decoded == message
        header = decoded.header
        ids = (header.org_id, header.project_id, header.run_id, header.source)
        assert ids == ("acme", "etl", "run-7", "w1")
        assert telemetry_topic(header.org_id, header.project_id, header.run_id) == topic


def test_the_header_is_stamped_now_in_utc() -> None:
    telemetry = emitter(RecordingConnector())
    before = datetime.now(UTC) - timedelta(seconds=1)
    message = telemetry.message(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))
    stamped = datetime.fromisoformat(message.header.ts)
    assert stamped.utcoffset() == timedelta(0)
    assert before <= stamped <= datetime.now(UTC) + timedelta(seconds=1)


def test_qos_1_is_an_option_and_nothing_else_is() -> None:
    connector = RecordingConnector()
    telemetry = emitter(connector, qos=1)
    asyncio.run(telemetry.engine_started())
    assert connector.published[0][2] == 1
    assert telemetry.qos == 1
    for bad in (2, -1, True):
        with pytest.raises(ValueError, match="qos must be 0 or 1"):
            emitter(connector, qos=bad)


def test_defaults_are_the_header_defaults() -> None:
    telemetry = RunTelemetry(RecordingConnector(), run_id="r", source="s")
    assert (telemetry.org_id, telemetry.project_id) == ("local", "default")
    assert telemetry.topic == "cascade/telemetry/local/default/r/events"
    header = telemetry.message(UnknownEvent("Later")).header
    assert header == TelemetryHeader(ts=header.ts, run_id="r", source="s")
    expected = "RunTelemetry(topic='cascade/telemetry/local/default/r/events', source='s', qos=0)"
    assert repr(telemetry) == expected


@pytest.mark.parametrize(
    ("field", "value"), [("org_id", "a/b"), ("project_id", "+"), ("run_id", ""), ("run_id", "r#")]
)
def test_an_id_that_cannot_be_a_topic_level_is_refused_at_once(field: str, value: str) -> None:
    with pytest.raises(TopicError) as info:
        emitter(RecordingConnector(), **{field: value})
    assert info.value.kind == field


def test_an_empty_source_is_refused_at_once() -> None:
    with pytest.raises(SchemaError) as info:
        emitter(RecordingConnector(), source="")
    assert info.value.field == "source"


def test_an_invalid_event_is_refused_before_anything_is_sent() -> None:
    connector = RecordingConnector()
    telemetry = emitter(connector)
    with pytest.raises(SchemaError) as info:
        asyncio.run(telemetry.task_state("t1", "x", TaskState.COMPLETED, duration_ms=-1.0))
    assert info.value.field == "body.duration_ms"
    with pytest.raises(SchemaError):
        asyncio.run(telemetry.task_state("t1", "x", "DONE"))  # type: ignore[arg-type]
    assert connector.published == []


# --- the consumer's check ------------------------------------------------------------------------


def message_for(org_id: str = "acme", project_id: str = "etl", run_id: str = "run-7") -> TelemetryMessage:
    header = TelemetryHeader(run_id=run_id, org_id=org_id, project_id=project_id, source="w1")
    return TelemetryMessage(header, LifecycleEvent(LifecycleEventType.ENGINE_STARTED))


TOPIC = "cascade/telemetry/acme/etl/run-7/events"


def test_a_matching_header_passes() -> None:
    check_header_matches_topic(TOPIC, message_for())


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("org_id", message_for(org_id="local")),
        ("project_id", message_for(project_id="default")),
        ("run_id", message_for(run_id="run-8")),
    ],
)
def test_a_header_naming_another_org_project_or_run_is_a_schema_error(
    field: str, message: TelemetryMessage
) -> None:
    with pytest.raises(SchemaError) as info:
        check_header_matches_topic(TOPIC, message)
    assert info.value.field == field
    assert TOPIC in info.value.problem
    with pytest.raises(SchemaError) as decoded:
        decode_telemetry(TOPIC, message.to_dict())
    assert decoded.value.field == field


def test_the_defaulted_header_of_the_old_bug_is_caught() -> None:
    # A header built without project_id defaults to "default"; the topic was built with "etl".
    header = TelemetryHeader(run_id="run-7", org_id="acme", source="w1")
    wire = TelemetryMessage(header, LifecycleEvent(LifecycleEventType.ENGINE_STARTED)).to_dict()
    with pytest.raises(SchemaError, match="'default' does not match the topic's 'etl'"):
        decode_telemetry(TOPIC, wire)


@pytest.mark.parametrize(
    "topic",
    ["cascade/status/w1", "cascade/telemetry/acme/etl/events", "cascade/telemetry/a/b/c/d/events", "x/+/y"],
)
def test_a_topic_that_is_not_a_telemetry_topic_is_a_topic_error(topic: str) -> None:
    with pytest.raises(TopicError):
        check_header_matches_topic(topic, message_for())


def test_decode_telemetry_refuses_an_invalid_payload() -> None:
    with pytest.raises(SchemaError) as info:
        decode_telemetry(TOPIC, {"v": "1.0", "ts": "2025-01-01T00:00:00Z", "source": "w"})
    assert info.value.field == "run_id"


ids = st.text(alphabet=st.sampled_from("abcXYZ019-_.é日"), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(org_id=ids, project_id=ids, run_id=ids, other=ids)
def test_what_run_telemetry_sends_always_matches_its_topic_and_no_other(
    org_id: str, project_id: str, run_id: str, other: str
) -> None:
    telemetry = RunTelemetry(
        RecordingConnector(), org_id=org_id, project_id=project_id, run_id=run_id, source="w"
    )
    message = telemetry.message(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))
    assert decode_telemetry(telemetry.topic, message.to_dict()) == message
    assert telemetry.topic == telemetry_topic(org_id, project_id, run_id)
    if other != project_id:
        elsewhere = telemetry_topic(org_id, other, run_id)
        with pytest.raises(SchemaError) as info:
            check_header_matches_topic(elsewhere, message)
        assert info.value.field == "project_id"
