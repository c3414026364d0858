"""Factories for the connectors under test (each figure makes fresh instances)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import Connector

ConnectorFactory = Callable[[], Connector]


def _load(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def mqtt_available() -> bool:
    """Whether `cascade.connectors.mqtt.MqttConnector` exists in this checkout."""
    return _load("cascade.connectors.mqtt", "MqttConnector") is not None


def memory_available() -> bool:
    """Whether `cascade.connectors.testing.InMemoryConnector` exists in this checkout."""
    return _load("cascade.connectors.testing", "InMemoryConnector") is not None


def mqtt_factory(server: MosquittoServer, **options: Any) -> ConnectorFactory:
    """Makes `MqttConnector`s for `server` (default settings unless `options` say otherwise)."""
    cls = _load("cascade.connectors.mqtt", "MqttConnector")
    if cls is None:
        raise RuntimeError("MqttConnector is not available")

    def make() -> Connector:
        connector: Connector = cls(server.host, server.port, **options)
        return connector

    return make


def memory_broker() -> Any:
    """A fresh `InMemoryBroker` that keeps no history (long runs)."""
    cls = _load("cascade.connectors.testing", "InMemoryBroker")
    if cls is None:
        raise RuntimeError("InMemoryBroker is not available")
    return cls(keep_history=False)


def memory_factory(broker: Any, **options: Any) -> ConnectorFactory:
    """Makes `InMemoryConnector`s on `broker`."""
    cls = _load("cascade.connectors.testing", "InMemoryConnector")
    if cls is None:
        raise RuntimeError("InMemoryConnector is not available")

    def make() -> Connector:
        connector: Connector = cls(broker=broker, **options)
        return connector

    return make
