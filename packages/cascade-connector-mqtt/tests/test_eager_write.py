"""A producer that never yields to the event loop (a tight ``await publish(...)`` loop: publish does
not suspend at QoS 0) gets its messages written as it goes, not only when it finally yields, so the
broker works while the producer does (docs/performance.md, figure 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.testing import eventually


@pytest.mark.asyncio
async def test_a_producer_that_never_yields_is_written_as_it_goes(make: Callable[..., MqttConnector]) -> None:
    publisher = make()
    subscriber = make()
    await publisher.connect()
    await subscriber.connect()
    got: list[int] = []

    def keep(_topic: str, payload: dict[str, Any]) -> None:
        got.append(payload["i"])

    await subscriber.subscribe("eager/t", keep)
    queued: list[int] = []
    for i in range(5000):
        await publisher.publish("eager/t", {"i": i})
        queued.append(len(publisher._out.queue))
    assert max(queued) <= 512, f"{max(queued)} messages waited for the producer to yield"
    await eventually(lambda: len(got) == 5000, 10)
    assert got == list(range(5000))
    assert publisher.stats.dropped == 0
