"""`cascade.connectors.mqtt.testing`: public, importable on its own, and never a cost of the connector."""

from __future__ import annotations

import json
import subprocess
import sys

import cascade.connectors.mqtt.testing as mqtt_testing
from cascade.connectors.mqtt import faults, mosquitto

PROBE = """
import json, sys
import cascade.connectors.mqtt
tooling = ("cascade.connectors.testing", "cascade.connectors.mqtt.testing")
after_connector = sorted(m for m in sys.modules if m.startswith(tooling))
import cascade.connectors.mqtt.testing
after_testing = sorted(m for m in sys.modules if m.startswith("cascade.connectors.testing"))
print(json.dumps({"connector": after_connector, "testing": after_testing, "pytest": "pytest" in sys.modules}))
"""


def test_importing_the_connector_loads_no_test_tooling_and_the_tooling_not_the_testing_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert loaded == {"connector": [], "testing": [], "pytest": False}


def test_the_old_import_paths_are_the_same_objects() -> None:
    assert mosquitto.MosquittoServer is mqtt_testing.MosquittoServer
    assert mosquitto.TlsFiles is mqtt_testing.TlsFiles
    assert mosquitto.find_mosquitto is mqtt_testing.find_mosquitto
    assert faults.FaultProxy is mqtt_testing.FaultProxy


def test_the_public_names() -> None:
    assert set(mqtt_testing.__all__) == {
        "FaultProxy",
        "MqttHarness",
        "MosquittoNotFoundError",
        "MosquittoServer",
        "TlsFiles",
        "find_mosquitto",
        "free_port",
        "make_tls_files",
    }
    for name in mqtt_testing.__all__:
        assert getattr(mqtt_testing, name).__doc__, f"{name} has no docstring"
