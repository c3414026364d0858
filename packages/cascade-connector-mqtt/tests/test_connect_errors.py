"""The first connect fails fast and clearly (docs/mqtt.md: ConnectionFailedError); secrets never leak."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles, free_port
from cascade.connectors.protocol import ConnectionFailedError, NotConnectedError

PASSWORD = "correct-horse-battery"
WRONG = "Wr0ng-Pa55word-xyz"

pytestmark = pytest.mark.mosquitto


async def _failure(connector: MqttConnector) -> ConnectionFailedError:
    with pytest.raises(ConnectionFailedError) as caught:
        async with asyncio.timeout(30):  # a hang is a failure, not a slow pass
            await connector.connect()
    with pytest.raises(NotConnectedError):
        await connector.publish("after/failure", {})
    return caught.value


@pytest.mark.asyncio
async def test_nothing_listening_is_unreachable() -> None:
    error = await _failure(MqttConnector("127.0.0.1", free_port()))
    assert error.reason == "unreachable"
    assert "nothing accepts TCP connections" in str(error)


@pytest.mark.asyncio
async def test_unknown_host_is_unreachable() -> None:
    error = await _failure(MqttConnector("no-such-host.invalid", 1883))
    assert error.reason == "unreachable"
    assert "no-such-host.invalid" in str(error)


@pytest.mark.asyncio
async def test_no_connack_is_timeout(broker: MosquittoServer) -> None:
    async with FaultProxy(broker.host, broker.port) as proxy:
        proxy.blackhole = True  # accepts TCP, never answers
        error = await _failure(MqttConnector(proxy.host, proxy.port, connect_timeout=0.3))
    assert error.reason == "timeout"
    assert "no CONNACK" in str(error)


@pytest.mark.asyncio
async def test_connection_closed_before_connack_is_refused(broker: MosquittoServer) -> None:
    async with FaultProxy(broker.host, broker.port) as proxy:
        proxy.refuse = True  # accepts TCP, closes at once
        error = await _failure(MqttConnector(proxy.host, proxy.port))
    assert error.reason == "refused"


@pytest.mark.asyncio
async def test_wrong_password_is_auth_and_never_shown(
    mosquitto_factory: Callable[..., MosquittoServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = mosquitto_factory(users={"alice": PASSWORD})
    caplog.set_level(logging.DEBUG)
    connector = MqttConnector(server.host, server.port, username="alice", password=WRONG)
    error = await _failure(connector)
    assert error.reason == "auth"
    assert "credentials" in str(error)
    for text in (str(error), repr(error), error.detail, repr(connector), caplog.text):
        assert WRONG not in text
        assert PASSWORD not in text
    cause: BaseException | None = error.__cause__
    while cause is not None:
        assert WRONG not in str(cause)
        cause = cause.__cause__ or cause.__context__


@pytest.mark.asyncio
async def test_right_password_connects_and_is_never_logged(
    mosquitto_factory: Callable[..., MosquittoServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = mosquitto_factory(users={"alice": PASSWORD})
    caplog.set_level(logging.DEBUG)
    connector = MqttConnector.from_url(f"mqtt://alice:{PASSWORD}@{server.host}:{server.port}")
    async with connector:
        await connector.publish("auth/ok", {"fine": True}, qos=1)
        assert PASSWORD not in repr(connector)
    assert connector.stats.published == 1
    assert PASSWORD not in caplog.text
    assert "alice" in server.log_text()  # it really authenticated


@pytest.mark.asyncio
async def test_anonymous_client_on_a_password_broker_is_auth(
    mosquitto_factory: Callable[..., MosquittoServer],
) -> None:
    server = mosquitto_factory(users={"alice": PASSWORD})
    error = await _failure(MqttConnector(server.host, server.port))
    assert error.reason == "auth"


@pytest.mark.asyncio
async def test_system_cas_reject_a_private_ca_with_reason_tls(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    assert server.tls_port is not None
    error = await _failure(MqttConnector("localhost", server.tls_port, tls=True))
    assert error.reason == "tls"
    assert "certificate" in str(error)


@pytest.mark.asyncio
async def test_tls_to_a_plain_port_is_tls(broker: MosquittoServer, tls_files: TlsFiles) -> None:
    context = ssl.create_default_context(cafile=str(tls_files.ca_file))
    error = await _failure(MqttConnector(broker.host, broker.port, tls=context))
    assert error.reason == "tls"


@pytest.mark.asyncio
async def test_plain_mqtt_to_a_tls_port_is_refused_fast(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    assert server.tls_port is not None
    error = await _failure(MqttConnector(server.host, server.tls_port, connect_timeout=30))
    assert error.reason == "refused"
    assert "TLS port" in str(error)


@pytest.mark.asyncio
async def test_a_failed_connect_can_be_retried(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    await asyncio.to_thread(broker.stop)
    connector = make()
    error = await _failure(connector)
    assert error.reason == "unreachable"
    await asyncio.to_thread(broker.start)
    await connector.connect()
    assert connector.connected
