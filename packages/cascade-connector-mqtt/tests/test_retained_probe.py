"""The retained probe against a real Mosquitto: it never runs on MQTT 5, it runs once per connector on
MQTT 3.1.1 and finds that Mosquitto replays retained messages to wildcards before the sync marker, so
no warning fires; the probe never reaches callbacks or stats (docs/contract.md, promise 5;
docs/brokers.md for the brokers where it warns).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._probe import ProbeOutcome
from cascade.connectors.protocol import ConnectorStats
from cascade.connectors.testing import Recorder, eventually

pytestmark = [pytest.mark.mosquitto, pytest.mark.asyncio]

LOGGER = "cascade.connectors.mqtt"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_mqtt5_connections_never_probe_and_never_warn(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    await publisher.publish("probe5/a", {"n": 1}, qos=1, retain=True)
    seen = Recorder()
    await subscriber.subscribe("probe5/+", seen)
    assert seen.payloads == [{"n": 1}]  # delivered before subscribe() returned
    await subscriber.subscribe("probe5/#", Recorder())
    assert subscriber.protocol_version == "5"
    assert subscriber._probe.topics == ()
    assert subscriber._probe.outcome is None
    assert subscriber._session is not None
    assert subscriber._session.probe_task is None
    assert _warnings(caplog) == []


async def test_mqtt311_probes_once_finds_the_replay_and_stays_silent(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    publisher, subscriber = make(), make(protocol="3.1.1")
    await publisher.connect()
    await subscriber.connect()
    await publisher.publish("probe3/a", {"n": 1}, qos=1, retain=True)
    first, second = Recorder("first"), Recorder("second")
    await subscriber.subscribe("probe3/+", first)
    assert first.payloads == [{"n": 1}]
    session = subscriber._session
    assert session is not None
    assert session.probe_task is not None
    task = session.probe_task
    await eventually(lambda: subscriber._probe.outcome is not None)
    assert subscriber._probe.outcome is ProbeOutcome.REPLAYED
    await subscriber.subscribe("probe3/#", second)  # a second wildcard: no second probe
    assert session.probe_task is task
    assert task.done()
    await publisher.publish("probe3/b", {"n": 2}, qos=1)
    await eventually(lambda: len(second) == 2)
    await eventually(lambda: len(first) == 2)
    for recorder in (first, second):
        assert all(not topic.startswith("cascade/_sync/") for topic in recorder.topics)
    assert second.payloads == [{"n": 1}, {"n": 2}]
    assert subscriber.protocol_version == "3.1.1"
    assert subscriber.stats == ConnectorStats(delivered=4)  # the probe counts nowhere
    assert _warnings(caplog) == []
    assert "retained probe: replayed" in caplog.text


async def test_exact_filters_do_not_probe(make: Callable[..., MqttConnector]) -> None:
    subscriber = make(protocol="3.1.1")
    await subscriber.connect()
    await subscriber.subscribe("probe-exact/a", Recorder())
    assert subscriber._session is not None
    assert subscriber._session.probe_task is None


async def test_a_disconnect_during_the_probe_ends_it_and_the_next_session_probes_again(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    subscriber = make(protocol="3.1.1")
    await subscriber.connect()
    await subscriber.subscribe("probe-cut/#", Recorder())
    session = subscriber._session
    assert session is not None
    assert session.probe_task is not None
    task = session.probe_task
    assert not task.done()  # its retained message went out behind subscribe()'s marker: still running
    await subscriber.disconnect()
    assert task.done()
    assert subscriber._probe.topics == ()
    # disconnect() drains first, so the probe may have concluded; if not, the next session probes again
    assert subscriber._probe.outcome in (None, ProbeOutcome.REPLAYED)
    assert subscriber.stats.dropped == 0
    assert subscriber.stats.dropped_inbound == 0
    await subscriber.connect()
    await subscriber.subscribe("probe-cut/+", Recorder())
    await eventually(lambda: subscriber._probe.outcome is ProbeOutcome.REPLAYED)
    assert _warnings(caplog) == []


async def test_a_hash_subscription_sees_no_probe_and_the_probe_still_concludes(
    make: Callable[..., MqttConnector], caplog: pytest.LogCaptureFixture
) -> None:
    """With ``#`` at the broker the probe's publishes also come back live (RETAIN 0): only the replay
    (flagged retained) counts, and the ``#`` callback never sees the connector's namespace.
    """
    caplog.set_level(logging.WARNING, logger=LOGGER)
    subscriber = make(protocol="3.1.1")
    await subscriber.connect()
    everything = Recorder("#")
    await subscriber.subscribe("#", everything)
    await eventually(lambda: subscriber._probe.outcome is not None)
    assert subscriber._probe.outcome is ProbeOutcome.REPLAYED
    assert all(not topic.startswith("cascade/_sync/") for topic in everything.topics)
    assert subscriber.stats.delivered == len(everything)  # retained presence only: the probe counts nowhere
    assert _warnings(caplog) == []
