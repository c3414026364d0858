"""Lifecycle, argument checks, repr, logging and stats of `MqttConnector` (beyond the contract suite)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import (
    Connector,
    ConnectorError,
    NotConnectedError,
    PayloadError,
    TopicError,
)
from cascade.connectors.testing import Recorder, eventually

pytestmark = pytest.mark.mosquitto


def test_is_a_connector() -> None:
    assert isinstance(MqttConnector(), Connector)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535"),
        ({"port": "1883"}, "port must be an int"),
        ({"keepalive": -1}, "keepalive must be between 0 and 65535"),
        ({"max_buffered": 0}, "max_buffered must be at least 1"),
        ({"reconnect_min_delay": -1}, "reconnect_min_delay must be at least 0"),
        ({"reconnect_max_delay": 0}, "reconnect_max_delay must be more than 0"),
        ({"reconnect_min_delay": 2.0, "reconnect_max_delay": 1.0}, "must be at least reconnect_min_delay"),
        ({"connect_timeout": float("inf")}, "connect_timeout must be finite"),
        ({"flush_timeout": -0.5}, "flush_timeout must be at least 0"),
        ({"password": "x"}, "a password needs a username"),
        ({"client_id": ""}, "client_id must be a non-empty str"),
        ({"tls": "yes"}, "tls must be an ssl.SSLContext, True or None"),
        ({"hostname": ""}, "hostname must be a non-empty str"),
    ],
)
def test_invalid_settings_raise_value_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MqttConnector(**options)


def test_invalid_source_raises_topic_error() -> None:
    with pytest.raises(TopicError):
        MqttConnector(source="a/b")


def test_tls_true_means_system_cas_and_host_name_checks() -> None:
    connector = MqttConnector(tls=True)
    assert isinstance(connector.settings.tls, ssl.SSLContext)
    assert connector.settings.tls.check_hostname
    assert connector.settings.tls.verify_mode == ssl.CERT_REQUIRED


def test_repr_and_defaults() -> None:
    connector = MqttConnector("broker.example", 1884, username="bob", password="hunter2", source="w-1")
    assert repr(connector).startswith("MqttConnector('broker.example', 1884, username='bob', tls=False")
    assert "source='w-1'" in repr(connector)
    assert "idle" in repr(connector)
    assert "hunter2" not in repr(connector)
    assert connector.source == "w-1"
    assert connector.client_id.startswith("cascade-w-1-")
    assert not connector.connected


@pytest.mark.asyncio
async def test_publish_and_subscribe_need_a_connection(make: Callable[..., MqttConnector]) -> None:
    connector = make()
    with pytest.raises(NotConnectedError):
        await connector.publish("t", {})
    with pytest.raises(NotConnectedError):
        await connector.subscribe("t", Recorder())
    async with connector:
        await connector.publish("t", {}, qos=1)
    with pytest.raises(NotConnectedError):
        await connector.publish("t", {})
    with pytest.raises(NotConnectedError):
        await connector.subscribe("t", Recorder())


@pytest.mark.asyncio
async def test_context_manager_is_reusable_but_not_reentrant(make: Callable[..., MqttConnector]) -> None:
    connector = make()
    states: list[bool] = []
    async with connector:
        with pytest.raises(ConnectorError, match="re-entrant"):
            async with connector:
                pass  # pragma: no cover - never entered
        states.append(connector.connected)
    states.append(connector.connected)
    async with connector:
        await connector.publish("t", {}, qos=1)
    states.append(connector.connected)
    assert states == [True, False, False]


@pytest.mark.asyncio
async def test_bad_arguments_raise_before_anything_is_sent(make: Callable[..., MqttConnector]) -> None:
    connector = make()
    await connector.connect()
    with pytest.raises(ValueError, match="qos must be 0 or 1"):
        await connector.publish("t", {}, qos=2)
    with pytest.raises(PayloadError):
        await connector.publish("t", {"x": float("nan")})
    with pytest.raises(TopicError):
        await connector.publish("a/+", {})
    with pytest.raises(TopicError):
        await connector.subscribe("a/#/b", Recorder())
    assert connector.stats.published == 0


@pytest.mark.asyncio
async def test_callback_errors_are_logged_with_the_topic_and_counted(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    connector = make()
    await connector.connect()
    calls: list[str] = []

    async def broken(topic: str, payload: dict[str, Any]) -> None:
        calls.append(topic)
        raise RuntimeError("boom")

    await connector.subscribe("errors/+", broken)
    await connector.publish("errors/one", {})
    await connector.publish("errors/two", {})
    await eventually(lambda: connector.stats.callback_errors == 2)
    assert calls == ["errors/one", "errors/two"]
    assert "subscription callback for 'errors/one' raised" in caplog.text
    assert "RuntimeError: boom" in caplog.text


@pytest.mark.asyncio
async def test_disconnect_from_inside_a_callback(make: Callable[..., MqttConnector]) -> None:
    connector = make()
    await connector.connect()
    done = asyncio.Event()

    async def stop(topic: str, payload: dict[str, Any]) -> None:
        await connector.disconnect()
        done.set()

    await connector.subscribe("stop/now", stop)
    await connector.publish("stop/now", {}, qos=1)
    async with asyncio.timeout(10):
        await done.wait()
    assert not connector.connected
    with pytest.raises(NotConnectedError):
        await connector.publish("t", {})


@pytest.mark.asyncio
async def test_reconnect_after_disconnect_keeps_counting(
    make: Callable[..., MqttConnector], broker: MosquittoServer
) -> None:
    connector = make()
    seen = Recorder()
    for round_ in range(2):
        async with connector:
            await connector.subscribe("again/t", seen)
            await connector.publish("again/t", {"round": round_}, qos=1)
            await seen.wait_for(round_ + 1)
    assert seen.payloads == [{"round": 0}, {"round": 1}]
    assert connector.stats.published == 2
    assert connector.stats.delivered == 2
    assert broker.log_text().count(f"as {connector.client_id}") == 2


@pytest.mark.asyncio
async def test_overflow_during_an_outage_is_logged_once(
    broker: MosquittoServer, make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    connector = make(max_buffered=10)
    await connector.connect()
    await asyncio.to_thread(broker.stop)
    await eventually(lambda: not connector.connected)
    caplog.set_level(logging.WARNING, logger="cascade.connectors.mqtt")
    for i in range(25):
        await connector.publish("over/flow", {"i": i})
    assert connector.stats.dropped == 15
    assert caplog.text.count("outbound buffer full") == 1
