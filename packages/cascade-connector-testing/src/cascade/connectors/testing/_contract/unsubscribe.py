"""Promise 6 of docs/contract.md (Unsubscribe): the contract tests that check it."""

from __future__ import annotations

__all__ = ["UnsubscribeTests"]

from typing import Any

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
)


class UnsubscribeTests:
    """Promise 6 (Unsubscribe). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_unsubscribe_stops_only_that_subscription(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): after `unsubscribe()` that callback gets nothing; others are unaffected.

        Two subscriptions on the same filter and one on an overlapping filter share a connector;
        removing one must not remove the broker-side subscription the others still need. If this
        fails, reference-count broker subscriptions per filter and match locally.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        other = await contract.connected()
        topic = contract.topic("unsub", "x")
        gone = Recorder("unsubscribed")
        same = Recorder("same filter")
        wider = Recorder("wider filter")
        elsewhere = Recorder("other connector")
        handle = await subscriber.subscribe(topic, gone)
        await subscriber.subscribe(topic, same)
        wider_handle = await subscriber.subscribe(contract.topic("unsub", "#"), wider)
        await other.subscribe(topic, elsewhere)
        await publisher.publish(topic, {"n": 1})
        await contract.eventually(lambda: len(gone) == len(same) == len(wider) == len(elsewhere) == 1)
        await handle.unsubscribe()
        await publisher.publish(topic, {"n": 2})
        await contract.eventually(lambda: len(same) == len(wider) == len(elsewhere) == 2)
        await wider_handle.unsubscribe()
        await publisher.publish(topic, {"n": 3})
        await contract.eventually(lambda: len(same) == len(elsewhere) == 3)
        await contract.sentinel(publisher, topic, same)
        assert gone.payloads == [{"n": 1}], "a callback ran after its unsubscribe() returned"
        assert wider.payloads == [{"n": 1}, {"n": 2}], "a callback ran after its unsubscribe() returned"
        assert same.payloads == [{"n": 1}, {"n": 2}, {"n": 3}]

    @contract_test()
    async def test_unsubscribe_twice_is_harmless(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): calling `unsubscribe()` again does nothing (and does not hurt others).

        If this fails, make `unsubscribe()` idempotent (and never decrement a shared reference twice).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("twice")
        kept = Recorder("kept")
        handle = await subscriber.subscribe(topic, Recorder("removed"))
        await subscriber.subscribe(topic, kept)
        await handle.unsubscribe()
        await handle.unsubscribe()
        await publisher.publish(topic, {"n": 1})
        await contract.wait_for(kept, 1)
        assert kept.payloads == [{"n": 1}]

    @contract_test()
    async def test_unsubscribe_from_inside_the_callback(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): a callback may unsubscribe itself; it then gets nothing more.

        If this fails, `unsubscribe()` probably waits for the dispatcher that is running the callback
        (deadlock, the test times out), or messages already queued still reach the callback.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("self-unsub")
        calls: list[dict[str, Any]] = []
        handles: list[Any] = []

        async def once(_topic: str, payload: dict[str, Any]) -> None:
            calls.append(payload)
            await handles[0].unsubscribe()

        handles.append(await subscriber.subscribe(topic, once))
        witness = Recorder("witness on the same filter")
        await subscriber.subscribe(topic, witness)
        for i in range(5):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(witness, 5)
        await contract.sentinel(publisher, topic, witness)
        assert calls == [{"i": 0}], f"the callback ran after it unsubscribed itself: {calls}"
