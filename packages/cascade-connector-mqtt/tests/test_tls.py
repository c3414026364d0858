"""TLS round trips with a private CA: an `ssl.SSLContext`, and ``mqtts://`` with ``?ca_file=``."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles
from cascade.connectors.testing import Recorder

pytestmark = pytest.mark.mosquitto


async def _round_trip(publisher: MqttConnector, subscriber: MqttConnector) -> None:
    async with publisher, subscriber:
        seen = Recorder()
        await subscriber.subscribe("tls/+", seen)
        await publisher.publish("tls/a", {"secret": "over TLS"}, qos=1)
        await publisher.publish("tls/b", {"n": 2})
        await seen.wait_for(2)
        assert seen.messages == [("tls/a", {"secret": "over TLS"}), ("tls/b", {"n": 2})]


@pytest.mark.asyncio
async def test_round_trip_with_an_ssl_context(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    assert server.tls_port is not None
    context = ssl.create_default_context(cafile=str(tls_files.ca_file))
    await _round_trip(
        MqttConnector("localhost", server.tls_port, tls=context),
        MqttConnector("127.0.0.1", server.tls_port, tls=context),
    )


@pytest.mark.asyncio
async def test_round_trip_with_an_mqtts_url(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    url = f"mqtts://localhost:{server.tls_port}/?ca_file={tls_files.ca_file}"
    await _round_trip(MqttConnector.from_url(url), MqttConnector.from_url(url))


@pytest.mark.asyncio
async def test_a_context_without_host_name_checks_is_respected(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    """A context that verifies the chain but not the name (check_hostname=False) connects by any name."""
    server = mosquitto_factory(tls=tls_files)
    assert server.tls_port is not None
    context = ssl.create_default_context(cafile=str(tls_files.ca_file))
    context.check_hostname = False
    async with MqttConnector("127.0.0.1", server.tls_port, tls=context) as connector:
        await connector.publish("tls/x", {}, qos=1)
        assert connector.connected
