"""An example connector built only on public APIs: it wraps any `Connector` and keeps an audit trail.

`AuditedConnector` is what a connector author might write to add behaviour (here: an audit log of
every publish and subscription) around an existing connector. `ForgetfulConnector` is the same with a
plausible bug, kept to show that the contract suite catches it: it installs the user's callback only
after the inner ``subscribe()`` returned, so the retained messages replayed during ``subscribe()`` are
silently lost. `AuditedHarness` runs either over the in-memory broker with every capability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cascade.connectors.protocol import (
    Callback,
    Connector,
    ConnectorError,
    ConnectorStats,
    SubscriptionHandle,
)
from cascade.connectors.protocol.core import invoke
from cascade.connectors.testing import ALL_CAPABILITIES, Capability, InMemoryConnector, InMemoryHarness


@dataclass(frozen=True)
class AuditEntry:
    action: str  # "publish" or "subscribe"
    topic: str


class AuditedConnector:
    """Delegates to `inner` and records what the application asked for."""

    def __init__(self, inner: InMemoryConnector) -> None:
        self.inner = inner
        self.audit: list[AuditEntry] = []
        self._entered = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def stats(self) -> ConnectorStats:
        return self.inner.stats

    async def connect(self) -> None:
        await self.inner.connect()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def __aenter__(self) -> AuditedConnector:
        if self._entered:
            raise ConnectorError(
                f"{type(self).__name__} is not re-entrant: it is already inside 'async with'"
            )
        await self.connect()
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._entered = False
        await self.disconnect()

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        await self.inner.publish(topic, payload, qos=qos, retain=retain)
        self.audit.append(AuditEntry("publish", topic))

    async def subscribe(self, topic: str, callback: Callback) -> SubscriptionHandle:
        handle = await self.inner.subscribe(topic, callback)
        self.audit.append(AuditEntry("subscribe", topic))
        return handle


class ForgetfulConnector(AuditedConnector):
    """BROKEN on purpose: retained messages delivered while ``subscribe()`` runs are dropped."""

    async def subscribe(self, topic: str, callback: Callback) -> SubscriptionHandle:
        installed: list[Callback] = []

        async def relay(message_topic: str, payload: dict[str, Any]) -> None:
            if installed:  # the bug: nothing is installed yet during the retained replay
                await invoke(installed[0], message_topic, payload)  # plain or async callbacks

        handle = await self.inner.subscribe(topic, relay)
        installed.append(callback)
        self.audit.append(AuditEntry("subscribe", topic))
        return handle


# --8<-- [start:harness]
class AuditedHarness:
    """Contract harness: wraps `InMemoryHarness` connectors in `connector_class`; every capability."""

    capabilities: frozenset[Capability] = ALL_CAPABILITIES

    def __init__(self, connector_class: type[AuditedConnector] = AuditedConnector) -> None:
        self.backend = InMemoryHarness()
        self.connector_class = connector_class

    async def new_connector(self, **options: Any) -> AuditedConnector:
        return self.connector_class(await self.backend.new_connector(**options))

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        await self.backend.inject_raw(topic, data, retain=retain)

    async def drop(self, connector: Connector) -> None:
        assert isinstance(connector, AuditedConnector)
        await self.backend.drop(connector.inner)

    async def stop_backend(self) -> None:
        await self.backend.stop_backend()

    async def start_backend(self) -> None:
        await self.backend.start_backend()

    @property
    def max_packet_size(self) -> int:
        return self.backend.max_packet_size

    async def aclose(self) -> None:
        await self.backend.aclose()


# --8<-- [end:harness]
