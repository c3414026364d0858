"""Promise 10 of docs/contract.md (Presence): the contract tests that check it."""

from __future__ import annotations

__all__ = ["PresenceTests"]


from cascade.connectors.protocol import (
    StatusMessage,
    status_topic,
)

from .._recorder import Recorder
from .kit import (
    FAST_RECONNECT,
    OUTAGE_TIMEOUT,
    OUTAGE_WAIT,
    ContractKit,
    contract_test,
    stats_of,
    status_of,
)


class PresenceTests:
    """Promise 10 (Presence). A mixin of `ConnectorContract`; see docs/contract.md."""

    @contract_test()
    async def test_connect_publishes_retained_online_presence(self, contract: ContractKit) -> None:
        """Promise 10 (presence): every connection publishes retained ``online`` on `status_topic(source)`.

        The message is a `StatusMessage` (``{"status", "source", "ts"}``). If this fails, publish
        ``StatusMessage("online", source).to_dict()`` retained right after each successful connection.
        """
        source = contract.source("online")
        await contract.connected(source=source)
        observer = await contract.connected()
        received = Recorder()
        await observer.subscribe(status_topic(source), received)
        await contract.eventually(
            lambda: bool(received.payloads) and status_of(received.payloads[-1]) == "online"
        )
        status = StatusMessage.from_dict(received.payloads[-1])
        assert status.source == source

    @contract_test()
    async def test_graceful_disconnect_publishes_retained_offline_presence(
        self, contract: ContractKit
    ) -> None:
        """Promise 10 (presence): `disconnect()` publishes retained ``offline`` (and no last will is needed).

        A live observer sees ``online`` then ``offline``; a later subscriber finds ``offline`` retained.
        If this fails, publish ``StatusMessage("offline", source)`` retained, after flushing and
        before closing the connection.
        """
        source = contract.source("offline")
        observer = await contract.connected()
        received = Recorder()
        await observer.subscribe(status_topic(source), received)
        worker = await contract.connected(source=source)
        await contract.eventually(lambda: [status_of(p) for p in received.payloads] == ["online"])
        await worker.disconnect()
        await contract.eventually(lambda: [status_of(p) for p in received.payloads] == ["online", "offline"])
        late = await contract.connected()
        retained = Recorder()
        await late.subscribe(status_topic(source), retained)
        assert [status_of(p) for p in retained.payloads] == ["offline"]

    @contract_test(OUTAGE_TIMEOUT)
    async def test_abrupt_loss_publishes_the_last_will_then_online_again(self, contract: ContractKit) -> None:
        """Promises 10 and 11: an abrupt loss fires the ``offline`` will; the reconnect says ``online``.

        Needs `Capability.DROP`. The observer sees ``online``, ``offline`` (the will), ``online``; the
        retained state ends ``online``; `stats.reconnects` is 1. If this fails, set a retained
        ``offline`` will at connect time and publish ``online`` after every reconnect.
        """
        drop = contract.need_drop()
        source = contract.source("will")
        observer = await contract.connected()
        received = Recorder()
        await observer.subscribe(status_topic(source), received)
        worker = await contract.connected(source=source, **FAST_RECONNECT)
        await contract.eventually(lambda: [status_of(p) for p in received.payloads] == ["online"])
        await drop.drop(worker)
        await contract.eventually(
            lambda: [status_of(p) for p in received.payloads] == ["online", "offline", "online"],
            OUTAGE_WAIT,
        )
        await contract.eventually(lambda: stats_of(worker).reconnects == 1)
        late = await contract.connected()
        retained = Recorder()
        await late.subscribe(status_topic(source), retained)
        assert [status_of(p) for p in retained.payloads] == ["online"]

    @contract_test(OUTAGE_TIMEOUT)
    async def test_presence_is_online_again_after_an_outage(self, contract: ContractKit) -> None:
        """Promise 10 (presence on every connection): after a restart, the retained status is ``online``.

        Needs `Capability.STOP_BACKEND`. If this fails, publish retained ``online`` after every automatic
        reconnect, not only after the first `connect()`.
        """
        contract.need_outage()
        source = contract.source("outage-presence")
        worker = await contract.connected(source=source, **FAST_RECONNECT)
        observer = await contract.connected(**FAST_RECONNECT)
        await contract.stop_backend()
        await contract.start_backend()
        await contract.eventually(
            lambda: stats_of(worker).reconnects == 1 and stats_of(observer).reconnects == 1,
            OUTAGE_WAIT,
        )

        async def retained_online() -> bool:
            seen = Recorder()
            handle = await observer.subscribe(status_topic(source), seen)
            await handle.unsubscribe()
            return bool(seen.payloads) and status_of(seen.payloads[-1]) == "online"

        await contract.eventually(retained_online, OUTAGE_WAIT)
