"""Unit tests of `eventually`, `Recorder`, `InMemoryHarness` and the contract's guard machinery."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from cascade.connectors.protocol import Connector, ConnectorStats, NotConnectedError
from cascade.connectors.testing import (
    ConnectorContract,
    ContractHarness,
    InMemoryBroker,
    InMemoryConnector,
    InMemoryHarness,
    Recorder,
    SupportsDrop,
    SupportsInjectRaw,
    SupportsOutage,
    eventually,
)
from cascade.connectors.testing import plugin as plugin_module

# ------------------------------------------------------------------------------------- eventually


@pytest.mark.asyncio
async def test_eventually_returns_once_a_sync_condition_holds() -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_soon(flag.set)
    await eventually(flag.is_set)
    assert flag.is_set()


@pytest.mark.asyncio
async def test_eventually_accepts_async_conditions() -> None:
    calls = 0

    async def third_time() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    await eventually(third_time)
    assert calls == 3


@pytest.mark.asyncio
async def test_eventually_times_out_with_a_helpful_message() -> None:
    def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"waiting for pause: condition .*never still not true after"):
        await eventually(never, timeout=0.01, message="waiting for pause")


@pytest.mark.asyncio
async def test_eventually_reports_the_last_assertion() -> None:
    seen: list[int] = []

    def check() -> bool:
        seen.append(1)
        assert len(seen) > 10**9, f"only {len(seen)} tries"
        return True

    with pytest.raises(AssertionError, match=r"last assertion: only \d+ tries"):
        await eventually(check, timeout=0.01)


def test_plugin_exports_eventually() -> None:
    assert plugin_module.eventually is eventually


# --------------------------------------------------------------------------------------- Recorder


@pytest.mark.asyncio
async def test_recorder_records_and_waits() -> None:
    recorder = Recorder("r")
    await recorder("a", {"n": 1})
    await recorder("b", {"n": 2})
    await recorder.wait_for(2)
    assert recorder.topics == ["a", "b"]
    assert recorder.payloads == [{"n": 1}, {"n": 2}]
    assert len(recorder) == 2
    assert repr(recorder) == "Recorder('r', 2 messages)"
    with pytest.raises(AssertionError, match="r received 2 of 3 messages"):
        await recorder.wait_for(3, timeout=0.01)
    recorder.clear()
    assert recorder.messages == []


# ------------------------------------------------------------------------------------------ harness


@pytest.mark.asyncio
async def test_in_memory_harness_has_every_capability() -> None:
    harness = InMemoryHarness()
    assert isinstance(harness, ContractHarness)
    assert isinstance(harness, SupportsInjectRaw)
    assert isinstance(harness, SupportsDrop)
    assert isinstance(harness, SupportsOutage)
    connector = await harness.new_connector(source="h", max_buffered=5, reconnect_min_delay=0.01)
    assert isinstance(connector, InMemoryConnector)
    assert not connector.connected
    assert connector.broker is harness.broker
    await connector.connect()
    await harness.stop_backend()
    await harness.aclose()
    assert harness.broker.running
    with pytest.raises(NotConnectedError):
        await connector.publish("t", {})


@pytest.mark.asyncio
async def test_in_memory_harness_refuses_to_drop_a_foreign_connector() -> None:
    class Foreign:
        stats = ConnectorStats()

        async def connect(self) -> None: ...
        async def disconnect(self) -> None: ...
        async def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None: ...
        async def subscribe(self, topic: str, callback: Any) -> Any: ...

    foreign = Foreign()
    assert isinstance(foreign, Connector)
    with pytest.raises(TypeError):
        await InMemoryHarness(InMemoryBroker()).drop(foreign)


def test_harness_protocols_reject_objects_without_the_methods() -> None:
    assert not isinstance(object(), ContractHarness)
    assert not isinstance(object(), SupportsDrop)
    assert not isinstance(object(), SupportsOutage)
    assert not isinstance(object(), SupportsInjectRaw)


# ------------------------------------------------------------------------------------ the contract


def test_contract_class_is_not_collected_by_itself() -> None:
    assert not ConnectorContract.__name__.startswith("Test")
    tests = [name for name in dir(ConnectorContract) if name.startswith("test_")]
    assert len(tests) >= 47
    for name in tests:
        doc = " ".join((getattr(ConnectorContract, name).__doc__ or "").split())
        assert doc, f"{name} has no docstring"
        if name != "test_contract_tests_are_not_overridden":
            assert re.match(r"Promises? \d+", doc), f"{name}: the docstring does not start with its promise"
        assert "If this fails" in doc, f"{name}: the docstring does not say what to fix"


def test_the_contract_module_is_assertion_rewritten() -> None:
    """Connector authors get pytest's assertion diffs from the suite's own asserts."""
    from cascade.connectors.testing._contract import kit, lifecycle, resilience

    for module in (kit, lifecycle, resilience):
        assert "@py_builtins" in vars(module), module.__name__
