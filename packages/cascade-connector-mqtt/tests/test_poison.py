"""No poison (docs/contract.md, promise 14) against a real Mosquitto: what the broker's Maximum Packet
Size refuses is refused in the caller once known, dropped if it was queued before; a message the broker
disconnects for is quarantined after two closes, so later QoS 1 publishes are acknowledged; backoff
grows across sessions that die right after CONNACK.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FaultProxy, MosquittoServer
from cascade.connectors.protocol import PayloadError
from cascade.connectors.protocol.core import Outgoing
from cascade.connectors.testing import eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}
BIG = {"p": "y" * 200_000}


@pytest.mark.asyncio
async def test_a_message_over_the_brokers_maximum_packet_size_is_refused_in_the_caller(
    mosquitto_factory: Callable[..., MosquittoServer], make: Callable[..., MqttConnector]
) -> None:
    server = mosquitto_factory(extra_config="max_packet_size 100000\n")
    connector = make(server)
    await connector.connect()
    for qos in (0, 1):
        with pytest.raises(PayloadError, match="Maximum Packet Size"):
            await connector.publish("big/x", BIG, qos=qos)
    await asyncio.wait_for(connector.publish("big/ok", {"small": True}, qos=1), 10)
    stats = connector.stats
    assert (stats.published, stats.dropped, stats.reconnects) == (1, 0, 0)


@pytest.mark.asyncio
async def test_a_queued_message_too_large_for_the_new_broker_is_dropped_not_sent(
    mosquitto: MosquittoServer,
    mosquitto_factory: Callable[..., MosquittoServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    limited = mosquitto_factory(extra_config="max_packet_size 100000\n")
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, **FAST)
        await connector.connect()
        proxy.refuse = True
        proxy.cut()
        await eventually(lambda: not connector.connected)
        await connector.publish("big/queued", BIG)  # no limit known: accepted and queued
        later = asyncio.ensure_future(connector.publish("big/after", {"ok": True}, qos=1))
        with caplog.at_level(logging.ERROR, "cascade.connectors.mqtt"):
            proxy.target_port = limited.port
            proxy.refuse = False
            await asyncio.wait_for(later, 15)  # the QoS 1 behind it is acknowledged
        await connector.disconnect()
    stats = connector.stats
    assert (stats.published, stats.dropped) == (2, 1)
    assert stats.reconnects == 1, "the oversize message was sent and the broker closed the connection"
    assert "larger than the broker's Maximum Packet Size" in caplog.text
    assert "'big/queued'" in caplog.text


@pytest.mark.asyncio
async def test_a_message_the_broker_disconnects_for_is_quarantined_after_two_closes(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    connector = make()
    await connector.connect()
    # Forced past the topic check (a poison the grammar refuses): Mosquitto closes the connection.
    connector._stats.published += 1
    connector._out.queue.append(Outgoing("poison/a\tb", b'{"x": 1}', False, None))
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await asyncio.wait_for(connector.publish("poison/after", {"ok": True}, qos=1), 20)
    stats = connector.stats
    assert stats.quarantined == 1
    assert stats.dropped == 1
    assert 2 <= stats.reconnects <= 3, stats
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("quarantined a message to 'poison/a\\tb'" in e for e in errors), errors
    losses = [r.getMessage() for r in caplog.records if "lost the connection" in r.getMessage()]
    assert len(losses) == stats.reconnects
    assert all("soon after connecting" in line for line in losses)
    assert all("\n" not in line for line in losses)
    await connector.publish("poison/again", {"ok": True}, qos=1)  # the rest flows


@pytest.mark.asyncio
async def test_sessions_that_die_right_after_connack_make_the_backoff_grow(
    mosquitto: MosquittoServer,
) -> None:
    """A proxy that cuts every connection at once: 10 s of it allows only a bounded number of
    reconnects (the delays grow to reconnect_max_delay), not one per minimum delay.
    """
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, reconnect_min_delay=0.01, reconnect_max_delay=1.0)
        await connector.connect()
        loop = asyncio.get_running_loop()
        end = loop.time() + 4.0
        while loop.time() < end:
            proxy.cut()  # every session dies as soon as it is up
            await asyncio.sleep(0.005)  # the fault's own pace (not synchronisation)
        reconnects = connector.stats.reconnects
        await connector.disconnect()
    # With full jitter the mean delay at the cap is about 0.5 s: at most ~8 + the ramp in 4 s;
    # without growing backoff (0.01 s) it would be hundreds.
    assert 1 <= reconnects <= 25, reconnects
