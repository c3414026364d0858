"""Every broker server has the `MosquittoServer` shape: start, kill, restart on the same port, close."""

from __future__ import annotations

import pytest

from tests.brokers.conftest import SERVERS
from tests.brokers.servers._base import BrokerServer, BrokerStartError, mqtt_connack


def _running(server: BrokerServer) -> bool:
    # A function, not the property inline: mypy would keep the narrowing of an earlier assert.
    return server.running


@pytest.mark.parametrize("name", [name for name in SERVERS if name != "mosquitto"])
def test_lifecycle_keeps_the_port_and_cleans_up(name: str) -> None:
    server = SERVERS[name]()
    assert isinstance(server, BrokerServer)
    directory, port = server.directory, server.port
    try:
        assert not _running(server)
        assert mqtt_connack(server.host, port, credentials=server.credentials) is None  # nothing there yet
        server.start()
        assert _running(server)
        assert mqtt_connack(server.host, port, credentials=server.credentials) == 0
        assert server.url.endswith(f"127.0.0.1:{port}")

        server.kill()
        assert not _running(server)
        assert mqtt_connack(server.host, port, credentials=server.credentials) is None

        server.start()
        server.restart()
        assert _running(server)
        assert server.port == port
        assert mqtt_connack(server.host, port, credentials=server.credentials) == 0
        assert repr(server) == f"{type(server).__name__}(port={port}, running)"
    finally:
        server.close()
    assert not _running(server)
    assert not directory.exists()


def test_wait_ready_on_a_stopped_server_raises_with_the_log() -> None:
    server = SERVERS["aedes"]()
    try:
        with pytest.raises(BrokerStartError, match="aedes exited"):
            server.wait_ready(timeout=1)
    finally:
        server.close()
