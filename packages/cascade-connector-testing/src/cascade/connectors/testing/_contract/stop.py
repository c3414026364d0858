"""Promise 9 of docs/contract.md (Graceful stop): the contract tests that check it."""

from __future__ import annotations

__all__ = ["GracefulStopTests"]

import asyncio
from typing import Any

import pytest
from cascade.connectors.protocol import (
    NotConnectedError,
)

from .._recorder import Recorder
from .kit import (
    FAST_RECONNECT,
    OUTAGE_TIMEOUT,
    ContractKit,
    contract_test,
    stats_of,
)


class GracefulStopTests:
    """Promise 9 (Graceful stop). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_disconnect_sends_what_is_queued(self, contract: ContractKit) -> None:
        """Promise 9 (graceful stop): `disconnect()` first sends every queued message, in order.

        500 qos 0 publishes followed at once by `disconnect()`: all arrive, the last one (an engine's
        ENGINE_STOPPED) included, and nothing is counted as dropped. If this fails, drain the outbound
        queue (bounded by a timeout) before closing the connection.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("flush")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        for i in range(499):
            await publisher.publish(topic, {"i": i})
        await publisher.publish(topic, {"i": 499, "event": "ENGINE_STOPPED"})
        await publisher.disconnect()
        assert stats_of(publisher).dropped == 0
        await contract.wait_for(received, 500)
        assert [p["i"] for p in received.payloads] == list(range(500))
        assert received.payloads[-1]["event"] == "ENGINE_STOPPED"

    @contract_test()
    async def test_no_callback_runs_after_disconnect_returns(self, contract: ContractKit) -> None:
        """Promise 9 (graceful stop): once `disconnect()` returns, none of that connector's callbacks run.

        The subscriber disconnects while messages are still arriving and queued for its callback; no
        callback may start afterwards (queued deliveries are discarded). If this fails, stop the
        dispatcher (and discard its queue) before `disconnect()` returns.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        witness = await contract.connected()
        topic = contract.topic("after-disconnect")
        witnessed = Recorder("witness connector")
        await witness.subscribe(topic, witnessed)
        closed = False
        late: list[int] = []
        count = 0

        async def record(_topic: str, payload: dict[str, Any]) -> None:
            nonlocal count
            count += 1
            if closed:
                late.append(payload["i"])
            await asyncio.sleep(0)

        await subscriber.subscribe(topic, record)
        for i in range(300):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: count >= 1)
        await subscriber.disconnect()
        closed = True
        for i in range(300, 350):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(witnessed, 350)
        await contract.sentinel(publisher, topic, witnessed)
        assert late == [], f"callbacks ran after disconnect() returned, for messages {late[:10]}..."

    @contract_test(OUTAGE_TIMEOUT)
    async def test_qos1_publish_pending_at_disconnect_raises_not_connected(
        self, contract: ContractKit
    ) -> None:
        """Promises 8 and 9: a qos 1 publish still waiting at `disconnect()` raises `NotConnectedError`.

        Needs `Capability.STOP_BACKEND`. The backend is down, so the publish waits (QoS 1 is never
        dropped silently); `disconnect()` (``flush_timeout=0.2``) ends it: the waiting caller gets
        `NotConnectedError`, a `ConnectorError`, never a library error or a hang. If this fails,
        resolve every pending qos 1 waiter with `NotConnectedError` when `disconnect()` discards it.
        """
        contract.need_outage()
        connector = await contract.connected(flush_timeout=0.2, **FAST_RECONNECT)
        topic = contract.topic("pending-qos1")
        await contract.stop_backend()
        pending = asyncio.ensure_future(connector.publish(topic, {"command": "pause"}, qos=1))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not pending.done(), "a qos 1 publish returned while the backend was down"
        await connector.disconnect()
        with pytest.raises(NotConnectedError):
            await pending
        await contract.start_backend()
