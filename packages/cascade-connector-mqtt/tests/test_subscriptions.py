"""Subscriptions against Mosquitto: refusals, overlapping filters, retained sync, shared filters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.mosquitto import MosquittoServer
from cascade.connectors.protocol import SubscriptionRefusedError
from cascade.connectors.testing import Recorder, eventually

pytestmark = pytest.mark.mosquitto


async def sentinel(publisher: MqttConnector, subscriber: MqttConnector, topic: str = "sentinel/x") -> None:
    """Return once `subscriber` dispatched everything `publisher` sent before (QoS 1 marker, same path)."""
    seen = Recorder("sentinel")
    handle = await subscriber.subscribe(topic, seen)
    await publisher.publish(topic, {"sentinel": True}, qos=1)
    await seen.wait_for(1)
    await handle.unsubscribe()


@pytest.mark.asyncio
async def test_a_subscription_denied_by_the_broker_raises(
    mosquitto_factory: Callable[..., MosquittoServer],
    dynsec: Callable[[Sequence[Mapping[str, Any]]], str],
    make: Callable[..., MqttConnector],
) -> None:
    """Mosquitto's dynamic-security plugin refuses the SUBSCRIBE (MQTT 5 SUBACK 0x87)."""
    server = mosquitto_factory(extra_config=dynsec([{"acltype": "subscribePattern", "topic": "secret/#"}]))
    connector = make(server)
    await connector.connect()
    allowed = Recorder()
    await connector.subscribe("public/#", allowed)
    with pytest.raises(SubscriptionRefusedError) as caught:
        await connector.subscribe("secret/plans", Recorder())
    assert caught.value.topic == "secret/plans"
    assert "Not authorized" in caught.value.detail
    # The connector and its other subscriptions carry on.
    await connector.publish("public/news", {"ok": 1}, qos=1)
    await allowed.wait_for(1)
    assert allowed.payloads == [{"ok": 1}]
    assert connector.connected


@pytest.mark.asyncio
async def test_overlapping_filters_each_get_a_message_exactly_once(
    make: Callable[..., MqttConnector],
) -> None:
    """Mosquitto sends one copy per matching subscription; subscription identifiers route each copy."""
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    names = ["a/#", "a/+", "a/b", "a/b (again)", "+/b", "#"]
    recorders = {name: Recorder(name) for name in names}
    for name, recorder in recorders.items():
        await subscriber.subscribe(name.split(" ")[0], recorder)
    await publisher.publish("a/b", {"n": 1})
    await publisher.publish("a/c", {"n": 2})
    await sentinel(publisher, subscriber)
    got = {
        name: [payload for topic, payload in recorder.messages if not topic.startswith("cascade/status/")]
        for name, recorder in recorders.items()
    }
    assert got == {
        "a/#": [{"n": 1}, {"n": 2}],
        "a/+": [{"n": 1}, {"n": 2}],
        "a/b": [{"n": 1}],
        "a/b (again)": [{"n": 1}],
        "+/b": [{"n": 1}],
        "#": [{"n": 1}, {"n": 2}, {"sentinel": True}],
    }
    presence = len(recorders["#"]) - 3  # "#" also got the retained presence of both connectors
    assert subscriber.stats.delivered == 10 + 1 + presence  # and the sentinel's own subscription


@pytest.mark.asyncio
async def test_subscriptions_on_one_filter_share_the_broker_subscription(
    make: Callable[..., MqttConnector],
) -> None:
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    first, second = Recorder("first"), Recorder("second")
    handle1 = await subscriber.subscribe("shared/t", first)
    handle2 = await subscriber.subscribe("shared/t", second)
    await handle1.unsubscribe()
    await publisher.publish("shared/t", {"n": 1})
    await sentinel(publisher, subscriber)
    assert first.payloads == []
    assert second.payloads == [{"n": 1}]  # the broker subscription survived the first unsubscribe
    await handle2.unsubscribe()
    await handle2.unsubscribe()  # harmless
    await publisher.publish("shared/t", {"n": 2})
    await sentinel(publisher, subscriber)
    assert second.payloads == [{"n": 1}]
    session = subscriber._session
    assert session is not None
    assert "shared/t" not in session.registry.by_filter  # the last one removed it at the broker


@pytest.mark.asyncio
async def test_subscribe_returns_after_many_retained_messages(make: Callable[..., MqttConnector]) -> None:
    """More retained QoS 1 messages than Mosquitto keeps in flight (20), plus QoS 0 ones."""
    publisher, subscriber = make(), make()
    await publisher.connect()
    for i in range(120):
        await publisher.publish(f"state/q1/{i}", {"i": i}, qos=1, retain=True)
    for i in range(60):
        await publisher.publish(f"state/q0/{i}", {"i": i}, retain=True)
    await publisher.publish("state/done", {}, qos=1)  # everything above is stored by now
    await subscriber.connect()
    everything, half = Recorder("everything"), Recorder("half")
    await subscriber.subscribe("state/#", everything)
    assert len(everything) == 180  # no waiting: subscribe() returned after all of them
    await subscriber.subscribe("state/q0/+", half)
    assert len(half) == 60
    assert len(everything) == 180  # the replay for the second filter went to it alone


@pytest.mark.asyncio
async def test_subscribe_from_inside_a_callback_gets_the_retained_state(
    make: Callable[..., MqttConnector],
) -> None:
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    await publisher.publish("inner/state", {"paused": True}, qos=1, retain=True)
    inner = Recorder("inner")
    seen_inside: list[int] = []

    async def outer(topic: str, payload: dict[str, Any]) -> None:
        await subscriber.subscribe("inner/#", inner)
        seen_inside.append(len(inner))

    await subscriber.subscribe("outer/go", outer)
    await publisher.publish("outer/go", {}, qos=1)
    await eventually(lambda: seen_inside == [1])
    assert inner.payloads == [{"paused": True}]


@pytest.mark.asyncio
async def test_without_the_sync_topic_subscribe_degrades_with_a_warning(
    mosquitto_factory: Callable[..., MosquittoServer],
    dynsec: Callable[[Sequence[Mapping[str, Any]]], str],
    make: Callable[..., MqttConnector],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If an ACL forbids an explicitly set sync topic (so there is no fallback), retained state still
    arrives, just not before return.
    """
    server = mosquitto_factory(extra_config=dynsec([{"acltype": "subscribePattern", "topic": "$cascade/#"}]))
    caplog.set_level(logging.WARNING, logger="cascade.connectors.mqtt")
    publisher, subscriber = make(server), make(server, sync_topic="$cascade/mine")
    await publisher.connect()
    await publisher.publish("kept/x", {"v": 1}, qos=1, retain=True)
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("kept/#", seen)
    await seen.wait_for(1)
    assert seen.payloads == [{"v": 1}]
    assert "can no longer wait for retained messages" in caplog.text
    assert "'$cascade/mine'" in caplog.text


@pytest.mark.asyncio
async def test_a_refused_dollar_sync_topic_falls_back_to_the_connectors_namespace(
    mosquitto_factory: Callable[..., MosquittoServer],
    dynsec: Callable[[Sequence[Mapping[str, Any]]], str],
    make: Callable[..., MqttConnector],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker refusing `$` topics (an ACL here; ejabberd always): the markers move to
    ``cascade/_sync/{client}`` with one warning, and subscribe() still returns after the retained state.
    """
    server = mosquitto_factory(extra_config=dynsec([{"acltype": "subscribePattern", "topic": "$cascade/#"}]))
    caplog.set_level(logging.WARNING, logger="cascade.connectors.mqtt")
    publisher, subscriber = make(server), make(server)
    await publisher.connect()
    for n in range(20):
        await publisher.publish(f"kept/{n}", {"v": n}, qos=1, retain=True)
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("kept/#", seen)
    assert sorted(p["v"] for p in seen.payloads) == list(range(20))  # before subscribe() returned
    fallback = subscriber.settings.sync_fallback
    assert fallback == f"cascade/_sync/{subscriber.client_id}"
    assert caplog.text.count(f"sync markers go to {fallback!r}") == 1
    assert "can no longer wait" not in caplog.text
    everything = Recorder()
    await subscriber.subscribe("#", everything)  # sync markers (ours, others') are never delivered
    await publisher.publish("kept/last", {"v": 99}, qos=1)
    await eventually(lambda: {"v": 99} in everything.payloads)
    assert not [t for t in everything.topics if t.startswith("cascade/_sync/")]


@pytest.mark.asyncio
async def test_malformed_retained_message_is_counted_once(make: Callable[..., MqttConnector]) -> None:
    """A malformed message matching two subscriptions is decoded (and counted) once."""
    publisher, subscriber = make(), make()
    await publisher.connect()
    await subscriber.connect()
    first, second = Recorder(), Recorder()
    await subscriber.subscribe("bad/#", first)
    await subscriber.subscribe("bad/+", second)
    assert publisher._session is not None
    link = publisher._session.link
    assert link is not None
    link.publish_qos1("bad/x", b"\xff not json", False)
    await publisher.publish("bad/y", {"good": True}, qos=1)
    await second.wait_for(1)
    await first.wait_for(1)
    assert subscriber.stats.malformed == 1
    assert first.payloads == second.payloads == [{"good": True}]


@pytest.mark.asyncio
async def test_subscribe_returns_even_when_the_broker_drops_the_sync_marker(
    mosquitto_factory: Callable[..., MosquittoServer],
    make: Callable[..., MqttConnector],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mosquitto drops QoS 1 messages beyond max_queued_messages, the sync marker included: the
    connector sends another marker and says retained messages may be missing.
    """
    server = mosquitto_factory(max_queued_messages=30)
    # max_inbound=20 is announced as our Receive Maximum: Mosquitto keeps 20 in flight to us,
    # queues 30 more and drops the rest (with the default, 10 000, all 120 would be in flight).
    publisher, subscriber = make(server), make(server, max_inbound=20)
    await publisher.connect()
    for i in range(120):
        await publisher.publish(f"many/{i}", {"i": i}, qos=1, retain=True)
    await subscriber.connect()
    seen = Recorder()
    await subscriber.subscribe("many/#", seen)
    # Mosquitto delivered what fits in flight (20) plus its queue (30) and dropped the rest.
    assert 30 <= len(seen) < 120
    assert "the broker dropped 1 sync marker(s)" in caplog.text
    await publisher.publish("many/live", {"live": True}, qos=1)
    await eventually(lambda: seen.payloads[-1] == {"live": True})


@pytest.mark.asyncio
async def test_concurrent_subscribes_on_one_filter_each_get_the_retained_state_once(
    make: Callable[..., MqttConnector],
) -> None:
    """Each SUBSCRIBE carries its own subscription identifier, so two replays in flight at once are told
    apart: neither subscription sees the other's replay.
    """
    publisher, subscriber = make(), make()
    await publisher.connect()
    for i in range(3):
        await publisher.publish(f"conc/{i}", {"i": i}, qos=1, retain=True)
    await subscriber.connect()
    first, second, third = Recorder("first"), Recorder("second"), Recorder("third")
    await asyncio.gather(
        subscriber.subscribe("conc/#", first),
        subscriber.subscribe("conc/#", second),
        subscriber.subscribe("conc/+", third),
    )
    for recorder in (first, second, third):
        assert sorted(p["i"] for p in recorder.payloads) == [0, 1, 2], recorder
    await publisher.publish("conc/live", {"i": "live"})
    await sentinel(publisher, subscriber)
    for recorder in (first, second, third):
        assert recorder.payloads[-1] == {"i": "live"}
        assert len(recorder) == 4
