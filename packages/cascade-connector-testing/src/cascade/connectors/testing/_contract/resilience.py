"""Promise 11 of docs/contract.md (Resilience): the contract tests that check it."""

from __future__ import annotations

__all__ = ["ResilienceTests"]


from .._recorder import Recorder
from .kit import (
    FAST_RECONNECT,
    OUTAGE_TIMEOUT,
    OUTAGE_WAIT,
    ContractKit,
    contract_test,
    stats_of,
)


class ResilienceTests:
    """Promise 11 (Resilience). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test(OUTAGE_TIMEOUT)
    async def test_reconnect_resubscribes_and_redelivers_retained_state(self, contract: ContractKit) -> None:
        """Promise 11 (resilience): after an outage: reconnect, re-subscribe, retained state delivered again.

        Needs `Capability.STOP_BACKEND`; retained state survives the backend restart. The subscription
        receives its retained message a second time after the reconnect, then live messages again;
        `stats.reconnects` is 1 on both connectors. If this fails, keep the live subscriptions and
        re-subscribe all of them after every reconnect.
        """
        contract.need_outage()
        publisher = await contract.connected(**FAST_RECONNECT)
        subscriber = await contract.connected(**FAST_RECONNECT)
        state = contract.topic("resub", "state")
        await publisher.publish(state, {"state": "paused"}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(contract.topic("resub", "#"), received)
        assert received.payloads == [{"state": "paused"}]
        await contract.stop_backend()
        await contract.start_backend()
        await contract.eventually(lambda: received.payloads == [{"state": "paused"}] * 2, OUTAGE_WAIT)
        await contract.eventually(lambda: stats_of(publisher).reconnects == 1, OUTAGE_WAIT)
        await publisher.publish(contract.topic("resub", "live"), {"live": True}, qos=1)
        await contract.eventually(lambda: received.payloads[-1:] == [{"live": True}])
        assert stats_of(subscriber).reconnects == 1

    @contract_test(OUTAGE_TIMEOUT)
    async def test_publishes_during_an_outage_are_sent_after_reconnect_in_order(
        self, contract: ContractKit
    ) -> None:
        """Promise 11 and 8: publishing during an outage never raises; queued messages go out in order.

        Needs `Capability.STOP_BACKEND`. The connector subscribes to its own topic, the backend stops,
        50 qos 0 publishes return at once; after the restart the connector re-subscribes first, then sends
        the 50 in order. If this fails, queue while disconnected (do not raise), re-subscribe before
        flushing, and flush in FIFO order.
        """
        contract.need_outage()
        connector = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("queued")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        for i in range(50):
            await connector.publish(topic, {"i": i})
        await contract.start_backend()
        await contract.wait_for(received, 50, OUTAGE_WAIT)
        await contract.sentinel(connector, topic, received)
        assert [p["i"] for p in received.payloads] == list(range(50))
        assert stats_of(connector).dropped == 0

    @contract_test(OUTAGE_TIMEOUT)
    async def test_subscribe_during_an_outage_registers_and_returns(self, contract: ContractKit) -> None:
        """Promise 11: during an outage `subscribe()` registers and returns; retained state follows later.

        Needs `Capability.STOP_BACKEND`. If this fails (times out or raises), do not wait for the broker in
        `subscribe()` while the connection is down: remember the subscription, send it on reconnect.
        """
        contract.need_outage()
        publisher = await contract.connected(**FAST_RECONNECT)
        subscriber = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("outage-sub")
        await publisher.publish(topic, {"state": "retained"}, qos=1, retain=True)
        await contract.stop_backend()
        received = Recorder()
        await subscriber.subscribe(topic, received)
        await contract.start_backend()
        await contract.eventually(lambda: received.payloads[:1] == [{"state": "retained"}], OUTAGE_WAIT)
        await contract.eventually(lambda: stats_of(publisher).reconnects == 1, OUTAGE_WAIT)
        await publisher.publish(topic, {"state": "live"})
        await contract.eventually(lambda: received.payloads[-1:] == [{"state": "live"}])

    @contract_test(OUTAGE_TIMEOUT)
    async def test_buffer_overflow_drops_exactly_the_oldest(self, contract: ContractKit) -> None:
        """Promises 11 and 12: 150 publishes, ``max_buffered=100``, an outage: exactly the 50 oldest dropped.

        Needs `Capability.STOP_BACKEND`. `stats.published` is 150, `stats.dropped` is 50, and messages 50..149
        arrive after the restart, in order. If this fails, bound every message accepted and not yet
        handed to the broker by ``max_buffered`` and evict the oldest (counting each).
        """
        contract.need_outage()
        connector = await contract.connected(max_buffered=100, **FAST_RECONNECT)
        topic = contract.topic("overflow")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        for i in range(150):
            await connector.publish(topic, {"i": i})
        await contract.start_backend()
        await contract.eventually(lambda: {"i": 149} in received.payloads, OUTAGE_WAIT)
        stats = stats_of(connector)
        assert stats.published == 150
        assert stats.dropped == 50
        await contract.sentinel(connector, topic, received)
        assert [p["i"] for p in received.payloads] == list(range(50, 150))

    @contract_test(OUTAGE_TIMEOUT)
    async def test_abrupt_loss_reconnects_and_resubscribes(self, contract: ContractKit) -> None:
        """Promise 11 (resilience): after an abrupt loss the connector reconnects and re-subscribes by itself.

        Needs `Capability.DROP`. The dropped subscriber gets its retained message again, then live
        messages; `stats.reconnects` is 1 and the publisher is unaffected. If this fails, detect the
        lost connection (no DISCONNECT from you) and run the same reconnect path as for an outage.
        """
        drop = contract.need_drop()
        publisher = await contract.connected()
        subscriber = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("drop")
        await publisher.publish(topic, {"state": "retained"}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(topic, received)
        await drop.drop(subscriber)
        await contract.eventually(lambda: received.payloads == [{"state": "retained"}] * 2, OUTAGE_WAIT)
        await publisher.publish(topic, {"state": "live"})
        await contract.eventually(lambda: received.payloads[-1:] == [{"state": "live"}])
        assert stats_of(subscriber).reconnects == 1
        assert stats_of(publisher).reconnects == 0
