"""Losing the broker or the process: reconnects, queued messages, the last will, disconnect in an outage."""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.faults import FaultProxy
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import ConnectorError, NotConnectedError, StatusMessage, status_topic
from cascade.connectors.testing import Recorder, eventually

pytestmark = pytest.mark.mosquitto

_SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.asyncio
async def test_queued_messages_are_sent_in_order_after_a_broker_restart(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    """The publisher reaches the broker through a proxy that keeps it out until the subscriber has
    re-subscribed (without a persistent session, a broker drops what arrives before that).
    """
    subscriber = make()
    await subscriber.connect()
    async with FaultProxy(broker.host, broker.port) as proxy:
        publisher = MqttConnector(proxy.host, proxy.port, reconnect_min_delay=0.01, reconnect_max_delay=0.05)
        async with publisher:
            seen = Recorder()
            await subscriber.subscribe("outage/+", seen)
            await publisher.publish("outage/state", {"phase": "before"}, qos=1, retain=True)
            await seen.wait_for(1)

            proxy.refuse = True
            await asyncio.to_thread(broker.stop)
            await eventually(lambda: not publisher.connected and not subscriber.connected)
            for i in range(50):
                await publisher.publish("outage/seq", {"i": i})  # returns at once: queued
            acked = asyncio.ensure_future(publisher.publish("outage/seq", {"i": "qos1"}, qos=1))
            await asyncio.to_thread(broker.start)
            # Re-subscribing after the reconnect re-delivers the (persisted) retained state.
            await seen.wait_for(2)
            assert seen.payloads == [{"phase": "before"}] * 2
            proxy.refuse = False

            await acked  # waited across the outage
            await seen.wait_for(2 + 51)
            # The publishes queued during the outage follow, in order, nothing lost.
            assert [p["i"] for p in seen.payloads[2:]] == [*range(50), "qos1"]
            assert publisher.stats.reconnects == subscriber.stats.reconnects == 1
            assert publisher.stats.dropped == 0


@pytest.mark.asyncio
async def test_disconnect_during_an_outage_gives_up_after_flush_timeout(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    connector = make(flush_timeout=0.2)
    await connector.connect()
    await asyncio.to_thread(broker.stop)
    await eventually(lambda: not connector.connected)
    await connector.publish("lost/a", {"i": 1})
    await connector.publish("lost/b", {"i": 2})
    waiting = asyncio.ensure_future(connector.publish("lost/c", {"i": 3}, qos=1))
    await eventually(lambda: connector.stats.published == 3)  # the qos=1 publish is queued
    await connector.disconnect()
    with pytest.raises(NotConnectedError, match="acknowledged"):
        await waiting
    assert connector.stats.dropped == 3
    assert connector.stats.published == 3


@pytest.mark.asyncio
async def test_the_last_will_fires_when_the_process_is_killed(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    source = f"killed-{uuid.uuid4().hex[:8]}"
    observer = make()
    await observer.connect()
    statuses = Recorder("status")
    await observer.subscribe(status_topic(source), statuses)
    src = _SRC
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(src)!r})
        from cascade.connectors.mqtt import MqttConnector

        async def main():
            connector = MqttConnector({broker.host!r}, {broker.port}, source={source!r})
            await connector.connect()
            print("ready", flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30):
            line = await child.stdout.readline()
        assert line.strip() == b"ready", (line, await child.stderr.read() if child.stderr else b"")
        await eventually(lambda: [StatusMessage.from_dict(p).status for p in statuses.payloads] == ["online"])
        child.kill()  # SIGKILL: no DISCONNECT, no chance to publish "offline"
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    await eventually(lambda: len(statuses) == 2)
    last = StatusMessage.from_dict(statuses.payloads[-1])
    assert (last.status, last.source) == ("offline", source)


@pytest.mark.asyncio
async def test_reconnect_after_an_abrupt_cut_announces_online_again(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    observer = make()
    await observer.connect()
    async with FaultProxy(broker.host, broker.port) as proxy:
        worker = MqttConnector(proxy.host, proxy.port, reconnect_min_delay=0.01, reconnect_max_delay=0.05)
        statuses = Recorder("status")
        await observer.subscribe(status_topic(worker.source), statuses)
        async with worker:
            await eventually(lambda: len(statuses) == 1)
            assert proxy.cut() == 1
            await eventually(lambda: len(statuses) == 3)
            assert [StatusMessage.from_dict(p).status for p in statuses.payloads] == [
                "online",
                "offline",
                "online",
            ]
            assert worker.stats.reconnects == 1
            await worker.publish("after/cut", {}, qos=1)
        assert (
            StatusMessage.from_dict(await _retained(observer, status_topic(worker.source))).status
            == "offline"
        )


async def _retained(connector: MqttConnector, topic: str) -> dict[str, object]:
    seen = Recorder()
    handle = await connector.subscribe(topic, seen)
    await handle.unsubscribe()
    assert seen.payloads, f"nothing retained on {topic}"
    return seen.payloads[-1]


@pytest.mark.asyncio
async def test_tcp_nodelay_is_set(make: Callable[..., MqttConnector]) -> None:
    connector = make()
    await connector.connect()
    assert connector._session is not None
    link = connector._session.link
    assert link is not None
    wrapper = link._paho.socket()  # the connector's buffered wrapper around the socket
    sock = getattr(wrapper, "_sock", None)
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.asyncio
async def test_a_qos1_publish_refused_by_the_broker_raises(
    mosquitto_factory: Callable[..., MosquittoServer],
    dynsec: Callable[[Sequence[Mapping[str, Any]]], str],
    make: Callable[..., MqttConnector],
) -> None:
    server = mosquitto_factory(extra_config=dynsec([{"acltype": "publishClientSend", "topic": "readonly/#"}]))
    connector = make(server)
    await connector.connect()
    with pytest.raises(ConnectorError, match=r"refused the qos=1 publish to 'readonly/x': Not authorized"):
        await connector.publish("readonly/x", {"no": 1}, qos=1)
    await connector.publish("writable/x", {"yes": 1}, qos=1)  # the connector carries on


@pytest.mark.asyncio
async def test_connectors_in_one_process_get_unique_ids(make: Callable[..., MqttConnector]) -> None:
    a, b = make(), make()
    assert a.client_id != b.client_id
    assert a.source != b.source
    await a.connect()
    await b.connect()
    await a.publish("both/alive", {}, qos=1)
    await b.publish("both/alive", {}, qos=1)
    assert a.connected
    assert b.connected
    assert a.stats.reconnects == b.stats.reconnects == 0  # neither knocked the other off


@pytest.mark.asyncio
async def test_qos0_messages_sent_into_a_dead_connection_are_sent_again(
    broker: MosquittoServer, make: Callable[..., MqttConnector]
) -> None:
    """Messages written after the path died but before the connector noticed are not lost: QoS 0 batches
    stay unconfirmed until a later PUBACK, and go out again after the reconnect, once, in order.
    """
    subscriber = make()
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("replay/t", seen)
    async with FaultProxy(broker.host, broker.port) as proxy:
        publisher = MqttConnector(proxy.host, proxy.port, reconnect_min_delay=0.01, reconnect_max_delay=0.05)
        async with publisher:
            await publisher.publish("replay/t", {"i": "before"}, qos=1)
            await seen.wait_for(1)
            proxy.frozen = True  # the path dies silently
            for i in range(10):
                await publisher.publish("replay/t", {"i": i})
            size = sum(len(f'{{"i":{i}}}') + len("replay/t") + 5 for i in range(10))
            async with asyncio.timeout(10):
                await proxy.wait_for_discarded(size)  # all ten were written to the socket
            assert publisher.connected  # and the connector cannot know they went nowhere
            proxy.frozen = False
            proxy.cut()
            await seen.wait_for(11)
            await publisher.publish("replay/t", {"i": "after"}, qos=1)
            await seen.wait_for(12)
    assert [p["i"] for p in seen.payloads] == ["before", *range(10), "after"]
    assert publisher.stats.dropped == 0
    assert publisher.stats.reconnects == 1
