"""Promise 3 of docs/contract.md (Topics): the contract tests that check it."""

from __future__ import annotations

__all__ = ["TopicTests"]


import pytest
from cascade.connectors.protocol import (
    TopicError,
)

from .._recorder import Recorder
from .kit import (
    SENTINEL_KEY,
    ContractKit,
    contract_test,
)


class TopicTests:
    """Promise 3 (Topics). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_invalid_topic_names_raise_topic_error(self, contract: ContractKit) -> None:
        """Promise 3 (topics): publishing to an invalid topic name raises `TopicError` in the caller.

        Invalid: empty, containing ``+`` or ``#``, containing NUL, longer than 65535 UTF-8 bytes.
        If this fails, call the protocol's `validate_topic` in `publish` before queueing.
        """
        connector = await contract.connected()
        invalid = [
            "",
            "a/+",
            "a/#",
            "+",
            "#",
            "a/b+",
            "a#",
            "a\x00b",
            "a" * 65536,
            "é" * 32768,
        ]
        for topic in invalid:
            for qos in (0, 1):
                with pytest.raises(TopicError):
                    await connector.publish(topic, {"n": 1}, qos=qos)

    @contract_test()
    async def test_invalid_filters_raise_topic_error(self, contract: ContractKit) -> None:
        """Promise 3 (topics): subscribing with an invalid filter raises `TopicError` in the caller.

        Invalid: empty, ``#`` not alone as the last level, ``+`` not a whole level, NUL, too long.
        Valid edge cases (``+`` alone, ``#`` as last level, empty levels) are accepted. If this
        fails, call the protocol's `validate_filter` in `subscribe` before talking to the backend.
        """
        connector = await contract.connected()
        invalid = ["", "a/#/b", "a/b#", "a+/b", "#/a", "a/+b", "a/\x00", "a" * 65536]
        for topic_filter in invalid:
            with pytest.raises(TopicError):
                await connector.subscribe(topic_filter, Recorder())
        for topic_filter in (
            contract.topic("+"),
            contract.topic("#"),
            contract.topic("+", "x", "#"),
            contract.topic("", "x"),
        ):
            handle = await connector.subscribe(topic_filter, Recorder())
            await handle.unsubscribe()

    @contract_test()
    async def test_matching_follows_mqtt(self, contract: ContractKit) -> None:
        """Promise 3 and 4: matching follows MQTT 3.1.1 §4.7, each subscription getting each match once.

        Covers ``x/#`` matching ``x`` itself, ``+`` matching an empty level, ``+`` never spanning
        levels, and overlapping filters on one connector. If this fails, match locally with the
        protocol's `SubscriptionIndex` / `topic_matches` and dispatch each message to each matching
        subscription exactly once.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topics = ["sport", "sport/tennis", "sport/tennis/player1", "sport/", "sports", "/x", "a//x"]
        expected = {
            "sport/#": {"sport", "sport/tennis", "sport/tennis/player1", "sport/"},
            "sport/+": {"sport/tennis", "sport/"},
            "sport/tennis/+": {"sport/tennis/player1"},
            "sport/tennis/player1/#": {"sport/tennis/player1"},
            "+": {"sport", "sports"},
            "+/+": {"sport/tennis", "sport/", "/x"},
            "+/tennis/#": {"sport/tennis", "sport/tennis/player1"},
            "a/+/x": {"a//x"},
        }
        recorders: dict[str, Recorder] = {}
        for relative in expected:
            recorders[relative] = Recorder(relative)
            await subscriber.subscribe(f"{contract.prefix}/{relative}", recorders[relative])
        for relative in topics:
            await publisher.publish(f"{contract.prefix}/{relative}", {"t": relative})

        def all_expected_arrived() -> bool:
            for relative, wanted in expected.items():
                got = {p["t"] for p in recorders[relative].payloads}
                assert got >= wanted, f"filter {relative!r} received {sorted(got)}, expected {sorted(wanted)}"
            return True

        await contract.eventually(all_expected_arrived)
        for relative, wanted in expected.items():  # a marker on a topic of each filter bounds extras
            await contract.sentinel(publisher, f"{contract.prefix}/{min(wanted)}", recorders[relative])
        for relative, wanted in expected.items():  # (other filters' markers are not messages)
            got = [p["t"] for p in recorders[relative].payloads if SENTINEL_KEY not in p]
            assert sorted(got) == sorted(wanted), (
                f"filter {relative!r} received {got}, expected {sorted(wanted)}"
            )

    @contract_test()
    async def test_leading_wildcards_do_not_match_dollar_topics(self, contract: ContractKit) -> None:
        """Promise 3 (topics): filters starting with ``+`` or ``#`` do not match topics starting with ``$``.

        A ``$``-topic still reaches an exact subscription. If this fails, use the protocol's
        matcher, which applies the ``$`` rule (MQTT 3.1.1 §4.7.2).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        dollar = f"$contract/{contract.uid}/x"
        plain = f"contract/{contract.uid}/x"
        wildcard = Recorder("+/uid/x")
        wildcard_multi = Recorder("+/uid/#")
        exact = Recorder("$contract/uid/x")
        await subscriber.subscribe(f"+/{contract.uid}/x", wildcard)
        await subscriber.subscribe(f"+/{contract.uid}/#", wildcard_multi)
        await subscriber.subscribe(dollar, exact)
        await publisher.publish(dollar, {"t": "dollar"})
        await publisher.publish(plain, {"t": "plain"})
        await contract.wait_for(exact, 1)
        await contract.eventually(lambda: len(wildcard) >= 1 and len(wildcard_multi) >= 1)
        await contract.sentinel(publisher, plain, wildcard, wildcard_multi)
        assert exact.payloads == [{"t": "dollar"}]
        assert wildcard.payloads == [{"t": "plain"}], "a leading '+' matched a '$' topic"
        assert wildcard_multi.payloads == [{"t": "plain"}], "a leading '+' matched a '$' topic"
