"""`MosquittoBroker`: the package's `MosquittoServer` in the matrix's shape (`name`, `wait_ready`)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from cascade.connectors.mqtt.mosquitto import MosquittoServer

from ._base import PACKET_LIMIT, BrokerStartError, mqtt_connack

__all__ = ["MosquittoBroker", "mosquitto_version"]


def mosquitto_version(executable: str) -> str:
    """The version Mosquitto reports (``mosquitto -h`` prints ``mosquitto version 2.0.11``)."""
    out = subprocess.run([executable, "-h"], capture_output=True, text=True, timeout=10, check=False).stdout
    for word in out.split():
        if word[:1].isdigit() and "." in word:
            return word
    return "unknown"


class MosquittoBroker(MosquittoServer):
    """Mosquitto on a free loopback port (see `MosquittoServer`), named ``mosquitto`` in the matrix.

    Its ``max_packet_size`` is `PACKET_LIMIT` unless given (it announces it to MQTT 5 clients).
    """

    name = "mosquitto"
    credentials: tuple[str, str] | None = None

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_packet_size", PACKET_LIMIT)
        super().__init__(**kwargs)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Return once an MQTT CONNECT gets CONNACK 0; `BrokerStartError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while mqtt_connack(self.host, self.port, timeout=0.5) != 0:
            if not self.running or time.monotonic() > deadline:
                raise BrokerStartError(f"mosquitto is not serving MQTT: {self.log_tail()}")
            time.sleep(0.05)  # polling interval between connection attempts

    @property
    def version(self) -> str:
        """The running binary's version."""
        return mosquitto_version(self.executable)
