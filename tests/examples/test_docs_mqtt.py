"""docs/mqtt.md is real.

Every ```python block on that page follows a ``<!-- snippet: PATH#REGION -->`` marker and equals that
region of this file (``# --8<-- [start:REGION]`` / ``[end:REGION]``), and the tests below run every
region against a real Mosquitto. (docs/engine-quickstart.md is checked by test_docs_engine.py.)
"""

from __future__ import annotations

import re
import ssl
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/mqtt.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- snippet: (?P<path>[^#\s]+)#(?P<region>[\w-]+) -->\n$")


def region(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    start = f"# --8<-- [start:{name}]\n"
    end = f"# --8<-- [end:{name}]"
    assert start in text, f"{path}: no region {name!r}"
    body = text.split(start, 1)[1].split(end, 1)[0]
    return textwrap.dedent(body).strip("\n") + "\n"


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_is_a_tested_snippet(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = [m for m in FENCE.finditer(text) if m.group(1) == "python"]
    assert blocks, f"{page} has no python example"
    for match in blocks:
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].splitlines(keepends=True)
        marker = MARKER.search(before[-1] if before else "")
        assert marker is not None, f"{page}:{line}: python block without a '<!-- snippet: ... -->' marker"
        expected = region(ROOT / marker["path"], marker["region"])
        assert match.group(2) == expected, f"{page}:{line} differs from {marker['path']}#{marker['region']}"


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_url_snippet(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    server = mosquitto_factory(users={"worker": "s3cret"})
    url = f"mqtt://worker:s3cret@{server.host}:{server.port}/?keepalive=30&max_buffered=50000"
    # --8<-- [start:url]
    from cascade.connectors.mqtt import MqttConnector
    from cascade.connectors.protocol import StatusMessage, status_topic

    async with MqttConnector.from_url(url, source="etl-worker-1") as connector:
        seen = []

        async def on_status(topic: str, payload: dict[str, object]) -> None:
            seen.append(StatusMessage.from_dict(payload).status)

        await connector.subscribe(status_topic("etl-worker-1"), on_status)
        assert seen == ["online"]  # retained, delivered before subscribe() returned
        await connector.publish("plant/line-1/temperature", {"celsius": 21.5})  # queued: returns at once
        await connector.publish("plant/line-1/setpoint", {"celsius": 20}, qos=1, retain=True)  # acked
    # --8<-- [end:url]
    assert connector.stats.published == 2


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_the_tls_snippet(
    mosquitto_factory: Callable[..., MosquittoServer], tls_files: TlsFiles
) -> None:
    server = mosquitto_factory(tls=tls_files)
    ca_file = str(tls_files.ca_file)
    tls_port = server.tls_port
    assert tls_port is not None
    # --8<-- [start:tls]
    from cascade.connectors.mqtt import MqttConnector

    context = ssl.create_default_context(cafile=ca_file)  # verifies the chain and the host name
    # context.load_cert_chain("client.pem", "client.key")  # if the broker wants client certificates
    async with MqttConnector("localhost", tls_port, tls=context) as connector:
        await connector.publish("secure/hello", {"over": "TLS"}, qos=1)
    # same thing as a URL:
    connector = MqttConnector.from_url(f"mqtts://localhost:{tls_port}/?ca_file={ca_file}")
    # --8<-- [end:tls]
    async with connector:
        await connector.publish("secure/hello", {"over": "TLS"}, qos=1)


@pytest.mark.asyncio
async def test_the_failover_snippet(mosquitto_factory: Callable[..., MosquittoServer]) -> None:
    # --8<-- [start:failover]
    from cascade.connectors.mqtt import MqttConnector

    async def watch_cluster(url: str) -> str | None:
        """`url` names every node: mqtt://user:pw@node-a:1883,node-b:1883"""
        async with MqttConnector.from_url(url) as connector:
            print("connected to", connector.broker_address, "with MQTT", connector.protocol_version)
            return connector.protocol_version

    # --8<-- [end:failover]
    first, second = mosquitto_factory(), mosquitto_factory()
    second_port = second.port
    second.stop()  # the second node is down: the first one serves
    assert await watch_cluster(f"mqtt://{first.host}:{first.port},{second.host}:{second_port}") == "5"
