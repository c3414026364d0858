"""The one error hierarchy every Cascade connector raises.

Callers catch `ConnectorError` (or a subclass); no connector lets a library's own exception escape.
Each error carries structured attributes besides its message.
"""

from __future__ import annotations

__all__ = [
    "ConnectorError",
    "NotConnectedError",
    "PayloadError",
    "TopicError",
    "SchemaError",
    "ConnectionFailedError",
    "SubscriptionRefusedError",
    "ConnectionFailureReason",
]

from typing import Literal

ConnectionFailureReason = Literal["unreachable", "timeout", "auth", "tls", "refused"]


class ConnectorError(Exception):
    """Base class of every error a connector raises."""


class NotConnectedError(ConnectorError):
    """`publish`/`subscribe` on a connector that was never connected or was disconnected, or a
    ``qos=1`` publish still waiting when `disconnect()` ended the session (`reason` says which).
    """

    def __init__(self, operation: str, reason: str | None = None) -> None:
        self.operation = operation
        self.reason = reason or "the connector is not connected (call connect() first)"
        super().__init__(f"cannot {operation}: {self.reason}")


class PayloadError(ConnectorError, ValueError):
    """A payload is not a JSON object (outbound), or inbound bytes are not UTF-8 JSON objects."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"invalid payload: {problem}")


class TopicError(ConnectorError, ValueError):
    """A topic name, subscription filter or constraint scope is invalid.

    `value` is the offending text (shortened in the message), `problem` says what is wrong.
    """

    def __init__(self, value: str, problem: str, *, kind: str = "topic") -> None:
        self.value = value
        self.problem = problem
        self.kind = kind
        shown = value if len(value) <= 80 else value[:77] + "..."
        super().__init__(f"invalid {kind} {shown!r}: {problem}")


class SchemaError(ConnectorError, ValueError):
    """Decoding a message failed; `field` names the field (dotted path), `problem` the problem."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ConnectionFailedError(ConnectorError):
    """The first `connect()` failed.

    `reason` is one of ``unreachable`` (nothing accepts TCP, DNS failure), ``timeout`` (no answer in
    time), ``auth`` (bad credentials / not authorised), ``tls`` (handshake or verification failed) or
    ``refused`` (the broker rejected the connection for another reason). Later connection losses are
    not raised: the connector reconnects by itself.
    """

    def __init__(self, reason: ConnectionFailureReason, detail: str) -> None:
        self.reason: ConnectionFailureReason = reason
        self.detail = detail
        super().__init__(f"connection failed ({reason}): {detail}")


class SubscriptionRefusedError(ConnectorError):
    """The backend refused a subscription (for example an ACL denies the filter)."""

    def __init__(self, topic: str, detail: str = "") -> None:
        self.topic = topic
        self.detail = detail
        suffix = f": {detail}" if detail else ""
        super().__init__(f"subscription to {topic!r} refused by the broker{suffix}")
