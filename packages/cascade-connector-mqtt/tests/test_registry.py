"""The broker subscriptions without a broker: identifiers, replay routing, sync markers."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._outbound import Outbound
from cascade.connectors.mqtt._subscriptions import MalformedFilter, Registry, SyncState
from cascade.connectors.protocol import ConnectorStats
from cascade.connectors.protocol.core import OutboundBuffer

LOG = logging.getLogger("test.mqtt.registry")
SYNC = "$cascade/sync/test"


async def noop(topic: str, payload: dict[str, Any]) -> None:
    return None


def make() -> tuple[Registry, Outbound]:
    out = Outbound(OutboundBuffer(10, ConnectorStats(), LOG), SYNC, LOG, lambda code, topic: None, str)
    return Registry(SYNC, out, LOG), out


OWNER = cast(MqttConnector, object())  # the registry only hands it to the handles


@pytest.mark.asyncio
async def test_each_subscribe_on_a_filter_gets_a_fresh_identifier() -> None:
    registry, _ = make()
    first = registry.add(OWNER, "a/#", noop, online=True)
    second = registry.add(OWNER, "a/#", noop, online=True)
    assert first._broker is second._broker
    assert first._sync_sid != second._sync_sid
    assert registry.by_filter["a/#"].sids == [first._sync_sid, second._sync_sid]
    assert registry.targets("a/x", False, [first._sync_sid]) == [first, second]


@pytest.mark.asyncio
async def test_a_retained_replay_goes_only_to_the_subscription_waiting_for_it() -> None:
    registry, out = make()
    old = registry.add(OWNER, "a/#", noop, online=True)
    new = registry.add(OWNER, "a/#", noop, online=True)
    waiter = registry.wait_for_replay(new)
    assert waiter is not None
    assert len(out.control) == 1  # the marker, queued behind the SUBSCRIBE
    sid = new._sync_sid
    assert registry.targets("a/x", True, [sid]) == [new]  # the replay of new's SUBSCRIBE
    assert registry.targets("a/x", True, [old._sync_sid]) == []  # old is not waiting
    registry.marker(b"1")
    assert waiter.done()
    assert registry.targets("a/x", True, [sid]) == []  # replay over: a retained copy is not re-sent
    assert registry.targets("a/x", False, [sid]) == [old, new]
    registry.end()


@pytest.mark.asyncio
async def test_without_identifiers_the_index_routes(caplog: pytest.LogCaptureFixture) -> None:
    registry, _ = make()
    sub = registry.add(OWNER, "a/+", noop, online=False)
    assert registry.targets("a/b", False, []) == [sub]
    assert registry.targets("b/b", False, []) == []
    with caplog.at_level(logging.WARNING, LOG.name):
        registry.unavailable("refused")
    assert registry.sync is SyncState.UNAVAILABLE
    assert registry.wait_for_replay(sub) is None
    assert registry.targets("a/b", True, []) == [sub]  # retained: no sync, so delivered as live
    assert "can no longer wait for retained messages" in caplog.text
    assert registry.detach(sub) is not None
    assert registry.by_filter == {}


@pytest.mark.asyncio
async def test_a_skipped_marker_is_reported_and_later_ones_release_earlier_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry, _ = make()
    a = registry.add(OWNER, "a", noop, online=True)
    b = registry.add(OWNER, "b", noop, online=True)
    wait_a, wait_b = registry.wait_for_replay(a), registry.wait_for_replay(b)
    with caplog.at_level(logging.WARNING, LOG.name):
        registry.marker(b"2")  # marker 1 never came back
    assert wait_a is not None
    assert wait_a.done()
    assert wait_b is not None
    assert wait_b.done()
    assert "dropped 1 sync marker" in caplog.text
    registry.marker(b"not a number")  # ignored
    registry.end()
    assert not a.active
    assert not b.active


def test_malformed_copies_count_once() -> None:
    seen = MalformedFilter()
    assert seen.first_copy("t", b"x", False, [2])
    assert not seen.first_copy("t", b"x", False, [3])  # another subscription's copy
    assert seen.first_copy("t", b"x", False, [2])  # the same identifier again: a new message
    seen.reset()
    assert seen.first_copy("t", b"x", False, [3])
