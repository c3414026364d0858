"""A RabbitMQ node for figure 2's context rows, started with the broker matrix's own `RabbitMQServer`
(tests/brokers/servers: a private node on free loopback ports, MQTT 3.1.1 through ``rabbitmq_mqtt``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.brokers.servers._base import BrokerNotInstalledError
from tests.brokers.servers.rabbitmq import RabbitMQServer, rabbitmq_version


def rabbitmq_absent(smoke: bool) -> str:
    """Why the RabbitMQ rows are not measured in this run ("" when they are).

    Not at smoke sizes: a node takes 5 to 10 s to start, more than the whole smoke run (about 6 s),
    and the broker matrix (``./dev test-brokers``) already runs the connector against RabbitMQ.
    """
    if smoke:
        return "not measured at smoke sizes: a RabbitMQ node takes 5 to 10 s to start"
    try:
        rabbitmq_version()  # looks for rabbitmq-server where the matrix's RabbitMQServer does
    except BrokerNotInstalledError:
        return "not measured: rabbitmq-server not installed"
    return ""


@asynccontextmanager
async def rabbitmq_node() -> AsyncIterator[tuple[RabbitMQServer, str]]:
    """A started node and its version; stopped (and its files removed) on exit.

    Raises `BrokerStartError` (with the node's log) if it does not come up.
    """
    server = RabbitMQServer()
    try:
        await asyncio.to_thread(server.start)
        yield server, rabbitmq_version()
    finally:
        await asyncio.to_thread(server.close)
