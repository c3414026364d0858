"""The fake on the shared core: importable without pytest, same settings checks and callbacks as MQTT."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
from typing import Any

import pytest
from cascade.connectors.protocol import NotConnectedError
from cascade.connectors.protocol.core import ConnectorState, ReentryError
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector

SCRIPT = r"""
import asyncio, json, sys
sys.modules["pytest"] = None  # any "import pytest" now raises ImportError
sys.modules["pytest_asyncio"] = None
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder

async def main():
    broker = InMemoryBroker()
    got = Recorder()
    async with InMemoryConnector(broker, source="w") as connector:
        await connector.subscribe("t/#", got)
        await connector.publish("t/1", {"n": 1})
        await broker.settle()
    return got.payloads

payloads = asyncio.run(main())
try:
    from cascade.connectors.testing import ConnectorContract
except ImportError:
    contract = "ImportError"
else:
    contract = "imported"
print(json.dumps({"payloads": payloads, "contract": contract}))
"""


def test_the_fake_imports_and_works_without_pytest() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"payloads": [{"n": 1}], "contract": "ImportError"}


def test_the_contract_is_still_importable_from_the_package() -> None:
    from cascade.connectors.testing import ConnectorContract, ContractKit

    assert ConnectorContract.__name__ == "ConnectorContract"
    assert ContractKit.__name__ == "ContractKit"
    import cascade.connectors.testing as testing

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = testing.Nope


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flush_timeout": float("nan")}, "flush_timeout must be finite"),
        ({"flush_timeout": -1}, "flush_timeout must be at least 0"),
        ({"reconnect_min_delay": float("nan")}, "reconnect_min_delay must be finite"),
        ({"reconnect_max_delay": 0}, "reconnect_max_delay must be more than 0"),
        ({"max_buffered": 0}, "max_buffered must be at least 1"),
        ({"max_buffered": True}, "max_buffered must be an int"),
    ],
)
def test_settings_are_checked_like_the_mqtt_connector(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InMemoryConnector(**options)


@pytest.mark.asyncio
async def test_plain_and_async_callbacks_and_a_non_callable() -> None:
    broker = InMemoryBroker()
    seen: list[tuple[str, str]] = []

    def plain(topic: str, payload: dict[str, Any]) -> None:
        seen.append(("plain", topic))

    async def tagged(tag: str, topic: str, payload: dict[str, Any]) -> None:
        seen.append((tag, topic))

    async with InMemoryConnector(broker, source="w") as connector:
        await connector.subscribe("t", plain)
        await connector.subscribe("t", functools.partial(tagged, "partial"))
        with pytest.raises(TypeError, match="callback must be callable"):
            await connector.subscribe("t", "nope")  # type: ignore[arg-type]
        await connector.publish("t", {})
        await broker.settle()
        assert connector.stats.callback_errors == 0
    assert sorted(seen) == [("partial", "t"), ("plain", "t")]


@pytest.mark.asyncio
async def test_state_and_guard_come_from_the_core() -> None:
    connector = InMemoryConnector(source="w", reconnect_min_delay=0.001, reconnect_max_delay=0.01)
    states = [connector.state]
    async with connector:
        states.append(connector.state)
        await connector.broker.stop()
        states.append(connector.state)
        with pytest.raises(ReentryError):
            async with connector:
                pass
        await connector.broker.start()
        await connector.broker.settle()
        states.append(connector.state)
    states.append(connector.state)
    S = ConnectorState
    assert states == [S.IDLE, S.CONNECTED, S.RECONNECTING, S.CONNECTED, S.IDLE]


@pytest.mark.asyncio
async def test_a_qos1_publish_pending_at_disconnect_raises_not_connected() -> None:
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, source="w", flush_timeout=0.0)
    await connector.connect()
    await broker.stop()
    pending = asyncio.ensure_future(connector.publish("t", {}, qos=1))
    await asyncio.sleep(0)
    await connector.disconnect()
    with pytest.raises(NotConnectedError, match="acknowledged"):
        await pending
    assert connector.stats.dropped == 1
