"""Promise 1 of docs/contract.md (Lifecycle): the contract tests that check it."""

from __future__ import annotations

__all__ = ["LifecycleTests"]

from typing import Any

import pytest
from cascade.connectors.protocol import (
    Connector,
    ConnectorError,
    NotConnectedError,
)

from .._recorder import Recorder
from .kit import (
    ContractKit,
    contract_test,
)


class LifecycleTests:
    """Promise 1 (Lifecycle). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_new_connector_is_a_connector_and_not_yet_connected(self, contract: ContractKit) -> None:
        """Promise 1 (lifecycle): a connector that was never connected refuses to work.

        `publish` and `subscribe` before `connect()` must raise `NotConnectedError` (not a library error,
        not a silent no-op). If this fails, check your connected-state flag before doing anything else.
        """
        connector = await contract.connector()
        assert isinstance(connector, Connector)
        topic = contract.topic("never")
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 1})
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 1}, qos=1)
        with pytest.raises(NotConnectedError):
            await connector.subscribe(topic, Recorder())

    @contract_test()
    async def test_disconnect_before_connect_is_a_noop(self, contract: ContractKit) -> None:
        """Promise 1 (lifecycle): `disconnect()` before `connect()` is a no-op and `connect()` still works.

        If this fails, make `disconnect()` return early when there is no connection.
        """
        connector = await contract.connector()
        await connector.disconnect()
        await connector.disconnect()
        await connector.connect()
        received = Recorder()
        topic = contract.topic("noop")
        await connector.subscribe(topic, received)
        await connector.publish(topic, {"n": 1})
        await contract.wait_for(received, 1)
        assert received.payloads == [{"n": 1}]

    @contract_test()
    async def test_connect_and_disconnect_are_idempotent(self, contract: ContractKit) -> None:
        """Promise 1 (lifecycle): a second `connect()` or `disconnect()` is harmless.

        A second `connect()` must not open a second connection (or fail); a second `disconnect()`
        must not raise. If this fails, guard both with the connection state.
        """
        connector = await contract.connector()
        await connector.connect()
        await connector.connect()
        received = Recorder()
        topic = contract.topic("idempotent")
        await connector.subscribe(topic, received)
        await connector.publish(topic, {"n": 1})
        await contract.wait_for(received, 1)
        await contract.sentinel(connector, topic, received)
        assert received.payloads == [{"n": 1}], "one connect() too many produced duplicate deliveries"
        await connector.disconnect()
        await connector.disconnect()
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 2})

    @contract_test()
    async def test_publish_and_subscribe_after_disconnect_raise_not_connected(
        self, contract: ContractKit
    ) -> None:
        """Promise 1 (lifecycle): after `disconnect()`, `publish` and `subscribe` raise `NotConnectedError`.

        "Disconnected" means `disconnect()` was called (during an outage a connector is not
        disconnected, promise 11), so nothing may be queued for later.
        If this fails, clear the connected flag at the start of `disconnect()`.
        """
        connector = await contract.connected()
        await connector.disconnect()
        topic = contract.topic("after")
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 1})
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 1}, qos=1)
        with pytest.raises(NotConnectedError):
            await connector.subscribe(topic, Recorder())

    @contract_test()
    async def test_connect_disconnect_connect_works(self, contract: ContractKit) -> None:
        """Promise 1 (lifecycle) and 9: connect → disconnect → connect gives a working, fresh session.

        After the second `connect()`, publish and subscribe work again; subscriptions of the first
        session stay ended (after `disconnect()` returns, no callback of it runs, ever). If this
        fails, make `connect()` restart everything `disconnect()` stopped, and make `disconnect()`
        forget the old subscriptions.
        """
        connector = await contract.connector()
        publisher = await contract.connected()
        topic = contract.topic("again")
        old = Recorder("first-session callback")
        await connector.connect()
        await connector.subscribe(topic, old)
        await connector.disconnect()
        await connector.connect()
        new = Recorder("second-session callback")
        await connector.subscribe(topic, new)
        await publisher.publish(topic, {"n": 1})
        await contract.wait_for(new, 1)
        await contract.sentinel(publisher, topic, new)
        assert new.payloads == [{"n": 1}]
        assert old.payloads == [], "a subscription from before disconnect() came back to life after connect()"

    @contract_test()
    async def test_context_manager_is_reusable_but_not_reentrant(self, contract: ContractKit) -> None:
        """Promise 1 (lifecycle): the connector is an async context manager, reusable, not re-entrant.

        A second ``async with`` on the same connector while inside the first raises `ConnectorError`
        and leaves the outer session working; after the block the connector is disconnected and a new
        ``async with`` works again. If this fails, implement ``__aenter__`` (`connect`) and
        ``__aexit__`` (`disconnect`) with a guard flag that refuses a nested entry.
        """
        connector = await contract.connector()
        topic = contract.topic("with")
        assert hasattr(connector, "__aenter__"), f"{connector!r} is not an async context manager"
        assert hasattr(connector, "__aexit__"), f"{connector!r} is not an async context manager"
        async with connector:
            with pytest.raises(ConnectorError):
                async with connector:
                    pass
            first = Recorder("first block")
            await connector.subscribe(topic, first)
            await connector.publish(topic, {"n": 1})
            await contract.wait_for(first, 1)
        with pytest.raises(NotConnectedError):
            await connector.publish(topic, {"n": 2})
        async with connector:
            second = Recorder("second block")
            await connector.subscribe(topic, second)
            await connector.publish(topic, {"n": 3})
            await contract.wait_for(second, 1)
        assert first.payloads == [{"n": 1}]
        assert second.payloads == [{"n": 3}]

    @contract_test()
    async def test_disconnect_from_inside_a_callback(self, contract: ContractKit) -> None:
        """Promises 1 and 9: a callback may call `disconnect()` on its own connector; it returns, and ends.

        The call returns (no deadlock waiting for the dispatcher that runs the callback itself), no
        further callback of that connector runs, and `connect()` afterwards gives a working session.
        If this fails (times out), `disconnect()` waits for the dispatcher task even when called from
        it: stop it without awaiting yourself.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        witness = await contract.connected()
        topic = contract.topic("disconnect-inside")
        calls: list[dict[str, Any]] = []
        returned: list[bool] = []

        async def stop_here(_topic: str, payload: dict[str, Any]) -> None:
            calls.append(payload)
            await subscriber.disconnect()
            returned.append(True)

        witnessed = Recorder("witness connector")
        await witness.subscribe(topic, witnessed)
        await subscriber.subscribe(topic, stop_here)
        for i in range(5):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: returned == [True], message="disconnect() inside a callback hung")
        await contract.wait_for(witnessed, 5)
        await contract.sentinel(publisher, topic, witnessed)
        assert calls == [{"i": 0}], f"callbacks ran after disconnect() returned: {calls}"
        with pytest.raises(NotConnectedError):
            await subscriber.publish(topic, {"n": 1})
        await subscriber.connect()
        again = Recorder("after reconnecting")
        await subscriber.subscribe(topic, again)
        await publisher.publish(topic, {"n": 2})
        await contract.wait_for(again, 1)
        assert again.payloads == [{"n": 2}]
