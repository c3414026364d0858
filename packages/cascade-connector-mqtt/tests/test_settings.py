"""`MqttSettings`: the public, frozen, checked settings behind `MqttConnector.settings`."""

from __future__ import annotations

import dataclasses
import os
import ssl

import pytest
from cascade.connectors.mqtt import InvalidUrlError, MqttConnector, MqttSettings

SECRET = "hunter2-s3cr3t"


def test_the_connector_exposes_its_checked_settings() -> None:
    connector = MqttConnector("broker.example", 1884, username="bob", password=SECRET, source="w-1")
    settings = connector.settings
    assert isinstance(settings, MqttSettings)
    assert (settings.hostname, settings.port, settings.username, settings.password) == (
        "broker.example",
        1884,
        "bob",
        SECRET,
    )
    assert settings.source == connector.source == "w-1"
    assert settings.client_id == connector.client_id
    assert settings.status_topic == "cascade/status/w-1"
    assert settings.sync_topic == f"$cascade/sync/{settings.client_id}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_the_password_is_never_in_the_repr() -> None:
    settings = MqttSettings("h", username="u", password=SECRET)
    assert SECRET not in repr(settings)
    assert "password=<hidden>" in repr(settings)
    assert "password" not in repr(MqttSettings("h"))
    assert SECRET not in repr(MqttConnector.from_settings(settings))


def test_defaults_are_filled_and_unique() -> None:
    first, second = MqttSettings(), MqttSettings()
    assert first.source != second.source
    assert f"-{os.getpid()}-" in first.source
    assert first.client_id != second.client_id
    assert first.client_id.startswith("cascade-")
    assert (first.reconnect_min_delay, first.reconnect_max_delay) == (0.1, 1.0)
    assert MqttSettings(tls=True).tls is not None
    assert MqttSettings(tls=False).tls is None
    assert isinstance(MqttSettings(tls=True).tls, ssl.SSLContext)


def test_replace_checks_again_and_keeps_identity() -> None:
    settings = MqttSettings("h", source="s", client_id="c")
    moved = settings.replace(port=1999)
    assert (moved.port, moved.source, moved.client_id) == (1999, "s", "c")
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        settings.replace(port=0)
    with pytest.raises(ValueError, match="flush_timeout must be finite"):
        settings.replace(flush_timeout=float("nan"))


def test_from_url_builds_the_settings() -> None:
    connector = MqttConnector.from_url(f"mqtt://alice:{SECRET}@h:1884/?source=etl&flush_timeout=0.5")
    assert connector.settings.port == 1884
    assert connector.settings.flush_timeout == 0.5
    assert connector.source == "etl"
    with pytest.raises(InvalidUrlError) as info:
        MqttConnector.from_url(f"mqtt://alice:{SECRET}@h/?keepalive=99999")
    assert SECRET not in str(info.value)


def test_the_hardening_settings_are_checked_and_read_from_urls() -> None:
    Connector = MqttConnector
    settings = Connector.from_url(
        "mqtt://h?max_inbound=7&max_inbound_packet_size=4096&presence_expiry=none"
    ).settings
    got = (settings.max_inbound, settings.max_inbound_packet_size, settings.presence_expiry)
    assert got == (7, 4096, None)
    defaults = Connector().settings
    assert (defaults.max_inbound, defaults.presence_expiry) == (10_000, 86_400.0)
    assert Connector.from_url("mqtt://h?presence_expiry=2.5").settings.presence_expiry == 2.5
    for bad in ({"max_inbound": 0}, {"max_inbound_packet_size": 10}, {"presence_expiry": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Connector(**bad)  # type: ignore[arg-type]


def test_protocol_addresses_and_sync_topic_settings() -> None:
    settings = MqttSettings(addresses=[("a", 1), ("b", 2)], protocol="3.1.1")
    assert (settings.hostname, settings.port, settings.addresses) == ("a", 1, (("a", 1), ("b", 2)))
    assert settings.protocol == "3.1.1"
    assert "addresses=[a:1, b:2]" in repr(settings)
    assert MqttSettings().protocol == "auto"
    assert MqttSettings("h", 2).addresses == (("h", 2),)
    auto = MqttSettings(client_id="c1")
    assert (auto.sync_topic, auto.sync_fallback) == ("$cascade/sync/c1", "cascade/_sync/c1")
    assert auto.replace(client_id="c2").sync_topic == "$cascade/sync/c2"
    explicit = MqttSettings(sync_topic="private/sync")
    assert (explicit.sync_topic, explicit.sync_fallback) == ("private/sync", None)
    assert explicit.replace(keepalive=5).sync_topic == "private/sync"
    with pytest.raises(ValueError, match="protocol must be one of"):
        MqttSettings(protocol="4")
    with pytest.raises(ValueError, match="not both"):
        MqttSettings("x", addresses=[("a", 1)])
    with pytest.raises(ValueError, match="addresses must be a non-empty list"):
        MqttSettings(addresses=[])
    with pytest.raises(ValueError, match="port"):
        MqttSettings(addresses=[("a", 0)])
    with pytest.raises(ValueError, match="sync_topic"):
        MqttSettings(sync_topic="a/#")
