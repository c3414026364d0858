"""Promise 4 of docs/contract.md (Delivery): the contract tests that check it."""

from __future__ import annotations

__all__ = ["DeliveryTests"]

from typing import Any, cast

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
    stats_of,
)


class DeliveryTests:
    """Promise 4 (Delivery). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_messages_arrive_in_publish_order(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): one publisher's messages on one topic arrive in publish order, none lost.

        If this fails, keep one FIFO outbound queue and one dispatcher per connector (no task per
        message, no concurrent callbacks for one subscription).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("order")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        for i in range(300):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(received, 300)
        await contract.sentinel(publisher, topic, received)
        assert [p["i"] for p in received.payloads] == list(range(300))

    @contract_test()
    async def test_a_connector_receives_its_own_messages(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): a connector subscribed to a topic receives what it publishes there itself.

        (MQTT 3.1.1 has no "no local" option; an engine and its observer may share one connector.)
        If this fails, do not filter out your own messages.
        """
        connector = await contract.connected()
        topic = contract.topic("self")
        received = Recorder()
        await connector.subscribe(topic, received)
        await connector.publish(topic, {"n": 1})
        await connector.publish(topic, {"n": 2}, qos=1)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"n": 1}, {"n": 2}]

    @contract_test()
    async def test_overlapping_subscriptions_each_receive_once(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): overlapping subscriptions on one connector each get a message exactly once.

        Four different overlapping filters plus the same filter twice: every one of the six callbacks
        gets each message once, whatever the broker sends for overlapping subscriptions. If this
        fails, dispatch locally through a `SubscriptionIndex` per connector (the broker may send one
        copy per client or one per matching subscription; deduplicate by delivering each inbound
        message once to each matching local subscription).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("overlap", "a", "b")
        filters = [
            contract.topic("overlap", "#"),
            contract.topic("overlap", "a", "+"),
            contract.topic("overlap", "+", "b"),
            topic,
            topic,
            contract.topic("overlap", "a", "b", "#"),
        ]
        recorders = [Recorder(f) for f in filters]
        for topic_filter, recorder in zip(filters, recorders, strict=True):
            await subscriber.subscribe(topic_filter, recorder)
        await publisher.publish(topic, {"n": 1})
        await publisher.publish(topic, {"n": 2})
        await contract.eventually(lambda: all(len(recorder) >= 2 for recorder in recorders))
        await contract.sentinel(publisher, topic, *recorders)
        for recorder in recorders:
            assert recorder.payloads == [{"n": 1}, {"n": 2}], (
                f"subscription {recorder.name!r} got {recorder.payloads}"
            )

    @contract_test()
    async def test_a_plain_function_callback_receives_messages(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): a plain (non-async) function is a callback just like a coroutine function.

        It receives every matching message in order, and nothing is counted as a callback error.
        If this fails, call the callback and await the result only when it is awaitable (or refuse
        a plain function in `subscribe()`, which the contract does not allow: both must work).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("plain-function")
        received: list[dict[str, Any]] = []

        def plain(_topic: str, payload: dict[str, Any]) -> None:
            received.append(payload)

        await subscriber.subscribe(topic, cast(Any, plain))
        for i in range(3):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: len(received) >= 3)
        assert received == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert stats_of(subscriber).callback_errors == 0

    @contract_test()
    async def test_subscribe_from_inside_a_callback(self, contract: ContractKit) -> None:
        """Promises 4 and 5: a callback may `subscribe()`; it returns after that filter's retained state.

        The callback of one subscription subscribes to a topic holding retained state: the inner
        `subscribe()` returns (no deadlock on the dispatcher running the callback) with the retained
        message already delivered, and later live messages reach the new subscription. If this fails
        (times out), the retained replay waits for the dispatcher that is busy running the callback:
        deliver the replay inline when `subscribe()` is called from it.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        trigger = contract.topic("inside", "trigger")
        state = contract.topic("inside", "state")
        await publisher.publish(state, {"state": "paused"}, qos=1, retain=True)
        inner = Recorder("subscribed from a callback")
        seen_when_returned: list[list[dict[str, Any]]] = []

        async def subscribe_inside(_topic: str, _payload: dict[str, Any]) -> None:
            await subscriber.subscribe(state, inner)
            seen_when_returned.append(list(inner.payloads))

        await subscriber.subscribe(trigger, subscribe_inside)
        await publisher.publish(trigger, {"go": True})
        await contract.eventually(
            lambda: len(seen_when_returned) == 1, message="subscribe() inside a callback never returned"
        )
        assert seen_when_returned == [[{"state": "paused"}]], (
            "subscribe() inside a callback returned before the retained state was delivered"
        )
        await publisher.publish(state, {"state": "live"})
        await contract.eventually(lambda: inner.payloads == [{"state": "paused"}, {"state": "live"}])
