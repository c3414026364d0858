"""Exact accounting at disconnect (docs/contract.md, promise 12) against a real Mosquitto: a message
written to the socket is never counted as dropped; what the broker had not confirmed when the flush
timed out is counted apart in ``stats.unconfirmed``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FaultProxy, MosquittoServer
from cascade.connectors.testing import eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}


@pytest.mark.asyncio
async def test_a_frozen_broker_during_disconnect_leaves_written_messages_unconfirmed_not_dropped(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, flush_timeout=1.0, **FAST)
        await connector.connect()
        proxy.frozen = True  # the path dies silently: writes succeed, nothing comes back
        for i in range(10_001):
            await connector.publish("acct/frozen", {"i": i})
        out = connector._out
        await eventually(lambda: not out.queue and all(w.is_published() for w in out.unwritten), 10)
        with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
            await connector.disconnect()
    stats = connector.stats
    assert stats.published == 10_001
    assert stats.dropped == 0, "messages already written were counted as dropped"
    assert stats.unconfirmed == 10_001
    assert "10001 written but not confirmed" in caplog.text


@pytest.mark.asyncio
async def test_disconnect_during_an_outage_counts_the_queue_as_dropped(mosquitto: MosquittoServer) -> None:
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, flush_timeout=0.2, **FAST)
        await connector.connect()
        proxy.refuse = True
        proxy.cut()
        await eventually(lambda: not connector.connected)
        for i in range(50):
            await connector.publish("acct/outage", {"i": i})
        await connector.disconnect()
    stats = connector.stats
    assert (stats.published, stats.dropped, stats.unconfirmed) == (50, 50, 0)
