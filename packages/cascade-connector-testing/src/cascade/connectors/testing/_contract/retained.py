"""Promise 5 of docs/contract.md (Retained state): the contract tests that check it."""

from __future__ import annotations

__all__ = ["RetainedTests"]


from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
    stats_of,
)


class RetainedTests:
    """Promise 5 (Retained state). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_subscribe_returns_after_retained_messages_were_delivered(
        self, contract: ContractKit
    ) -> None:
        """Promise 5 (retained): `subscribe()` returns only after the matching retained state was delivered.

        Checked right after `subscribe()` returns, with no waiting: an engine must see a pause before
        it runs its first task. Non-retained messages are not replayed. If this fails, make
        `subscribe()` wait for the end of the retained replay (on MQTT: a QoS 1 marker published after
        the SUBACK) before returning.
        """
        publisher = await contract.connected()
        for name in ("a", "b", "c"):
            await publisher.publish(contract.topic("state", name), {"state": name}, qos=1, retain=True)
        await publisher.publish(contract.topic("state", "live"), {"state": "not retained"}, qos=1)
        subscriber = await contract.connected()
        received = Recorder()
        await subscriber.subscribe(contract.topic("state", "#"), received)
        assert sorted(received.topics) == [contract.topic("state", n) for n in ("a", "b", "c")], (
            "subscribe() returned before the retained messages were delivered (or delivered extra ones)"
        )
        assert sorted(p["state"] for p in received.payloads) == ["a", "b", "c"]

    @contract_test()
    async def test_retained_publish_replaces_previous_state(self, contract: ContractKit) -> None:
        """Promise 5 (retained): a later retained publish replaces the topic's state.

        If this fails, your backend or connector keeps more than one retained message per topic.
        """
        publisher = await contract.connected()
        topic = contract.topic("replace")
        await publisher.publish(topic, {"v": 1}, qos=1, retain=True)
        await publisher.publish(topic, {"v": 2}, qos=1, retain=True)
        subscriber = await contract.connected()
        received = Recorder()
        await subscriber.subscribe(topic, received)
        assert received.payloads == [{"v": 2}]

    @contract_test()
    async def test_retained_empty_payload_clears_and_is_delivered_as_empty(
        self, contract: ContractKit
    ) -> None:
        """Promise 5: a retained ``{}`` clears the state and reaches current subscribers as ``{}``.

        This is how "resume" works. Publishing ``{}`` sends zero bytes; zero bytes decode to ``{}``
        and are never counted as malformed. If this fails, encode ``{}`` as ``b""`` and decode
        ``b""`` as ``{}`` (the protocol's codec does both).
        """
        publisher = await contract.connected()
        live = await contract.connected()
        topic = contract.topic("resume")
        received = Recorder("live subscriber")
        await live.subscribe(topic, received)
        await publisher.publish(topic, {"pause": True}, qos=1, retain=True)
        await publisher.publish(topic, {}, qos=1, retain=True)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"pause": True}, {}]
        assert stats_of(live).malformed == 0, "an empty payload was counted as malformed"
        late = await contract.connected()
        replay = Recorder("late subscriber")
        await late.subscribe(topic, replay)
        assert replay.payloads == [], "the retained state was not cleared by a retained {}"

    @contract_test()
    async def test_retained_replay_goes_only_to_the_new_subscription(self, contract: ContractKit) -> None:
        """Promise 5 (replay is per subscription): a new subscription gets the retained state; others do not.

        A connector already subscribed to ``x/#`` then subscribes ``x/+`` and ``x/#`` again: each new
        subscription receives the retained messages, the first one does not receive them a second
        time. If this fails, route the broker's retained replay for a SUBSCRIBE to that subscription's
        callback only (live messages still go to every matching subscription).
        """
        publisher = await contract.connected()
        for name in ("a", "b"):
            await publisher.publish(contract.topic("replay", name), {"name": name}, qos=1, retain=True)
        subscriber = await contract.connected()
        first = Recorder("first x/#")
        await subscriber.subscribe(contract.topic("replay", "#"), first)
        assert len(first) == 2
        second = Recorder("then x/+")
        await subscriber.subscribe(contract.topic("replay", "+"), second)
        assert len(second) == 2, (
            "the new subscription did not get the retained state before subscribe() returned"
        )
        third = Recorder("then x/# again")
        await subscriber.subscribe(contract.topic("replay", "#"), third)
        assert len(third) == 2, (
            "the new subscription did not get the retained state before subscribe() returned"
        )
        await contract.sentinel(publisher, contract.topic("replay", "a"), first, second, third)
        assert len(first) == 2, (
            f"an existing subscription received the retained replay again: {first.messages}"
        )
        assert len(second) == 2, (
            f"an existing subscription received the retained replay again: {second.messages}"
        )
        await publisher.publish(contract.topic("replay", "a"), {"name": "live"})
        await contract.eventually(lambda: len(first) == 3 and len(second) == 3 and len(third) == 3)

    @contract_test()
    async def test_injected_empty_retained_payload_clears(self, contract: ContractKit) -> None:
        """Promise 5: zero bytes retained by a foreign client clear the state and are delivered as ``{}``.

        Needs `Capability.INJECT_RAW`. If this fails, treat a zero-byte payload as ``{}`` (not malformed)
        and let your backend clear retained state on it.
        """
        inject = contract.need_inject_raw()
        publisher = await contract.connected()
        topic = contract.topic("inject-clear")
        live = await contract.connected()
        received = Recorder()
        await publisher.publish(topic, {"pause": True}, qos=1, retain=True)
        await live.subscribe(topic, received)
        assert received.payloads == [{"pause": True}]
        await inject.inject_raw(topic, b"", retain=True)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"pause": True}, {}]
        assert stats_of(live).malformed == 0
        late = await contract.connected()
        replay = Recorder()
        await late.subscribe(topic, replay)
        assert replay.payloads == []
