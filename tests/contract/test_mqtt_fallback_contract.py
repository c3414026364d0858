"""The whole contract again, with the MQTT connector forced onto paho's public API only.

This is what runs when an aiomqtt/paho release moves one of the private hooks the fast path uses
(``cascade.connectors.mqtt._hooks``; ``CASCADE_MQTT_PUBLIC_API_ONLY=1`` forces the same): slower, and
every promise of docs/contract.md still kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cascade.connectors.mqtt import _hooks

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # the MQTT harness lives next to this file, in tests/contract
    sys.path.insert(0, str(_ROOT))

from tests.contract import test_mqtt_contract as _mqtt  # noqa: E402


class TestMqttFallbackContract(_mqtt.TestMqttContract):
    """`TestMqttContract` (every capability, no skips) with `_hooks.PUBLIC_API_ONLY` set."""

    @pytest.fixture(autouse=True)
    def _public_api_only(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_hooks, "PUBLIC_API_ONLY", True)
        assert not _hooks.private_api_enabled(), "the public-API switch did not take effect"
