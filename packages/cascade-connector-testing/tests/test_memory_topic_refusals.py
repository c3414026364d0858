"""The in-memory fake refuses what a real broker refuses in topics, in the caller, and carries on.

The same topics the MQTT connector's tests show Mosquitto disconnecting a client for (control
characters, non-characters, lone surrogates) raise `TopicError` from `publish`, `subscribe` and
`InMemoryBroker.inject`; nothing reaches the broker's history, and later messages flow.
"""

from __future__ import annotations

from typing import Any

import pytest
from cascade.connectors.protocol import TopicError
from cascade.connectors.testing import InMemoryBroker, InMemoryConnector, Recorder

FAST: dict[str, Any] = {"reconnect_min_delay": 0.001, "reconnect_max_delay": 0.01}

REFUSED = [
    "\x00", "\x01", "\t", "\n", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ud800", "\udfff",
    "\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff",
]  # fmt: skip


@pytest.mark.asyncio
async def test_a_refused_topic_raises_in_the_caller_and_the_fake_keeps_working() -> None:
    broker = InMemoryBroker()
    async with (
        InMemoryConnector(broker, source="pub", **FAST) as publisher,
        InMemoryConnector(broker, source="sub", **FAST) as subscriber,
    ):
        received = Recorder("grammar")
        await subscriber.subscribe("grammar/ok/#", received)
        before_history = len(broker.history)
        before = publisher.stats
        for char in REFUSED:
            for qos in (0, 1):
                with pytest.raises(TopicError) as info:
                    await publisher.publish(f"grammar/ok/a{char}b", {"n": -1}, qos=qos)
                assert info.value.kind == "topic"
                assert f"U+{ord(char):04X}" in info.value.problem
                assert "at index 12" in info.value.problem
            with pytest.raises(TopicError) as info:
                await subscriber.subscribe(f"grammar/ok/{char}/#", Recorder("never"))
            assert info.value.kind == "filter"
            with pytest.raises(TopicError):
                await broker.inject(f"grammar/ok/{char}", b"{}")
        await broker.settle()
        assert len(broker.history) == before_history  # nothing refused reached the broker
        assert publisher.stats.published == before.published
        for n in range(5):
            await publisher.publish("grammar/ok/later", {"n": n}, qos=1)
        await publisher.publish("grammar/ok/later", {"n": 5})
        await publisher.publish("grammar/ok/über/日本/عربى/ a b", {"n": 6}, qos=1)
        await broker.settle()
        assert received.payloads == [{"n": n} for n in range(7)]
        assert received.topics[-1] == "grammar/ok/über/日本/عربى/ a b"
        assert publisher.connected
        assert subscriber.connected
        assert publisher.stats.reconnects == 0
        assert publisher.stats.dropped == 0


def test_a_source_that_cannot_be_a_topic_level_is_refused_at_construction() -> None:
    for char in ("\t", "\x85", "\ufffe", "\ud800"):
        with pytest.raises(TopicError) as info:
            InMemoryConnector(InMemoryBroker(), source=f"worker{char}")
        assert info.value.kind == "source"
        assert "at index 6" in info.value.problem
