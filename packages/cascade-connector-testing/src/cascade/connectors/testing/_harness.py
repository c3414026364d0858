"""The harness interface of the contract suite: what a connector author provides to run it.

`ContractHarness` is required. A harness may also offer optional capabilities: it DECLARES them in
its ``capabilities`` attribute (a frozenset of `Capability`) and implements the matching protocol
(`SupportsInjectRaw`, `SupportsDrop`, `SupportsOutage`, `SupportsPacketLimit`). A contract test that
needs a capability the harness does not declare is skipped with a message naming it and saying how to
enable it.
"""

from __future__ import annotations

__all__ = [
    "ALL_CAPABILITIES",
    "Capability",
    "ContractHarness",
    "SupportsInjectRaw",
    "SupportsDrop",
    "SupportsOutage",
    "SupportsPacketLimit",
    "DEFAULT_PACKET_LIMIT",
    "InMemoryHarness",
]

import asyncio
import enum
from typing import Any, Protocol, runtime_checkable

from cascade.connectors.protocol import Connector, ConnectorError

from ._memory import InMemoryBroker, InMemoryConnector


class Capability(enum.StrEnum):
    """An optional harness capability, declared in the harness's ``capabilities`` attribute.

    Each value is a plain string, so a harness that must not depend on this package (the MQTT
    package's `MqttHarness`) may declare ``frozenset({"inject_raw", "drop", "stop_backend"})``.
    """

    INJECT_RAW = "inject_raw"
    """`SupportsInjectRaw`: publish raw bytes as a foreign client (malformed and zero-byte payloads)."""
    DROP = "drop"
    """`SupportsDrop`: cut one connector's connection abruptly, so the last will fires."""
    STOP_BACKEND = "stop_backend"
    """`SupportsOutage`: stop and restart the whole backend, keeping retained state."""
    PACKET_LIMIT = "packet_limit"
    """`SupportsPacketLimit`: the backend announces a Maximum Packet Size to connectors, and says it."""


ALL_CAPABILITIES: frozenset[Capability] = frozenset(Capability)
"""Every capability: what a harness over a backend it fully controls (and gives a packet limit) declares."""

DEFAULT_PACKET_LIMIT = 1024 * 1024
"""Bytes: the Maximum Packet Size of the broker `InMemoryHarness` makes when given none (1 MiB, far
above what any other contract test publishes)."""


@runtime_checkable
class ContractHarness(Protocol):
    """Makes connectors that share one backend (required).

    The contract suite may pass these options to `new_connector`: ``source`` (str),
    ``max_buffered`` (int), ``reconnect_min_delay``, ``reconnect_max_delay`` and ``flush_timeout``
    (seconds, float).
    A harness forwards them to the connector's constructor (or maps them to its own settings).

    Optional capabilities are declared, not guessed: set ``capabilities`` (a frozenset of
    `Capability`, or of their string values) on the harness and implement the matching protocol. A
    harness without the attribute declares none.
    """

    async def new_connector(self, **options: Any) -> Connector:
        """Return a NEW connector, NOT yet connected, on the shared backend.

        The harness disconnects every connector it made at teardown (the suite also disconnects the
        ones it made, but a harness must not leak connections when a test fails half-way).
        """
        ...


@runtime_checkable
class SupportsInjectRaw(Protocol):
    """Capability: publish raw bytes as a foreign client would (malformed payloads, empty payloads)."""

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        """Publish `data` unchanged on `topic`; returns once the backend has accepted it."""
        ...


@runtime_checkable
class SupportsDrop(Protocol):
    """Capability: cut one connector's connection abruptly (no DISCONNECT; the last will fires)."""

    async def drop(self, connector: Connector) -> None:
        """Abruptly lose `connector`'s connection. The backend publishes its ``offline`` last will and
        the connector reconnects by itself. Returns once the connection is cut.

        The suite then only waits (for the will, the reconnect, re-delivered retained state).
        """
        ...


@runtime_checkable
class SupportsOutage(Protocol):
    """Capability: stop and restart the whole backend. Retained state must survive the restart."""

    async def stop_backend(self) -> None:
        """Stop the backend; every connector loses its connection. Returns once it is down.

        Best return only once the connectors noticed (for example by waiting until each one reports
        itself disconnected): the suite publishes right after this returns and expects those
        messages to be buffered, not written into a connection that is about to fail.
        """
        ...

    async def start_backend(self) -> None:
        """Start the backend again (same address, retained state kept). Returns once it accepts clients."""
        ...


@runtime_checkable
class SupportsPacketLimit(Protocol):
    """Capability: the backend has a packet size limit it announces to every connector when it connects."""

    @property
    def max_packet_size(self) -> int:
        """Bytes: the largest MQTT-style packet (a whole PUBLISH: header, topic and payload) the backend
        accepts, and announces to connectors when they connect (MQTT 5: CONNACK Maximum Packet Size).
        """
        ...


class InMemoryHarness:
    """The contract harness over an `InMemoryBroker`, with every capability (`ALL_CAPABILITIES`).

    Without a `broker` it makes one whose ``max_packet_size`` is `DEFAULT_PACKET_LIMIT`; over a given
    broker without a limit it declares every capability but ``PACKET_LIMIT``. `new_connector` accepts
    the `InMemoryConnector` keyword options and makes a `connector_class` (an `InMemoryConnector`
    subclass, to run the contract over a variant). `aclose` (called by the fixture at teardown)
    restarts a stopped broker and disconnects every connector it made.
    """

    def __init__(
        self,
        broker: InMemoryBroker | None = None,
        *,
        connector_class: type[InMemoryConnector] = InMemoryConnector,
    ) -> None:
        self.broker = broker if broker is not None else InMemoryBroker(max_packet_size=DEFAULT_PACKET_LIMIT)
        self.connector_class = connector_class
        self._made: list[InMemoryConnector] = []

    def __repr__(self) -> str:
        return f"InMemoryHarness({self.broker!r}, connectors={len(self._made)})"

    async def new_connector(self, **options: Any) -> InMemoryConnector:
        """A new, not yet connected `InMemoryConnector` on the shared broker."""
        connector = self.connector_class(self.broker, **options)
        self._made.append(connector)
        return connector

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The declared capabilities: all, ``PACKET_LIMIT`` only when the broker has a ``max_packet_size``.

        A subclass may replace it with a class attribute.
        """
        if self.broker.max_packet_size is None:
            return ALL_CAPABILITIES - {Capability.PACKET_LIMIT}
        return ALL_CAPABILITIES

    @property
    def max_packet_size(self) -> int:
        """The broker's ``max_packet_size`` (bytes); `ConnectorError` if it has none."""
        limit = self.broker.max_packet_size
        if limit is None:
            raise ConnectorError("this InMemoryHarness's broker has no max_packet_size")
        return limit

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        """`InMemoryBroker.inject`."""
        await self.broker.inject(topic, data, retain=retain)

    async def drop(self, connector: Connector) -> None:
        """`InMemoryBroker.drop`; `TypeError` for a connector this harness did not make."""
        if not isinstance(connector, InMemoryConnector):
            raise TypeError(f"InMemoryHarness can only drop an InMemoryConnector, not {connector!r}")
        await self.broker.drop(connector)

    async def stop_backend(self) -> None:
        """`InMemoryBroker.stop`."""
        await self.broker.stop()

    async def start_backend(self) -> None:
        """`InMemoryBroker.start`."""
        await self.broker.start()

    async def aclose(self) -> None:
        """Restart the broker if stopped and disconnect every connector this harness made."""
        await self.broker.start()
        made, self._made = self._made, []
        await asyncio.gather(*(connector.disconnect() for connector in made))
