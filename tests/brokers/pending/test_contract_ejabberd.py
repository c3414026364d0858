"""The whole contract on ejabberd 23.01 (mod_mqtt) with MQTT 5, through the matrix's harness factory.

ejabberd refuses every client publish to a `$` topic (PUBACK 0x90, measured with a plain client in the
truth table). One contract test publishes to a `$` topic itself: a deviation of the broker. The others
fail because today's connector puts its "retained state has arrived" marker on ``$cascade/sync/...``:
the refusal releases `subscribe()` before the retained messages arrived, a race. Those are deviations of
the connector on this broker until the sync topic moves under the connector's own namespace (issue 11);
they are declared as races, so the day they pass the declaration must go (the run reports XPASS).

Because which tests lose the race changes from run to run, this cell lives in ``pending/`` and is not
part of ``hatch run test-brokers``; run it by naming the file. Move it next to the other contract runs
when the connector's sync marker no longer uses a `$` topic on this broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

import pytest_asyncio
from cascade.connectors.testing import ConnectorContract

from tests.brokers.harness import BrokerHarness, Deviation, harness_for
from tests.brokers.servers.ejabberd import EjabberdServer

_SYNC_REFUSED = Deviation(
    "ejabberd refuses the connector's $cascade/sync marker (PUBACK 0x90), so subscribe() returns before "
    "the retained state arrived; fixed by a sync topic outside $ (issue 11)",
    race=True,
)

EJABBERD_MQTT5_DEVIATIONS: Mapping[str, str | Deviation] = {
    "test_leading_wildcards_do_not_match_dollar_topics": (
        "ejabberd refuses client publishes to $ topics (PUBACK 0x90, not configurable), so no $ topic "
        "message exists to be matched"
    ),
    "test_subscribe_returns_after_retained_messages_were_delivered": _SYNC_REFUSED,
    "test_retained_replay_goes_only_to_the_new_subscription": _SYNC_REFUSED,
    "test_injected_empty_retained_payload_clears": _SYNC_REFUSED,
    "test_qos1_publish_returns_after_the_backend_accepted_it": _SYNC_REFUSED,
    "test_graceful_disconnect_publishes_retained_offline_presence": _SYNC_REFUSED,
    "test_abrupt_loss_publishes_the_last_will_then_online_again": _SYNC_REFUSED,
    "test_presence_is_online_again_after_an_outage": _SYNC_REFUSED,
    "test_reconnect_resubscribes_and_redelivers_retained_state": _SYNC_REFUSED,
    "test_retained_publish_replaces_previous_state": _SYNC_REFUSED,
}


class TestEjabberdMqtt5Contract(ConnectorContract):
    matrix: ClassVar[tuple[str, str]] = ("ejabberd", "5")
    known_deviations: ClassVar[Mapping[str, str | Deviation]] = EJABBERD_MQTT5_DEVIATIONS

    @pytest_asyncio.fixture
    async def harness(self) -> AsyncIterator[BrokerHarness]:
        server = EjabberdServer()  # a private broker per test: the outage tests stop it
        server.start()
        try:
            async with harness_for(server) as harness:
                yield harness
        finally:
            server.close()
