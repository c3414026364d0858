"""Callbacks on MQTT: plain functions and coroutine functions alike; a non-callable is refused."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol.core import ConnectorState
from cascade.connectors.testing import Recorder, eventually

pytestmark = pytest.mark.mosquitto


@pytest.mark.asyncio
async def test_plain_functions_partials_and_coroutines_all_receive(
    make: Callable[..., MqttConnector],
) -> None:
    connector = make()
    await connector.connect()
    seen: list[tuple[str, dict[str, Any]]] = []

    def plain(topic: str, payload: dict[str, Any]) -> None:
        seen.append((topic, payload))

    async def tagged(into: Recorder, topic: str, payload: dict[str, Any]) -> None:
        await into(topic, payload)

    partial_got = Recorder()
    handle = await connector.subscribe("cb/+", plain)
    assert handle.topic_filter == "cb/+"
    await connector.subscribe("cb/+", functools.partial(tagged, partial_got))
    with pytest.raises(TypeError, match="callback must be callable"):
        await connector.subscribe("cb/+", 42)  # type: ignore[arg-type]
    await connector.publish("cb/x", {"n": 1}, qos=1)
    await partial_got.wait_for(1)
    assert partial_got.payloads == [{"n": 1}]
    assert seen == [("cb/x", {"n": 1})]
    assert connector.stats.callback_errors == 0
    await connector.disconnect()


@pytest.mark.asyncio
async def test_the_state_follows_the_lifecycle(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    connector = make()
    states = [connector.state]
    await connector.connect()
    states.append(connector.state)
    await asyncio.to_thread(broker.stop)
    await eventually(lambda: connector.state is ConnectorState.RECONNECTING)
    assert "reconnecting" in repr(connector)
    await asyncio.to_thread(broker.start)
    await eventually(lambda: connector.state is ConnectorState.CONNECTED, timeout=10)
    states.append(connector.state)
    await connector.disconnect()
    states.append(connector.state)
    s = ConnectorState
    assert states == [s.IDLE, s.CONNECTED, s.CONNECTED, s.IDLE]
    assert "idle" in repr(connector)
