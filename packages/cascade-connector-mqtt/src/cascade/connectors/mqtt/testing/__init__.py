"""Test tooling for the MQTT connector: a private Mosquitto, a fault proxy and the contract harness.

- `MosquittoServer`: runs the system's ``mosquitto`` on a free loopback port with a private data
  directory (restart, kill, TLS, passwords, ACLs); `make_tls_files` makes a throwaway CA for it.
- `FaultProxy`: a TCP proxy that cuts, refuses, blackholes or freezes connections on purpose.
- `MqttHarness`: the ``harness`` of ``cascade.connectors.testing.ConnectorContract`` for
  `MqttConnector`, on a `MosquittoServer` or on your own broker (host, port, credentials, TLS).
- ``cascade.connectors.mqtt.testing.fixtures``: pytest fixtures (``mosquitto``,
  ``mosquitto_factory``, ``tls_files``); the only module here that imports pytest.

Importing ``cascade.connectors.mqtt`` never imports this module; nothing here imports
``cascade.connectors.testing``.
"""

from ._faults import FaultProxy
from ._harness import MqttHarness
from ._mosquitto import MosquittoNotFoundError, MosquittoServer, TlsFiles, find_mosquitto, free_port
from ._tls import make_tls_files

__all__ = [
    "FaultProxy",
    "MqttHarness",
    "MosquittoNotFoundError",
    "MosquittoServer",
    "TlsFiles",
    "find_mosquitto",
    "free_port",
    "make_tls_files",
]
