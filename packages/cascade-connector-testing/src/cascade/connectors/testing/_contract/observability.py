"""Promise 12 of docs/contract.md (Observability): the contract tests that check it."""

from __future__ import annotations

__all__ = ["ObservabilityTests"]

from typing import Any

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
    stats_of,
)


class ObservabilityTests:
    """Promise 12 (Observability). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_stats_count_published_delivered_and_callback_errors(self, contract: ContractKit) -> None:
        """Promise 12 (observability): `stats` is a `ConnectorStats` snapshot with the documented counters.

        A fresh connector reports zeros; ``published`` counts accepted publishes (presence not
        included), ``delivered`` counts callback invocations (failing ones included),
        ``callback_errors`` the failures; the snapshot does not change afterwards. If this fails,
        count in the places `ConnectorStats` documents and return ``dataclasses.replace(stats)``.
        """
        connector = await contract.connector()
        fresh = stats_of(connector)
        for name in ("published", "delivered", "dropped", "malformed", "callback_errors", "reconnects"):
            value = getattr(fresh, name)
            assert type(value) is int, f"stats.{name} is {value!r}, not an int"
            assert value == 0, f"stats.{name} of a fresh connector is {value!r}"
        await connector.connect()
        topic = contract.topic("stats")
        received = Recorder()

        async def broken(_topic: str, _payload: dict[str, Any]) -> None:
            raise RuntimeError("callback bug")

        await connector.subscribe(topic, received)
        await connector.subscribe(topic, broken)
        for i in range(3):
            await connector.publish(topic, {"i": i})
        await contract.wait_for(received, 3)
        await contract.eventually(lambda: stats_of(connector).delivered == 6)
        snapshot = stats_of(connector)
        assert (snapshot.published, snapshot.delivered, snapshot.callback_errors) == (3, 6, 3)
        assert (snapshot.dropped, snapshot.malformed, snapshot.reconnects) == (0, 0, 0)
        await connector.publish(topic, {"i": 3}, qos=1)
        assert snapshot.published == 3, "stats returned a live object, not a snapshot"
        assert stats_of(connector).published == 4
        assert stats_of(connector) is not stats_of(connector)
