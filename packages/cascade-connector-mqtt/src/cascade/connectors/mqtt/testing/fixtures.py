"""Pytest fixtures for tests against a real Mosquitto: ``mosquitto``, ``mosquitto_factory``, ``tls_files``.

Needs pytest (this module is the only part of the MQTT package that imports it). Use it from a
``conftest.py``::

    from cascade.connectors.mqtt.testing.fixtures import mosquitto, mosquitto_factory, tls_files

(or ``pytest_plugins = ["cascade.connectors.mqtt.testing.fixtures"]`` in the root conftest). The
brokers run the system's ``mosquitto`` on free loopback ports with private data directories.
"""

from __future__ import annotations

__all__ = ["mosquitto", "mosquitto_factory", "tls_files"]

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._mosquitto import MosquittoServer, TlsFiles
from ._tls import make_tls_files


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    """One Mosquitto for the session, on a free loopback port. Do not stop it; use `mosquitto_factory`."""
    server = MosquittoServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def mosquitto_factory() -> Iterator[Callable[..., MosquittoServer]]:
    """Make private, started brokers (`MosquittoServer(**kwargs)`), closed at teardown; free to stop/kill."""
    servers: list[MosquittoServer] = []

    def make(**kwargs: Any) -> MosquittoServer:
        server = MosquittoServer(**kwargs)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it (`make_tls_files`)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))
