"""The private aiomqtt/paho hooks: each checked at import, the public-API fallback when one is missing
(or when forced), and that the fallback really is what runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import paho.mqtt.client as paho
import pytest
from cascade.connectors.mqtt import MqttConnector, _hooks
from cascade.connectors.mqtt._paho_driver import PahoDriver
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.testing import eventually
from paho.mqtt.enums import CallbackAPIVersion


def test_no_hook_is_missing_on_the_installed_versions() -> None:
    """If this fails on a new aiomqtt/paho release, the fast path is off (the connector still works,
    slower): adapt `_hooks` to the release, or pin below it."""
    assert _hooks.missing_hooks() == ()


@pytest.mark.parametrize(
    ("name", "hook"),
    [
        ("_packet_queue", "paho Client._packet_queue"),
        ("_send_puback", "paho Client._send_puback"),
        ("_send_pingreq", "paho Client._send_pingreq"),
        ("_handle_publish", "paho Client._handle_publish"),
        ("_handle_pubackcomp", "paho Client._handle_pubackcomp"),
        ("_mid_generate", "paho Client._mid_generate"),
    ],
)
def test_a_missing_paho_method_is_noticed(monkeypatch: pytest.MonkeyPatch, name: str, hook: str) -> None:
    monkeypatch.delattr(paho.Client, name)
    assert hook in _hooks._run_checks()


def test_a_changed_signature_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    def _packet_queue(self: paho.Client, command: int, packet: bytes) -> None: ...

    monkeypatch.setattr(paho.Client, "_packet_queue", _packet_queue)
    assert "paho Client._packet_queue" in _hooks._run_checks()


def test_a_missing_hook_selects_the_public_api_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_hooks, "_MISSING", ("paho Client._packet_queue",))
    monkeypatch.setattr(_hooks, "_logged", False)
    with caplog.at_level(logging.INFO, "cascade.connectors.mqtt"):
        assert not _hooks.private_api_enabled()
        assert not _hooks.private_api_enabled()
    lines = [r for r in caplog.records if "public API" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].levelno == logging.WARNING
    assert "paho Client._packet_queue" in lines[0].getMessage()


@pytest.mark.parametrize(("value", "forced"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_the_environment_variable_forces_the_public_api(value: str, forced: bool) -> None:
    env = {**os.environ, "CASCADE_MQTT_PUBLIC_API_ONLY": value}
    code = "from cascade.connectors.mqtt import _hooks; print(_hooks.PUBLIC_API_ONLY)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(forced)


@pytest.mark.asyncio
async def test_the_forced_fallback_runs_on_paho_public_api(
    mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hooks, "PUBLIC_API_ONLY", True)
    connector = MqttConnector(mosquitto.host, mosquitto.port, reconnect_min_delay=0.02)
    got: list[dict[str, object]] = []

    async def on_message(topic: str, payload: dict[str, object]) -> None:
        got.append(payload)

    async with connector:
        link = connector._session.link if connector._session is not None else None
        assert link is not None
        assert not link.private_api
        assert isinstance(link._driver, PahoDriver)
        assert link._paho._handle_publish.__func__ is paho.Client._handle_publish  # type: ignore[attr-defined]
        await connector.subscribe("fallback/t", on_message)
        for i in range(50):
            await connector.publish("fallback/t", {"i": i})
        await connector.publish("fallback/t", {"i": 50}, qos=1)
        await eventually(lambda: len(got) == 51, 10)
    assert got == [{"i": i} for i in range(51)]


def _packet(command: int, qos: int, data: bytes | bytearray, pos: int = 0) -> Any:
    return {
        "command": command,
        "mid": 0,
        "qos": qos,
        "pos": pos,
        "to_process": len(data) - pos,
        "packet": data,
        "info": None,
    }


def test_queued_qos1_publishes_are_joined_into_one_write() -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    out = client._out_packet
    out.extend(
        [
            _packet(0x32, 1, b"a1", pos=1),  # half written already: left alone
            _packet(0x32, 1, b"b"),
            _packet(0x3A, 1, bytearray(b"c")),  # a DUP re-send is a QoS 1 PUBLISH too
            _packet(0x40, 0, b"ack"),  # anything else keeps its place
            _packet(0x32, 1, b"d"),
            _packet(0x32, 1, b"e"),
        ]
    )
    _hooks.join_qos1_packets(client)
    assert [(p["packet"], p["to_process"], p["pos"]) for p in out] == [
        (b"a1", 1, 1),
        (b"bc", 2, 0),
        (b"ack", 3, 0),
        (b"de", 2, 0),
    ]
