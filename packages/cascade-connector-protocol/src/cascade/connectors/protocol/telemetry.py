"""`RunTelemetry`: an engine's telemetry for one run, with header and topic built in one place.

An engine makes one `RunTelemetry` per run and calls `task_state`, `engine_started`,
`engine_stopped` and `resource`. Each call builds a `TelemetryHeader` (``ts`` = now, UTC) from the
same ``org_id``/``project_id``/``run_id`` that built the topic (`telemetry_topic`), so the header a
consumer reads can never name another project or run than the topic it arrived on.

Consumers check that promise with `decode_telemetry` (decode and check, for a `TELEMETRY_FILTER`
callback) or `check_header_matches_topic` (check an already decoded message).
"""

from __future__ import annotations

__all__ = ["RunTelemetry", "check_header_matches_topic", "decode_telemetry"]

from collections.abc import Mapping
from typing import Any

from .connector import Connector
from .errors import SchemaError, TopicError
from .schemas import (
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
)
from .topics import TELEMETRY_FILTER, telemetry_topic, topic_matches, validate_topic


class RunTelemetry:
    """Publishes the telemetry of one run on ``telemetry_topic(org_id, project_id, run_id)``.

    `source` names the sender (typically the connector's presence source). `qos` is 0 (default:
    `publish` only queues, the engine's hot path) or 1 (each call waits for the broker's
    acknowledgement). Every call publishes through `connector`, which must be connected, and returns
    the `TelemetryMessage` it sent.

    Raises `TopicError` if an id cannot form a topic level (empty, ``/ + #``, NUL, ...),
    `SchemaError` if `source` is empty, `ValueError` if `qos` is not 0 or 1.
    """

    __slots__ = ("_connector", "_org_id", "_project_id", "_qos", "_run_id", "_source", "_topic")

    def __init__(
        self,
        connector: Connector,
        *,
        org_id: str = "local",
        project_id: str = "default",
        run_id: str,
        source: str,
        qos: int = 0,
    ) -> None:
        if isinstance(qos, bool) or qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        self._topic = telemetry_topic(org_id, project_id, run_id)
        # Validates `source` (and the ids again) once, here, rather than on the first event.
        TelemetryHeader(run_id=run_id, org_id=org_id, project_id=project_id, source=source)
        self._connector = connector
        self._org_id = org_id
        self._project_id = project_id
        self._run_id = run_id
        self._source = source
        self._qos = qos

    def __repr__(self) -> str:
        return f"RunTelemetry(topic={self._topic!r}, source={self._source!r}, qos={self._qos})"

    @property
    def topic(self) -> str:
        """The topic every message of this run goes to."""
        return self._topic

    @property
    def org_id(self) -> str:
        """The organisation of the run (header and topic)."""
        return self._org_id

    @property
    def project_id(self) -> str:
        """The project of the run (header and topic)."""
        return self._project_id

    @property
    def run_id(self) -> str:
        """The run's id (header and topic)."""
        return self._run_id

    @property
    def source(self) -> str:
        """The sender named in every header."""
        return self._source

    @property
    def qos(self) -> int:
        """The QoS of every publish (0 or 1)."""
        return self._qos

    def message(self, body: TelemetryBody) -> TelemetryMessage:
        """`body` with a header stamped now (ISO 8601 UTC), ready to publish on `topic`."""
        header = TelemetryHeader(
            run_id=self._run_id, org_id=self._org_id, project_id=self._project_id, source=self._source
        )
        return TelemetryMessage(header, body)

    async def emit(self, body: TelemetryBody) -> TelemetryMessage:
        """Publish `body` (any telemetry event) on `topic` and return the message sent.

        Raises what `Connector.publish` raises (`NotConnectedError` if the connector is not
        connected). With ``qos=0`` it returns once the message is queued.
        """
        message = self.message(body)
        await self._connector.publish(self._topic, message.to_dict(), qos=self._qos)
        return message

    async def task_state(
        self,
        task_id: str,
        task_name: str,
        state: TaskState,
        *,
        duration_ms: float = 0.0,
        error: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> TelemetryMessage:
        """Publish a `TaskStateEvent`: task `task_id` (named `task_name`) is now in `state`.

        `duration_ms` is in milliseconds (not negative); `error` says why for FAILED; `metadata` is
        any JSON object. Raises `SchemaError` for an invalid field, before anything is sent.
        """
        body = TaskStateEvent(
            task_id, task_name, state, duration_ms, error, dict(metadata) if metadata is not None else {}
        )
        return await self.emit(body)

    async def engine_started(self) -> TelemetryMessage:
        """Publish ``ENGINE_STARTED`` (a `LifecycleEvent`)."""
        return await self.emit(LifecycleEvent(LifecycleEventType.ENGINE_STARTED))

    async def engine_stopped(self) -> TelemetryMessage:
        """Publish ``ENGINE_STOPPED`` (a `LifecycleEvent`). Disconnect afterwards: it sends what is queued."""
        return await self.emit(LifecycleEvent(LifecycleEventType.ENGINE_STOPPED))

    async def resource(
        self, resource_name: str, action: ResourceAction, current_usage: float
    ) -> TelemetryMessage:
        """Publish a `ResourceEvent`: `resource_name` was acquired or released; usage after it."""
        return await self.emit(ResourceEvent(resource_name, action, current_usage))


# ---------------------------------------------------------------------------------------------
# The consumer's side

_HEADER_LEVELS = (("org_id", 2), ("project_id", 3), ("run_id", 4))


def check_header_matches_topic(topic: str, message: TelemetryMessage) -> None:
    """Check that `message`'s header names the org, project and run of the `topic` it came on.

    Raises `TopicError` if `topic` is not a telemetry topic (``cascade/telemetry/{o}/{p}/{r}/events``),
    `SchemaError` naming the first field (``org_id``, ``project_id``, ``run_id``) that differs.
    """
    validate_topic(topic)
    if not topic_matches(TELEMETRY_FILTER, topic):
        raise TopicError(topic, "is not a telemetry topic (cascade/telemetry/{org}/{project}/{run}/events)")
    levels = topic.split("/")
    header = message.header
    for field, index in _HEADER_LEVELS:
        in_header: str = getattr(header, field)
        if in_header != levels[index]:
            raise SchemaError(field, f"{in_header!r} does not match the topic's {levels[index]!r} ({topic})")


def decode_telemetry(topic: str, payload: Mapping[str, Any]) -> TelemetryMessage:
    """Decode a payload received on `topic` and check its header against the topic.

    Raises `SchemaError` (invalid message, or a header that names another org/project/run than the
    topic) or `TopicError` (not a telemetry topic).
    """
    message = TelemetryMessage.from_dict(payload)
    check_header_matches_topic(topic, message)
    return message
