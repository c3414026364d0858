"""Each connection loss against a real Mosquitto records its reason, by name, on both transport paths
(private hooks and the public-API fallback); an ordinary reset logs no ERROR; a dead path is noticed
by the keepalive watchdog within 1.5 x keepalive."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector, _hooks
from cascade.connectors.mqtt._client import Link
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.testing import eventually

FAST: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}


@pytest.fixture(params=["private", "public"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_hooks, "PUBLIC_API_ONLY", request.param == "public")
    return str(request.param)


@pytest.fixture
def reasons(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The `loss_reason` of every link lost, in order."""
    seen: list[str | None] = []
    original = Link._mark_lost

    def record(link: Link) -> None:
        if not link.lost:
            seen.append(link.loss_reason)
        original(link)

    monkeypatch.setattr(Link, "_mark_lost", record)
    return seen


@pytest.mark.asyncio
async def test_a_reset_is_reported_as_such_without_an_error_line(
    mosquitto: MosquittoServer, path: str, reasons: list[str | None], caplog: pytest.LogCaptureFixture
) -> None:
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, **FAST)
        with caplog.at_level(logging.DEBUG, "cascade.connectors.mqtt"):
            async with connector:
                assert proxy.cut() == 1
                await eventually(lambda: connector.stats.reconnects == 1, 10)
    assert reasons[0] is not None
    assert reasons[0].startswith(("connection reset", "closed by the broker", "connection lost")), reasons
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.asyncio
async def test_our_own_disconnect_is_named(
    mosquitto: MosquittoServer, path: str, reasons: list[str | None]
) -> None:
    async with MqttConnector(mosquitto.host, mosquitto.port, **FAST):
        pass
    assert reasons == ["closed by us"]


@pytest.mark.asyncio
async def test_a_frozen_path_is_noticed_within_one_and_a_half_keepalives(
    mosquitto: MosquittoServer, reasons: list[str | None]
) -> None:
    keepalive = 2
    async with FaultProxy(mosquitto.host, mosquitto.port) as proxy:
        connector = MqttConnector(proxy.host, proxy.port, keepalive=keepalive, **FAST)
        async with connector:
            link = connector._link
            assert link is not None
            assert link.private_api
            frozen_at = time.monotonic()  # the last packet from the broker came before this
            proxy.frozen = True
            await eventually(lambda: link.lost, 3 * keepalive)
            took = time.monotonic() - frozen_at
            proxy.frozen = False
    assert reasons[0] is not None
    assert reasons[0].startswith("keepalive timeout"), reasons
    assert took <= 1.5 * keepalive, took
