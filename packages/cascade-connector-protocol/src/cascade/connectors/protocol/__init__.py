"""The Cascade connector protocol: interfaces, schemas, codec, topic grammar and errors.

Zero runtime dependencies. Engines type against `Connector`; implementations live in
``cascade-connector-mqtt`` and ``cascade-connector-testing``.
"""

from .admission import Admission, AdmissionVerdict, RunningTask
from .codec import codec_name, decode_payload, encode_payload
from .connector import Callback, Connector, ConnectorStats, SubscriptionHandle
from .constraints import ConstraintBook
from .errors import (
    ConnectionFailedError,
    ConnectionFailureReason,
    ConnectorError,
    NotConnectedError,
    PayloadError,
    SchemaError,
    SubscriptionRefusedError,
    TopicError,
)
from .index import SubscriptionIndex
from .schemas import (
    SCHEMA_VERSION,
    Constraint,
    ConstraintType,
    LifecycleEvent,
    LifecycleEventType,
    ResourceAction,
    ResourceEvent,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    TelemetryBody,
    TelemetryHeader,
    TelemetryMessage,
    UnknownEvent,
    parse_rate,
    utc_now_iso,
)
from .telemetry import RunTelemetry, check_header_matches_topic, decode_telemetry
from .topics import (
    CONSTRAINTS_FILTER,
    MAX_TOPIC_BYTES,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    constraint_topic,
    scope_from_topic,
    source_from_status_topic,
    status_topic,
    telemetry_topic,
    topic_matches,
    validate_filter,
    validate_scope,
    validate_topic,
)

__all__ = [
    # interfaces
    "Callback",
    "Connector",
    "ConnectorStats",
    "SubscriptionHandle",
    # errors
    "ConnectorError",
    "NotConnectedError",
    "PayloadError",
    "TopicError",
    "SchemaError",
    "ConnectionFailedError",
    "ConnectionFailureReason",
    "SubscriptionRefusedError",
    # codec
    "encode_payload",
    "decode_payload",
    "codec_name",
    # topics
    "TELEMETRY_FILTER",
    "CONSTRAINTS_FILTER",
    "STATUS_FILTER",
    "MAX_TOPIC_BYTES",
    "telemetry_topic",
    "constraint_topic",
    "scope_from_topic",
    "status_topic",
    "source_from_status_topic",
    "topic_matches",
    "validate_topic",
    "validate_filter",
    "validate_scope",
    "SubscriptionIndex",
    # schemas
    "SCHEMA_VERSION",
    "TaskState",
    "LifecycleEventType",
    "ResourceAction",
    "ConstraintType",
    "TelemetryHeader",
    "TaskStateEvent",
    "LifecycleEvent",
    "ResourceEvent",
    "UnknownEvent",
    "TelemetryBody",
    "TelemetryMessage",
    "Constraint",
    "StatusMessage",
    # constraint semantics and admission
    "ConstraintBook",
    "Admission",
    "AdmissionVerdict",
    "RunningTask",
    # the engine's telemetry
    "RunTelemetry",
    "check_header_matches_topic",
    "decode_telemetry",
    "parse_rate",
    "utc_now_iso",
]
