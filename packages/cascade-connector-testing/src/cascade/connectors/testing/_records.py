"""What the in-memory broker records, and its own error."""

from __future__ import annotations

__all__ = ["PublishRecord", "SettleTimeoutError"]

from dataclasses import dataclass
from typing import Any

from cascade.connectors.protocol import ConnectorError


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One message the broker accepted (see `InMemoryBroker.history`).

    `payload` is the decoded JSON object (treat it as read-only); `source` is the publishing
    connector's source, or ``None`` for `InMemoryBroker.inject`. Presence messages and last wills
    are recorded too, with the connector's source.
    """

    topic: str
    payload: dict[str, Any]
    qos: int
    retain: bool
    source: str | None


class SettleTimeoutError(ConnectorError, TimeoutError):
    """`InMemoryBroker.settle` timed out; the message says what was still busy."""
