"""The fake's packet limit is MQTT's: `InMemoryBroker(max_packet_size=N)` refuses exactly the messages
`MqttConnector` refuses on a Mosquitto with ``max_packet_size N`` (docs/contract.md promise 14), and
Mosquitto really accepts the largest one both let through.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import MosquittoServer
from cascade.connectors.protocol import Connector, PayloadError
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder

LIMIT = 4096
TOPIC = "parity/limit"
SIZES = range(LIMIT - 40, LIMIT + 1)  # string lengths around the boundary (the JSON adds a few bytes)


async def accepted(connector: Connector, qos: int) -> list[int]:
    """The string lengths of ``{"s": "x" * n}`` that `connector` accepts at `qos`; each refused one
    raises `PayloadError` naming the limit."""
    sizes = []
    refused: list[str] = []
    for n in SIZES:
        try:
            await connector.publish(TOPIC, {"s": "x" * n}, qos=qos)
        except PayloadError as exc:
            refused.append(str(exc))
        else:
            sizes.append(n)
    assert all(str(LIMIT) in message for message in refused), refused
    return sizes


@pytest.mark.asyncio
@pytest.mark.parametrize("qos", [0, 1])
async def test_the_fake_refuses_exactly_what_mqtt_refuses(
    mosquitto_factory: Callable[..., MosquittoServer], qos: int
) -> None:
    broker = InMemoryBroker(max_packet_size=LIMIT)
    async with InMemoryConnector(broker) as fake:
        fake_sizes = await accepted(fake, qos)
    server = mosquitto_factory(max_packet_size=LIMIT)
    received = Recorder()
    async with (
        MqttConnector(server.host, server.port) as subscriber,
        MqttConnector(server.host, server.port) as publisher,
    ):
        await subscriber.subscribe(TOPIC, received)
        mqtt_sizes = await accepted(publisher, qos)
        await publisher.publish(TOPIC, {"done": True}, qos=1)
        await received.wait_for(len(mqtt_sizes) + 1, 10.0)
        assert publisher.stats.reconnects == 0, "Mosquitto closed the connection: a packet was too large"
    assert fake_sizes == mqtt_sizes
    assert SIZES[0] in mqtt_sizes, "the boundary is not inside SIZES"
    assert SIZES[-1] not in mqtt_sizes, "the boundary is not inside SIZES"
    largest = max(mqtt_sizes)
    assert mqtt_sizes == list(range(SIZES[0], largest + 1))
    assert {"s": "x" * largest} in received.payloads  # the largest accepted one arrived
