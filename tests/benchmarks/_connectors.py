"""Factories for the connectors under test (each figure makes fresh instances)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.protocol import Connector
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector

from ._broker import Endpoint

ConnectorFactory = Callable[[], Connector]


def mqtt_factory(server: Endpoint, **options: Any) -> ConnectorFactory:
    """Makes `MqttConnector`s for `server` (default settings unless `options` say otherwise)."""

    def make() -> Connector:
        return MqttConnector(server.host, server.port, **options)

    return make


def memory_broker() -> InMemoryBroker:
    """A fresh `InMemoryBroker` that keeps no history (long runs)."""
    return InMemoryBroker(keep_history=False)


def memory_factory(broker: InMemoryBroker, **options: Any) -> ConnectorFactory:
    """Makes `InMemoryConnector`s on `broker`."""

    def make() -> Connector:
        return InMemoryConnector(broker=broker, **options)

    return make
