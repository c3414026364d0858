"""Fixtures for the MQTT package tests: private brokers, connectors torn down for you, dynsec ACLs.

``mosquitto`` (the session broker), ``mosquitto_factory`` and ``tls_files`` come from the package's
testing module (`cascade.connectors.mqtt.testing.fixtures`), so these tests run on their own.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import MosquittoServer
from cascade.connectors.mqtt.testing.fixtures import mosquitto, mosquitto_factory, tls_files

__all__ = [
    "FAST",
    "broker",
    "dynsec",
    "dynsec_config",
    "dynsec_plugin",
    "make",
    "mosquitto",
    "mosquitto_factory",
    "tls_files",
]

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}
"""Reconnect quickly in tests."""

_DYNSEC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/opt/homebrew/lib/mosquitto_dynamic_security.so",
)


def dynsec_plugin() -> str:
    """The path of Mosquitto's dynamic security plugin (it ships with Mosquitto 2)."""
    for path in _DYNSEC_PATHS:
        if Path(path).exists():
            return path
    found = shutil.which("mosquitto_dynamic_security.so")
    if found:
        return found
    raise RuntimeError(f"mosquitto_dynamic_security.so not found (looked in {', '.join(_DYNSEC_PATHS)})")


def dynsec_config(directory: Path, deny: Sequence[Mapping[str, Any]]) -> str:
    """Mosquitto config lines loading the dynamic security plugin for anonymous clients.

    Everything is allowed except the `deny` ACL entries (``{"acltype": "subscribePattern", "topic":
    "secret/#"}``, ``publishClientSend`` ...). Unlike ``acl_file`` (which Mosquitto 2.0 applies only when
    delivering, and answers every SUBSCRIBE with success), dynsec refuses a denied SUBSCRIBE in its SUBACK.
    """
    acls = [{**entry, "priority": 0, "allow": False} for entry in deny]
    config = {
        "defaultACLAccess": {
            "publishClientSend": True,
            "publishClientReceive": True,
            "subscribe": True,
            "unsubscribe": True,
        },
        "clients": [],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limited"}]}],
        "roles": [{"rolename": "limited", "acls": acls}],
        "anonymousGroup": "anonymous",
    }
    path = directory / "dynamic-security.json"
    path.write_text(json.dumps(config))
    return f"plugin {dynsec_plugin()}\nplugin_opt_config_file {path}"


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoServer]) -> MosquittoServer:
    """A private, started broker for this test (free to stop, restart or kill)."""
    return mosquitto_factory()


@pytest.fixture
def dynsec(tmp_path: Path) -> Callable[[Sequence[Mapping[str, Any]]], str]:
    """``dynsec(deny)``: config lines for `MosquittoServer(extra_config=...)` (see `dynsec_config`)."""
    return lambda deny: dynsec_config(tmp_path, deny)


@pytest_asyncio.fixture
async def make(broker: MosquittoServer) -> AsyncIterator[Callable[..., MqttConnector]]:
    """``make(server=None, **options)``: a new `MqttConnector` (not connected) on `broker` or `server`,
    with fast reconnects; disconnected at teardown.
    """
    made: list[MqttConnector] = []

    def factory(server: MosquittoServer | None = None, **options: Any) -> MqttConnector:
        target = server or broker
        connector = MqttConnector(target.host, target.port, **{**FAST, **options})
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.disconnect()
