"""With nothing but its URL (``protocol="auto"``), the connector connects to every broker of the matrix,
speaks the version the truth table says the broker accepts, and round-trips a retained message.
"""

from __future__ import annotations

from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.testing import Recorder

from tests.brokers._paho import unique

EXPECTED = {"mosquitto": "5", "rabbitmq": "3.1.1", "ejabberd": "5", "aedes": "3.1.1", "amqtt": "3.1.1"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.asyncio
async def test_auto_connects_with_only_the_url(name: str, broker_pool: Any) -> None:
    server = broker_pool.get(name)
    topic = unique("cascade/negotiation").replace("-", "_")
    async with MqttConnector.from_url(server.url) as connector:
        assert connector.protocol_version == EXPECTED[name]
        await connector.publish(topic, {"kept": name}, qos=1, retain=True)
        seen = Recorder()
        await connector.subscribe(topic, seen)  # an exact filter: every broker replays retained state
        assert seen.payloads == [{"kept": name}]
