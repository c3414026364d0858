"""Promise 8 of docs/contract.md (QoS): the contract tests that check it."""

from __future__ import annotations

__all__ = ["QosTests"]

import asyncio
from typing import Any

import pytest

from .._recorder import Recorder
from .kit import (
    FAST_RECONNECT,
    OUTAGE_TIMEOUT,
    OUTAGE_WAIT,
    ContractKit,
    contract_test,
    stats_of,
)


class QosTests:
    """Promise 8 (QoS). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_qos0_publish_does_not_wait_for_delivery(self, contract: ContractKit) -> None:
        """Promise 8 (QoS): `publish(qos=0)` returns once queued, even while every subscriber is stuck.

        A subscriber's callback blocks on the first message; the publisher still completes 200
        publishes, and everything arrives once the callback is released. If this fails (times out),
        `publish` waits for something downstream: make qos 0 enqueue and return.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("qos0")
        gate = asyncio.Event()
        received: list[int] = []

        async def stuck(_topic: str, payload: dict[str, Any]) -> None:
            received.append(payload["i"])
            await gate.wait()

        await subscriber.subscribe(topic, stuck)
        for i in range(200):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: len(received) >= 1)
        gate.set()
        await contract.eventually(lambda: len(received) == 200)
        assert received == list(range(200))

    @contract_test()
    async def test_qos1_publish_returns_after_the_backend_accepted_it(self, contract: ContractKit) -> None:
        """Promise 8 (QoS): when `publish(qos=1)` returns, the backend has the message.

        Right after it returns, a brand-new subscription sees the retained message. Invalid qos
        values raise `ValueError`. If this fails, await the PUBACK (or your backend's acknowledgement)
        before returning from a qos 1 publish.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("qos1")
        await publisher.publish(topic, {"acked": True}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(topic, received)
        assert received.payloads == [{"acked": True}]
        for qos in (2, -1):
            with pytest.raises(ValueError):
                await publisher.publish(topic, {"n": 1}, qos=qos)

    @contract_test(OUTAGE_TIMEOUT)
    async def test_qos1_publish_waits_across_an_outage_and_is_never_dropped(
        self, contract: ContractKit
    ) -> None:
        """Promise 8 (QoS 1 is never dropped): a qos 1 publish during an outage waits, then is delivered.

        Needs `Capability.STOP_BACKEND`. With ``max_buffered=10`` a qos 1 publish is followed by 30
        qos 0 ones: the overflow drops only the oldest qos 0 messages, the qos 1 publish completes after the
        restart and its message is delivered, with the newest qos 0 messages, in order.
        If this fails, never evict QoS 1 entries and resolve their waiters only on acknowledgement.
        """
        contract.need_outage()
        connector = await contract.connected(max_buffered=10, **FAST_RECONNECT)
        topic = contract.topic("qos1-outage")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        control = asyncio.ensure_future(connector.publish(topic, {"command": "pause"}, qos=1))
        for i in range(30):
            await connector.publish(topic, {"i": i})
        for _ in range(20):
            await asyncio.sleep(0)
        assert not control.done(), "a qos 1 publish returned while the backend was down"
        await contract.start_backend()
        await control
        await contract.eventually(lambda: {"i": 29} in received.payloads, OUTAGE_WAIT)
        await contract.sentinel(connector, topic, received)
        commands = [p for p in received.payloads if "command" in p]
        assert commands == [{"command": "pause"}], f"the qos 1 message was lost: {received.payloads}"
        numbers = [p["i"] for p in received.payloads if "i" in p]
        assert numbers == list(range(30 - len(numbers), 30)), (
            f"not the newest qos 0 messages in order: {numbers}"
        )
        assert stats_of(connector).dropped == 30 - len(numbers)
