"""The session's broker fixtures work: plain, TLS with the generated CA, restart on the same port."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles


def test_session_broker_accepts_tcp(mosquitto: MosquittoServer) -> None:
    assert mosquitto.running
    with socket.create_connection((mosquitto.host, mosquitto.port), timeout=2):
        pass


def test_tls_listener_verifies_with_generated_ca(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    assert server.tls_port is not None
    context = ssl.create_default_context(cafile=str(tls_files.ca_file))
    with (
        socket.create_connection((server.host, server.tls_port), timeout=2) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() is not None


def test_restart_keeps_the_port(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    server = mosquitto_factory()
    port = server.port
    server.kill()
    killed = server.running
    server.start()
    assert not killed
    assert server.running
    assert server.port == port
