"""`MqttHarness`: the contract harness for `MqttConnector`, on a private Mosquitto or on your broker.

It is a plain object with ``new_connector`` and the capability methods, so this package needs
nothing from ``cascade.connectors.testing`` (the two never import each other); its
``capabilities`` are the string values of that package's ``Capability`` members.
"""

from __future__ import annotations

__all__ = ["MqttHarness"]

import asyncio
import itertools
import ssl
from collections.abc import Mapping
from typing import Any

import aiomqtt
from cascade.connectors.protocol import Connector, ConnectorError

from .._connector import MqttConnector
from ._faults import FaultProxy
from ._mosquitto import MosquittoServer

_ids = itertools.count()
_NOTICE_TIMEOUT = 10.0
"""Seconds `MqttHarness.stop_backend` waits for the connectors to notice the outage."""

INJECT_RAW = "inject_raw"
DROP = "drop"
STOP_BACKEND = "stop_backend"
PACKET_LIMIT = "packet_limit"


class MqttHarness:
    """Makes `MqttConnector` instances on one broker for `ConnectorContract` (``harness`` fixture).

    Either give it a `MosquittoServer` it may stop and restart (``inject_raw``, ``drop``,
    ``stop_backend``, and ``packet_limit`` when the server has a ``max_packet_size``: every
    capability), or point it at your own broker with ``host``/``port`` and, if needed,
    ``username``/``password``/``tls``: then it cannot stop the broker nor knows its limit, so
    ``stop_backend`` and ``packet_limit`` are not declared and those tests skip, saying so. ``drop``
    needs a `FaultProxy` in front of each connector (a local TCP forwarder that can cut the connection
    abruptly): on by default without TLS; with TLS the connector would verify the certificate against
    ``127.0.0.1``, so pass ``fault_proxy=True`` only with an `ssl.SSLContext` that accepts that.
    ``connector_options`` are extra `MqttConnector` keywords for every connector. Raises `ValueError`
    for a bad combination.
    """

    def __init__(
        self,
        server: MosquittoServer | None = None,
        *,
        host: str | None = None,
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | bool | None = None,
        fault_proxy: bool | None = None,
        connector_options: Mapping[str, Any] | None = None,
    ) -> None:
        if (server is None) == (host is None):
            raise ValueError("give MqttHarness either a MosquittoServer or host= (your broker), not both")
        self.server = server
        self.host = server.host if server is not None else str(host)
        self.port = server.port if server is not None else int(port)
        self._username = username
        self._password = password
        self._tls = tls
        self.fault_proxy = (tls is None) if fault_proxy is None else bool(fault_proxy)
        self.connector_options: dict[str, Any] = dict(connector_options or {})
        declared = {INJECT_RAW}
        if self.fault_proxy:
            declared.add(DROP)
        if server is not None:
            declared.add(STOP_BACKEND)
            if server.max_packet_size is not None:
                declared.add(PACKET_LIMIT)
        self.capabilities: frozenset[str] = frozenset(declared)
        """The declared capabilities (string values of ``cascade.connectors.testing.Capability``)."""
        self._made: list[tuple[MqttConnector, FaultProxy | None]] = []

    def __repr__(self) -> str:
        user = " (with credentials)" if self._username is not None else ""
        return (
            f"MqttHarness({self.host}:{self.port}{user}, capabilities={sorted(self.capabilities)}, "
            f"connectors={len(self._made)})"
        )

    async def new_connector(self, **options: Any) -> MqttConnector:
        """A new, not yet connected `MqttConnector` on the broker (through its own proxy if enabled)."""
        proxy: FaultProxy | None = None
        port = self.port
        if self.fault_proxy:
            proxy = FaultProxy(self.host, self.port)
            await proxy.start()
            port = proxy.port
        host = proxy.host if proxy is not None else self.host
        connector = MqttConnector(
            host,
            port,
            username=self._username,
            password=self._password,
            tls=self._tls,
            **{**self.connector_options, **options},
        )
        self._made.append((connector, proxy))
        return connector

    @property
    def max_packet_size(self) -> int:
        """Bytes: the `MosquittoServer`'s ``max_packet_size`` (``packet_limit``).

        Raises `ConnectorError` if it has none (or this harness runs on your broker).
        """
        limit = self.server.max_packet_size if self.server is not None else None
        if limit is None:
            raise ConnectorError("this MqttHarness's broker has no known max_packet_size")
        return limit

    async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None:
        """Publish `data` unchanged (QoS 1) with a plain aiomqtt client, as a foreign client would."""
        tls_context = ssl.create_default_context() if self._tls is True else self._tls or None
        async with aiomqtt.Client(
            self.host,
            self.port,
            username=self._username,
            password=self._password,
            identifier=f"contract-inject-{next(_ids)}",
            tls_context=tls_context,
        ) as client:
            await client.publish(topic, data, qos=1, retain=retain)

    async def drop(self, connector: Connector) -> None:
        """Cut `connector`'s connection abruptly (TCP reset through its proxy; the broker fires the will)."""
        for made, proxy in self._made:
            if made is connector:
                if proxy is None:
                    raise ConnectorError("this MqttHarness runs without fault proxies: it cannot drop")
                if proxy.cut() < 1:
                    raise ConnectorError(f"{connector!r} had no open connection to drop")
                return
        raise ConnectorError(f"{connector!r} was not made by this harness")

    async def stop_backend(self) -> None:
        """Stop the `MosquittoServer` (retained state is persisted) and wait until every connector made
        here noticed (``connected`` is False), so what is published next is buffered, not written into
        a connection that is about to fail. `ConnectorError` if one still looks connected after 10 s.
        """
        await asyncio.to_thread(self._server("stop").stop)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _NOTICE_TIMEOUT
        while still := [connector for connector, _proxy in self._made if connector.connected]:
            if loop.time() >= deadline:
                raise ConnectorError(
                    f"{still[0]!r} did not notice the stopped broker within {_NOTICE_TIMEOUT:g} s"
                )
            await asyncio.sleep(0.005)

    async def start_backend(self) -> None:
        """Start the `MosquittoServer` again on the same port."""
        await asyncio.to_thread(self._server("start").start)

    def _server(self, action: str) -> MosquittoServer:
        if self.server is None:
            raise ConnectorError(f"this MqttHarness does not control the broker: it cannot {action} it")
        return self.server

    async def aclose(self) -> None:
        """Disconnect every connector made (15 s each at most), then close their proxies."""
        made, self._made = self._made, []
        for connector, _proxy in made:
            async with asyncio.timeout(15):
                await connector.disconnect()
        for _connector, proxy in made:
            if proxy is not None:
                await proxy.close()
