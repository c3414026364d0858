"""``cascade-mqtt status`` and ``watch`` name the MQTT version their connection negotiated: ``5`` with
Mosquitto by default, ``3.1.1`` with ``?protocol=3.1.1`` in the URL (docs/operators.md).
"""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._cli.watching import run_watch
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.mqtt.operator import live_title
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, eventually

from .conftest import WatchProcess, run_cli

pytestmark = pytest.mark.mosquitto

CASES = [("", "5"), ("?protocol=3.1.1", "3.1.1")]


@pytest.mark.parametrize(("query", "version"), CASES)
def test_status_names_the_protocol_version(mosquitto: MosquittoServer, query: str, version: str) -> None:
    url = mosquitto.url + query
    done = run_cli("--url", url, "status")
    assert done.returncode == 0, done.stderr
    shown = mosquitto.url  # the URL as shown: without its options
    assert done.stdout.splitlines()[-1] == f"broker: {shown} over MQTT {version}"
    as_json = run_cli("--url", url, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert isinstance(json.loads(as_json.stdout), list)  # stdout stays the JSON list
    assert f"broker: {shown} over MQTT {version}\n" in as_json.stderr


@pytest.mark.parametrize(("query", "version"), CASES)
@pytest.mark.parametrize("mode", ["--plain", "--json"])
def test_watch_names_the_protocol_version_in_its_ready_line(
    mosquitto: MosquittoServer, query: str, version: str, mode: str
) -> None:
    url = mosquitto.url + query
    watch = WatchProcess("--url", url, mode)
    try:
        line = watch.err.wait_for(lambda line: line.startswith("watching "))
        shown = f"{mosquitto.url} over MQTT {version}"  # the URL as shown: without its options
        assert line == f"watching {shown} (cascade/telemetry/+/+/+/events); Ctrl-C to stop"
        assert watch.interrupt() == 0
    finally:
        watch.kill()


def test_live_title_shows_the_version_when_given() -> None:
    assert live_title("mqtt://h:1", "f/#", "3.1.1") == "cascade-mqtt watch  mqtt://h:1  f/#  MQTT 3.1.1"
    assert live_title("mqtt://h:1", "f/#") == "cascade-mqtt watch  mqtt://h:1  f/#"


@pytest.mark.asyncio
@pytest.mark.parametrize(("protocol", "version"), [("auto", "5"), ("3.1.1", "3.1.1")])
async def test_the_live_view_header_names_the_protocol_version(
    mosquitto: MosquittoServer, protocol: str, version: str
) -> None:
    out, err, stop = io.StringIO(), io.StringIO(), asyncio.Event()
    async with MqttConnector(mosquitto.host, mosquitto.port, protocol=protocol) as connector:
        watching = asyncio.create_task(
            run_watch(
                connector, telemetry_filter="t/#", mode="live", stop=stop, out=out, err=err, url="mqtt://x"
            )
        )
        await eventually(lambda: bool(err.getvalue()))  # subscribed: the live view is up
        stop.set()
        await watching  # off a terminal rich draws the view once, when it ends
    assert f"cascade-mqtt watch  mqtt://x  t/#  MQTT {version}" in out.getvalue()
    assert err.getvalue() == f"watching mqtt://x over MQTT {version} (t/#); Ctrl-C to stop\n"


@pytest.mark.asyncio
async def test_a_connector_without_a_version_shows_none() -> None:
    out, err, stop = io.StringIO(), io.StringIO(), asyncio.Event()
    async with InMemoryConnector(broker=InMemoryBroker()) as connector:
        watching = asyncio.create_task(
            run_watch(connector, telemetry_filter="t/#", mode="plain", stop=stop, out=out, err=err, url="mem")
        )
        await eventually(lambda: bool(err.getvalue()))
        stop.set()
        await watching
    assert err.getvalue() == "watching mem (t/#); Ctrl-C to stop\n"
