"""Fixtures for the cross-package tests: real Mosquitto brokers started by the test session.

``mosquitto`` (one broker for the session), ``mosquitto_factory`` (private brokers, free to stop or
kill) and ``tls_files`` (a throwaway CA and server certificate), from the MQTT package's testing module.
"""

from cascade.connectors.mqtt.testing.fixtures import mosquitto, mosquitto_factory, tls_files

__all__ = ["mosquitto", "mosquitto_factory", "tls_files"]
