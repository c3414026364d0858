"""Promises 13 (bounded inbound) and 14 (no poison) of docs/contract.md: the contract tests."""

from __future__ import annotations

__all__ = ["InboundTests"]

import asyncio
from typing import Any

import pytest
from cascade.connectors.protocol import PayloadError, TopicError

from .._recorder import Recorder
from .kit import FAST_RECONNECT, OUTAGE_TIMEOUT, OUTAGE_WAIT, ContractKit, contract_test, stats_of

# What the topic grammar refuses although a naive check lets it through (brokers disconnect for it).
POISON_LEVELS = ("a\tb", "a\nb", "a\x1bb", "a\x7fb", "a\x85b", "a\ufffeb", "a\uffffb", "a\U0010ffffb")


class _Gate:
    """A callback that records and blocks on its first message until released."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.received: list[int] = []

    async def __call__(self, _topic: str, payload: dict[str, Any]) -> None:
        if "i" not in payload:
            return
        self.received.append(payload["i"])
        await self.released.wait()


class InboundTests:
    """Promises 13 and 14. A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_qos0_beyond_max_inbound_drops_the_oldest_and_counts_it(
        self, contract: ContractKit
    ) -> None:
        """Promise 13 (bounded inbound): with ``max_inbound=10`` and a callback stuck on message 0,
        50 more QoS 0 messages leave exactly the newest 10 queued; 40 are dropped and counted in
        ``stats.dropped_inbound`` (published == delivered + dropped_inbound). If this fails, queue
        inbound messages in the core's `InboundQueue` and drop the oldest QoS 0 one when full.
        """
        subscriber = await contract.connected(max_inbound=10)
        publisher = await contract.connected()
        topic = contract.topic("inbound-qos0")
        gate = _Gate()
        await subscriber.subscribe(topic, gate)
        await publisher.publish(topic, {"i": 0})
        await contract.eventually(lambda: gate.received == [0])
        for i in range(1, 51):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(
            lambda: stats_of(subscriber).dropped_inbound == 40,
            message="the 50 messages behind the stuck callback did not leave exactly 40 dropped",
        )
        gate.released.set()
        await contract.eventually(lambda: 50 in gate.received)
        await publisher.publish(topic, {"i": 51})  # one publisher, one topic: everything before it is in
        await contract.eventually(lambda: 51 in gate.received)
        assert gate.received == [0, *range(41, 52)], f"not the oldest dropped: {gate.received}"
        stats = stats_of(subscriber)
        assert stats.dropped_inbound == 40
        assert stats.delivered == len(gate.received)

    @contract_test()
    async def test_qos1_beyond_max_inbound_is_never_dropped(self, contract: ContractKit) -> None:
        """Promise 13 (bounded inbound): QoS 1 messages beyond ``max_inbound`` wait (the backend holds
        them); none is dropped and all arrive in order once the callback is free. If this fails,
        apply backpressure for QoS 1 (MQTT: acknowledge only after the callbacks ran and announce
        ``max_inbound`` as the Receive Maximum) instead of dropping.
        """
        subscriber = await contract.connected(max_inbound=5)
        publisher = await contract.connected()
        topic = contract.topic("inbound-qos1")
        gate = _Gate()
        await subscriber.subscribe(topic, gate)
        for i in range(30):
            await publisher.publish(topic, {"i": i}, qos=1)
        await contract.eventually(lambda: gate.received == [0])
        gate.released.set()
        await contract.eventually(lambda: len(gate.received) == 30)
        assert gate.received == list(range(30))
        assert stats_of(subscriber).dropped_inbound == 0

    @contract_test()
    async def test_disconnect_counts_the_inbound_messages_it_discards(self, contract: ContractKit) -> None:
        """Promise 13: messages received and not yet handed to callbacks when `disconnect()` ends the
        session are counted in ``dropped_inbound``: delivered + dropped_inbound == received, exactly.
        If this fails, count what the session's inbound queue still holds when it is discarded.
        """
        subscriber = await contract.connected(max_inbound=2)
        publisher = await contract.connected()
        topic = contract.topic("inbound-discard")
        gate = _Gate()
        await subscriber.subscribe(topic, gate)
        await publisher.publish(topic, {"i": 0})
        await contract.eventually(lambda: gate.received == [0])
        for i in range(1, 6):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: stats_of(subscriber).dropped_inbound == 3)  # 4 and 5 queued
        closing = asyncio.ensure_future(subscriber.disconnect())
        gate.released.set()
        await closing
        stats = stats_of(subscriber)
        assert stats.delivered + stats.dropped_inbound == 6, stats

    @contract_test()
    async def test_poison_topics_are_refused_in_the_caller(self, contract: ContractKit) -> None:
        """Promise 14 (no poison): topics a broker would disconnect for (controls, non-characters)
        raise `TopicError` in `publish` and `subscribe`, and later messages still flow. If this
        fails, validate with the protocol's `validate_topic` / `validate_filter`.
        """
        connector = await contract.connected()
        for level in POISON_LEVELS:
            for qos in (0, 1):
                with pytest.raises(TopicError):
                    await connector.publish(contract.topic(level), {"n": 1}, qos=qos)
            with pytest.raises(TopicError):
                await connector.subscribe(contract.topic(level, "#"), Recorder())
        received = Recorder()
        topic = contract.topic("after-poison")
        await connector.subscribe(topic, received)
        await connector.publish(topic, {"ok": True}, qos=1)
        await contract.wait_for(received, 1)

    @contract_test()
    async def test_oversize_messages_are_refused_in_the_caller(self, contract: ContractKit) -> None:
        """Promise 14 (no poison): needs `Capability.PACKET_LIMIT`. A message whose PUBLISH would exceed
        the Maximum Packet Size the backend announced at connect raises `PayloadError` (naming the
        limit) in `publish`, at QoS 0 and 1; it is not counted (neither published nor dropped), never
        sent, and the connection stays up (no reconnect): a small message after it is delivered. If
        this fails, read the limit the backend announces (MQTT 5: CONNACK Maximum Packet Size) and
        compare each PUBLISH's size with it before queueing the message.
        """
        limit = contract.need_packet_limit()
        subscriber = await contract.connected()
        publisher = await contract.connected(**FAST_RECONNECT)  # a failing connector reconnects fast
        topic = contract.topic("oversize")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        before = stats_of(publisher)
        big = {"big": "x" * limit}  # the payload alone is larger than the whole packet may be
        for qos in (0, 1):
            with pytest.raises(PayloadError, match=str(limit)):
                await publisher.publish(topic, big, qos=qos)
        await publisher.publish(topic, {"small": True}, qos=1)
        await contract.wait_for(received, 1)
        await contract.sentinel(publisher, topic, received)
        assert received.payloads == [{"small": True}], "a refused message was sent after all"
        stats = stats_of(publisher)
        counted = (stats.published - before.published, stats.dropped - before.dropped)
        assert counted == (2, 0), f"(published, dropped) grew by {counted}: the refused ones count"
        assert stats.reconnects == before.reconnects == 0, "the connection was lost: the limit was sent"

    @contract_test(OUTAGE_TIMEOUT)
    async def test_accounting_after_disconnect_is_exact(self, contract: ContractKit) -> None:
        """Promise 12 (exact accounting): after `disconnect()`, published == handed over + dropped.

        Needs `Capability.STOP_BACKEND`. 20 messages arrive; 30 more are published during an
        outage and `disconnect()` cannot send them: ``dropped`` is exactly 30 and the subscriber
        got exactly the 20. If this fails, count as dropped only what was never handed over.
        """
        contract.need_outage()
        publisher = await contract.connected(flush_timeout=0.2, **FAST_RECONNECT)
        subscriber = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("accounting")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        for i in range(20):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(received, 20)
        await contract.stop_backend()
        for i in range(20, 50):
            await publisher.publish(topic, {"i": i})
        await publisher.disconnect()
        stats = stats_of(publisher)
        assert (stats.published, stats.dropped) == (50, 30), stats
        await contract.start_backend()
        other = await contract.connected()

        async def probe_arrived() -> bool:
            await other.publish(topic, {"probe": True}, qos=1)
            return {"probe": True} in received.payloads

        await contract.eventually(probe_arrived, OUTAGE_WAIT)  # the subscriber is back
        numbers = [p["i"] for p in received.payloads if "i" in p]
        assert numbers == list(range(20)), "a message counted as dropped arrived, or one was lost"
