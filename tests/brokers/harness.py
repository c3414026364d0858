"""`BrokerHarness`: MqttConnector contract harnesses for any broker of the matrix.

`harness_for(server, protocol=...)` returns an object the contract suite can drive (the shape of the MQTT
harness of the contract run: ``new_connector(**options)``, ``inject_raw``, ``drop``, ``stop_backend`` /
``start_backend``, ``aclose``) over a running broker server of ``tests/brokers/servers``. Each connector
reaches the broker through its own `FaultProxy`, which is how `drop` cuts exactly that connector's
connection (TCP reset, no DISCONNECT: the broker publishes its last will). `inject_raw` publishes with a
plain paho-mqtt client of the broker's protocol, as a foreign client would.

`protocol` is the connector option the negotiation work adds (``"5"``, ``"3.1.1"`` or ``"auto"``); it is
passed to the connector only when not None, so the factory works with today's MQTT 5-only connector.
A contract run over a broker is then a few lines::

    class TestRabbitMQContract(ConnectorContract):
        known_deviations = RABBITMQ_DEVIATIONS          # test name -> reason (xfail, strict)
        matrix = ("rabbitmq", "3.1.1")                  # written to results/contract-rabbitmq-3.1.1.json

        @pytest_asyncio.fixture
        async def harness(self, rabbitmq) -> AsyncIterator[BrokerHarness]:
            async with harness_for(rabbitmq, protocol="3.1.1") as harness:
                yield harness
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.protocol import Connector
from cascade.connectors.testing import eventually

from tests.brokers._paho import ProbeClient
from tests.brokers._paho import Protocol as MqttProtocol
from tests.brokers.servers._base import PACKET_LIMIT, RunningBroker

NOTICE_TIMEOUT = 15.0  # s for every connector to notice a stopped broker (keepalive bounds it)

__all__ = ["BrokerHarness", "ControllableBroker", "Deviation", "addresses", "harness_for"]


@dataclass(frozen=True, slots=True)
class Deviation:
    """A contract test a matrix cell is known not to pass, and why (for ``known_deviations``).

    `race`: the failure depends on timing, so a pass is tolerated (xfail, not strict); otherwise a pass
    fails the run, so a fixed deviation cannot stay declared.
    """

    reason: str
    race: bool = False


class ControllableBroker(RunningBroker, Protocol):
    """A broker the harness can stop and start again on the same port."""

    def stop(self, timeout: float = ...) -> None: ...

    def start(self, timeout: float = ...) -> None: ...


class BrokerHarness:
    """`ContractHarness` + `SupportsInjectRaw` + `SupportsDrop` + `SupportsOutage` +
    `SupportsPacketLimit` over one broker.

    ``max_packet_size`` is the server's own (Mosquitto, ejabberd), else the nominal `PACKET_LIMIT` of a
    broker that has no setting for one (RabbitMQ 3.10, aedes, amqtt: their oversize test is a deviation).

    `connector_options` are passed to every connector (the test's own options win); `protocol`, when not
    None, becomes the connector's ``protocol`` option; a broker's `credentials` become its username/password.
    """

    def __init__(
        self,
        server: ControllableBroker,
        *,
        protocol: str | None = None,
        inject_protocol: MqttProtocol = "3.1.1",
        connector_options: dict[str, Any] | None = None,
    ) -> None:
        self.server = server
        self.protocol = protocol
        self._inject_protocol: MqttProtocol = inject_protocol
        self._options = dict(connector_options or {})
        if protocol is not None:
            self._options["protocol"] = protocol
        if server.credentials is not None:
            self._options.setdefault("username", server.credentials[0])
            self._options.setdefault("password", server.credentials[1])
        self._made: list[tuple[MqttConnector, FaultProxy]] = []
        self.max_packet_size: int = getattr(server, "max_packet_size", None) or PACKET_LIMIT
        """Bytes: the broker's packet limit (see the class doc: nominal for brokers without a setting)."""
        self.capabilities: frozenset[str] = frozenset({"inject_raw", "drop", "stop_backend", "packet_limit"})
        """Every capability of the contract (string values of ``cascade.connectors.testing.Capability``)."""

    async def new_connector(self, **options: Any) -> MqttConnector:
        """A connector (not connected) whose connection goes through a proxy of its own."""
        proxy = FaultProxy(self.server.host, self.server.port)
        await proxy.start()
        connector = MqttConnector(self.server.host, proxy.port, **{**self._options, **options})
        self._made.append((connector, proxy))
        return connector

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        """Publish `data` as a foreign client would (QoS 1, acknowledged), with plain paho-mqtt."""

        def publish() -> None:
            client = ProbeClient(
                self.server.host, self.server.port, self._inject_protocol, credentials=self.server.credentials
            )
            try:
                client.publish(topic, data, retain=retain)
            finally:
                client.close()

        await asyncio.to_thread(publish)

    async def drop(self, connector: Connector) -> None:
        """Cut `connector`'s connection abruptly (its proxy resets every open connection)."""
        for made, proxy in self._made:
            if made is connector:
                assert proxy.cut() >= 1, f"{connector!r} had no open connection to drop"
                return
        raise AssertionError(f"{connector!r} was not made by this harness")

    async def stop_backend(self) -> None:
        """Stop the broker gracefully (an outage every connector sees); returns once every connector
        made here noticed (``connected`` is False), so what the suite publishes next is buffered, not
        written into a connection that is about to fail (`SupportsOutage.stop_backend`).
        """
        await asyncio.to_thread(self.server.stop)
        await eventually(lambda: not any(c.connected for c, _proxy in self._made), timeout=NOTICE_TIMEOUT)

    async def start_backend(self) -> None:
        """Start the broker again on the same port; returns once it serves MQTT."""
        await asyncio.to_thread(self.server.start)

    async def aclose(self) -> None:
        """Disconnect every connector made here and close its proxy."""
        made, self._made = self._made, []
        for connector, _proxy in made:
            async with asyncio.timeout(15):
                await connector.disconnect()
        for _connector, proxy in made:
            await proxy.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def harness_for(
    server: ControllableBroker,
    *,
    protocol: str | None = None,
    inject_protocol: MqttProtocol = "3.1.1",
    connector_options: dict[str, Any] | None = None,
) -> BrokerHarness:
    """A contract harness over `server` (see the module doc); use it as ``async with``."""
    return BrokerHarness(
        server, protocol=protocol, inject_protocol=inject_protocol, connector_options=connector_options
    )


def addresses(servers: Sequence[RunningBroker]) -> list[tuple[str, int]]:
    """``(host, port)`` of each server: the multi-address form a failover test will hand the connector."""
    return [(server.host, server.port) for server in servers]
