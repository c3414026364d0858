"""`ConnectorContract`: the pytest suite that proves a connector keeps the promises of DESIGN §3.2.

Subclass it in a test module and provide one fixture, ``harness`` (a `ContractHarness`)::

    class TestMyConnectorContract(ConnectorContract):
        @pytest_asyncio.fixture
        async def harness(self) -> AsyncIterator[MyHarness]:
            harness = MyHarness()
            yield harness
            await harness.aclose()

Every test uses only the public `Connector` API plus the harness capabilities, so a test means the same
thing for every connector. No test sleeps to synchronise: positive assertions wait with `eventually`;
negative ones ("nothing more arrived") use a *sentinel*: a marker published afterwards by the same
publisher, awaited on another subscription of the same subscriber, proves that everything sent before
it has been dispatched. Every test is bounded by a timeout of its own.
"""

from __future__ import annotations

__all__ = ["ConnectorContract", "ContractKit"]

import asyncio
import copy
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import MappingProxyType
from typing import Any, ParamSpec, cast

import pytest
import pytest_asyncio
from cascade.connectors.protocol import (
    Connector,
    ConnectorStats,
    NotConnectedError,
    PayloadError,
    StatusMessage,
    TopicError,
    status_topic,
)

from ._eventually import eventually
from ._harness import ContractHarness, SupportsDrop, SupportsInjectRaw, SupportsOutage
from ._recorder import Recorder

P = ParamSpec("P")

DEFAULT_TIMEOUT = 10.0
"""Seconds a contract test may take (generous for a real broker on loopback), times the scale."""
OUTAGE_TIMEOUT = 20.0
"""Seconds a test that stops and restarts the backend may take, times the scale."""
WAIT = 5.0
"""Seconds a test waits for one expected event (a delivery, a counter), times the scale."""
OUTAGE_WAIT = 10.0
"""Seconds a test waits for a reconnect-related event, times the scale."""
FAST_RECONNECT: dict[str, Any] = {"reconnect_min_delay": 0.02, "reconnect_max_delay": 0.2}
"""Options the outage and drop tests pass so reconnects happen within a fraction of a second."""


def contract_test(
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Coroutine[Any, Any, None]]]:
    """Mark an async contract test for pytest-asyncio (strict mode) and bound it by `timeout` seconds.

    The limit is multiplied by the test class's ``contract_timeout_scale``. On timeout the test fails
    with an `AssertionError` naming the limit (pytest-timeout is not needed).
    """

    def decorate(test: Callable[P, Awaitable[None]]) -> Callable[P, Coroutine[Any, Any, None]]:
        @functools.wraps(test)
        async def bounded(*args: P.args, **kwargs: P.kwargs) -> None:
            scale = float(getattr(args[0], "contract_timeout_scale", 1.0)) if args else 1.0
            limit = asyncio.timeout(timeout * scale)
            try:
                async with limit:
                    await test(*args, **kwargs)
            except TimeoutError as exc:
                if limit.expired():
                    raise AssertionError(
                        f"{test.__name__} did not finish within {timeout * scale:g} s: a delivery, "
                        "reconnect or acknowledgement never happened (see the test's docstring)"
                    ) from exc
                raise

        return pytest.mark.asyncio(bounded)

    return decorate


_CAPABILITY_HELP = {
    "SupportsInjectRaw": "async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None "
    "(publish raw bytes as a foreign client)",
    "SupportsDrop": "async def drop(self, connector: Connector) -> None "
    "(cut one connection abruptly; the last will fires)",
    "SupportsOutage": "async def stop_backend(self) -> None and async def start_backend(self) -> None "
    "(restart the backend, keeping retained state)",
}


def stats_of(connector: Connector) -> ConnectorStats:
    """``connector.stats``, checked to be a `ConnectorStats` (promise 12)."""
    value = getattr(connector, "stats", None)
    assert isinstance(value, ConnectorStats), (
        f"promise 12: {connector!r}.stats must be a ConnectorStats snapshot, not {value!r}"
    )
    return value


def _status(payload: dict[str, Any]) -> str:
    return StatusMessage.from_dict(payload).status


class ContractKit:
    """What each contract test gets (fixture ``contract``): the harness plus bookkeeping.

    Makes connectors through the harness and disconnects them at teardown, names unique topics so
    tests never see each other's retained state on a shared backend, checks capabilities, and
    implements the sentinel technique.
    """

    def __init__(self, harness: ContractHarness, scale: float = 1.0) -> None:
        self.harness = harness
        self.scale = scale
        self.uid = uuid.uuid4().hex[:12]
        self.prefix = f"contract/{self.uid}"
        self._made: list[Connector] = []
        self._markers = 0
        self._backend_stopped = False

    def topic(self, *levels: str) -> str:
        """A topic (or filter) under this test's unique prefix: ``contract/<uid>/<levels...>``."""
        return "/".join((self.prefix, *levels))

    def source(self, name: str) -> str:
        """A presence source unique to this test."""
        return f"contract-{self.uid}-{name}"

    async def connector(self, **options: Any) -> Connector:
        """A new, not yet connected connector from the harness (disconnected at teardown)."""
        made = await self.harness.new_connector(**options)
        assert isinstance(made, Connector), (
            f"harness.new_connector() returned {made!r}, which does not implement the Connector protocol"
        )
        self._made.append(made)
        return made

    async def connected(self, **options: Any) -> Connector:
        """A new connector, connected."""
        made = await self.connector(**options)
        await made.connect()
        return made

    async def eventually(
        self,
        condition: Callable[[], bool | Awaitable[bool]],
        timeout: float = WAIT,  # noqa: ASYNC109 (polls; scaled)
        *,
        message: str = "",
    ) -> None:
        """`eventually` with `timeout` multiplied by the suite's timeout scale."""
        await eventually(condition, timeout * self.scale, message=message)

    async def wait_for(self, recorder: Recorder, count: int, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """`Recorder.wait_for` with `timeout` multiplied by the suite's timeout scale."""
        await recorder.wait_for(count, timeout * self.scale)

    async def sentinel(self, publisher: Connector, subscriber: Connector, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """Prove `subscriber` has dispatched everything `publisher` sent so far.

        Subscribes `subscriber` to a fresh marker topic, publishes a marker (QoS 1, so nothing sent
        earlier can be behind it) from `publisher`, and waits until the marker's callback ran.
        Messages from one publisher reach one subscriber in order, so any earlier message has been
        handed to its callbacks by then.
        """
        self._markers += 1
        topic = f"contract/{self.uid}-sentinel/{self._markers}"  # outside every filter a test uses
        seen = Recorder(f"sentinel {self._markers}")
        handle = await subscriber.subscribe(topic, seen)
        await publisher.publish(topic, {"sentinel": self._markers}, qos=1)
        await self.eventually(
            lambda: len(seen) > 0,
            timeout,
            message=f"sentinel marker published on {topic!r} never reached the subscriber",
        )
        await handle.unsubscribe()

    # -- capabilities

    def _missing(self, capability: str) -> None:
        pytest.skip(
            f"harness {type(self.harness).__name__} lacks the {capability} capability; implement "
            f"{_CAPABILITY_HELP[capability]} on the harness to run this test (see docs/testing.md)"
        )

    def need_inject_raw(self) -> SupportsInjectRaw:
        """The harness as `SupportsInjectRaw`, or skip the test naming the capability."""
        if not isinstance(self.harness, SupportsInjectRaw):
            self._missing("SupportsInjectRaw")
        return cast(SupportsInjectRaw, self.harness)

    def need_drop(self) -> SupportsDrop:
        """The harness as `SupportsDrop`, or skip the test naming the capability."""
        if not isinstance(self.harness, SupportsDrop):
            self._missing("SupportsDrop")
        return cast(SupportsDrop, self.harness)

    def need_outage(self) -> SupportsOutage:
        """The harness as `SupportsOutage`, or skip the test naming the capability."""
        if not isinstance(self.harness, SupportsOutage):
            self._missing("SupportsOutage")
        return cast(SupportsOutage, self.harness)

    async def stop_backend(self) -> None:
        """Stop the backend (restarted at teardown if the test fails before `start_backend`)."""
        outage = self.need_outage()
        self._backend_stopped = True
        await outage.stop_backend()

    async def start_backend(self) -> None:
        """Start the backend again."""
        await self.need_outage().start_backend()
        self._backend_stopped = False

    async def aclose(self) -> None:
        """Restart the backend if a test left it stopped, then disconnect every connector made."""
        if self._backend_stopped:
            await self.start_backend()
        made, self._made = self._made, []

        async def close(connector: Connector) -> None:
            try:
                async with asyncio.timeout(15.0 * max(1.0, self.scale)):
                    await connector.disconnect()
            except Exception as exc:  # teardown must go on; the failure is reported in the log
                logging.getLogger(__name__).warning("disconnecting %r at teardown failed: %r", connector, exc)

        await asyncio.gather(*(close(connector) for connector in made))


class ConnectorContract:
    """The contract every Cascade connector passes (DESIGN §3.2, readings of §7).

    Subclass it as ``class TestXyzContract(ConnectorContract)`` and provide a ``harness`` fixture
    returning a `ContractHarness` (optionally also `SupportsInjectRaw`, `SupportsDrop`,
    `SupportsOutage`). Do not override the ``test_*`` methods: `test_contract_tests_are_not_overridden`
    fails if you do. Each test's docstring names the promise it checks and what to fix when it fails.

    Set ``contract_timeout_scale`` on the subclass to stretch (slow CI) or shrink every timeout.
    """

    contract_timeout_scale: float = 1.0
    """Multiplies every timeout and wait of the suite."""

    @pytest_asyncio.fixture
    async def contract(self, harness: ContractHarness) -> AsyncIterator[ContractKit]:
        """The per-test kit over the harness; disconnects what the test made."""
        if not isinstance(harness, ContractHarness):
            pytest.fail(
                f"the harness fixture returned {harness!r}, which has no async new_connector(**options)"
            )
        kit = ContractKit(harness, scale=self.contract_timeout_scale)
        try:
            yield kit
        finally:
            await kit.aclose()

    # ------------------------------------------------------------------ guard

    def test_contract_tests_are_not_overridden(self) -> None:
        """Guard: a subclass must not replace contract tests (or the ``contract`` fixture).

        If this fails, delete the overriding methods from your subclass: a connector that cannot keep
        a promise must fix the connector (or the contract, on purpose), not hide the test.
        """
        guarded = [name for name in vars(ConnectorContract) if name.startswith("test") or name == "contract"]
        overridden = [
            f"{owner.__qualname__}.{name}"
            for name in guarded
            for owner in [next(c for c in type(self).__mro__ if name in vars(c))]
            if owner is not ConnectorContract
        ]
        assert not overridden, f"{type(self).__name__} overrides contract tests: {overridden}"

    # ------------------------------------------------------------------ 1. lifecycle

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
        await contract.sentinel(connector, connector)
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

        "Disconnected" means `disconnect()` was called (§7.6), so nothing may be queued for later.
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
        await contract.sentinel(publisher, connector)
        assert new.payloads == [{"n": 1}]
        assert old.payloads == [], "a subscription from before disconnect() came back to life after connect()"

    # ------------------------------------------------------------------ 2. payloads

    @contract_test()
    async def test_invalid_payloads_raise_payload_error_before_sending(self, contract: ContractKit) -> None:
        """Promise 2 (payloads): a payload that is not a JSON object raises `PayloadError` in the caller.

        Non-mappings, NaN/Infinity, sets, bytes, arbitrary objects and non-string keys that JSON
        cannot encode must raise `PayloadError` from `publish` itself (qos 0 too: serialise in the
        caller, not in a background task) and nothing may be sent. If this fails, call the protocol's
        `encode_payload` before queueing.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("payloads")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        bad: list[Any] = [
            [1, 2],
            "text",
            None,
            42,
            {"x": float("nan")},
            {"x": float("inf")},
            {"x": {1, 2}},
            {"x": b"bytes"},
            {"x": object()},
            {("tuple", "key"): 1},
        ]
        for payload in bad:
            for qos in (0, 1):
                with pytest.raises(PayloadError):
                    await publisher.publish(topic, payload, qos=qos)
        await publisher.publish(topic, {"ok": True})
        await contract.wait_for(received, 1)
        await contract.sentinel(publisher, subscriber)
        assert received.payloads == [{"ok": True}], "a rejected payload was sent anyway"

    @contract_test()
    async def test_subscribers_receive_the_json_round_trip(self, contract: ContractKit) -> None:
        """Promise 2 (payloads): subscribers get a fresh plain `dict` equal to the JSON round trip.

        Tuples arrive as lists, unicode and NUL characters survive, big integers stay integers, and a
        read-only mapping is accepted. If this fails, encode with `encode_payload` and decode with
        `decode_payload` from the protocol package.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("roundtrip")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        payload: dict[str, Any] = {
            "text": "héllo ✓ 🚀",
            "nul": "a\u0000b",
            "big": 2**62,
            "negative": -7,
            "float": 0.1,
            "true": True,
            "none": None,
            "list": [1, "a", None, {"k": []}],
            "tuple": (1, 2),
            "nested": {"a": {"b": [{}]}},
            "empty": {},
        }
        await publisher.publish(topic, payload)
        await publisher.publish(topic, MappingProxyType({"read_only": 1}))
        await contract.wait_for(received, 2)
        expected = json.loads(json.dumps(payload))
        assert received.payloads == [expected, {"read_only": 1}]
        assert all(type(p) is dict for p in received.payloads)

    @contract_test()
    async def test_payload_is_captured_when_publish_is_called(self, contract: ContractKit) -> None:
        """Promise 2 and 8: `publish(qos=0)` returns before sending, yet sends the payload as it was.

        Mutating the dict (or a nested list) right after `publish` returns must not change what is
        delivered. If this fails, serialise in `publish` (not later in the sender).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("capture")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        payload: dict[str, Any] = {"n": 1, "items": [1]}
        await publisher.publish(topic, payload)
        payload["n"] = 2
        payload["items"].append(2)
        await contract.wait_for(received, 1)
        assert received.payloads == [{"n": 1, "items": [1]}]

    @contract_test()
    async def test_each_callback_gets_its_own_dict(self, contract: ContractKit) -> None:
        """Promise 2 and §7.2: every callback invocation gets its own fresh dict (nested values included).

        Two overlapping subscriptions on one connector both mutate what they receive; neither may see
        the other's changes. If this fails, decode (or deep-copy) once per callback, not once per
        message shared between callbacks.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("fresh", "x")
        seen: list[dict[str, Any]] = []
        objects: list[dict[str, Any]] = []

        async def mutate(_topic: str, payload: dict[str, Any]) -> None:
            seen.append(copy.deepcopy(payload))
            objects.append(payload)
            payload["mutated"] = True
            payload["nested"]["list"].append("mutated")

        await subscriber.subscribe(contract.topic("fresh", "#"), mutate)
        await subscriber.subscribe(topic, mutate)
        original = {"nested": {"list": [1]}}
        await publisher.publish(topic, original)
        await contract.eventually(lambda: len(seen) >= 2)
        assert seen == [original, original], "one callback saw another callback's changes"
        assert objects[0] is not objects[1]
        assert objects[0]["nested"] is not objects[1]["nested"]

    # ------------------------------------------------------------------ 3. topics

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
        await contract.sentinel(publisher, subscriber)
        for relative, wanted in expected.items():
            got = [p["t"] for p in recorders[relative].payloads]
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
        await contract.sentinel(publisher, subscriber)
        assert exact.payloads == [{"t": "dollar"}]
        assert wildcard.payloads == [{"t": "plain"}], "a leading '+' matched a '$' topic"
        assert wildcard_multi.payloads == [{"t": "plain"}], "a leading '+' matched a '$' topic"

    # ------------------------------------------------------------------ 4. delivery

    @contract_test()
    async def test_messages_arrive_in_publish_order(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): one publisher's messages on one topic arrive in publish order, none lost.

        If this fails, keep one FIFO outbound queue and one dispatcher per connector (no task per
        message, no concurrent callbacks for one subscription).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("order")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        for i in range(300):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(received, 300)
        await contract.sentinel(publisher, subscriber)
        assert [p["i"] for p in received.payloads] == list(range(300))

    @contract_test()
    async def test_a_connector_receives_its_own_messages(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): a connector subscribed to a topic receives what it publishes there itself.

        (MQTT 3.1.1 has no "no local" option; an engine and its observer may share one connector.)
        If this fails, do not filter out your own messages.
        """
        connector = await contract.connected()
        topic = contract.topic("self")
        received = Recorder()
        await connector.subscribe(topic, received)
        await connector.publish(topic, {"n": 1})
        await connector.publish(topic, {"n": 2}, qos=1)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"n": 1}, {"n": 2}]

    @contract_test()
    async def test_overlapping_subscriptions_each_receive_once(self, contract: ContractKit) -> None:
        """Promise 4 (delivery): overlapping subscriptions on one connector each get a message exactly once.

        Four different overlapping filters plus the same filter twice: every one of the six callbacks
        gets each message once, whatever the broker sends for overlapping subscriptions. If this
        fails, dispatch locally through a `SubscriptionIndex` per connector (the broker may send one
        copy per client or one per matching subscription; deduplicate by delivering each inbound
        message once to each matching local subscription).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("overlap", "a", "b")
        filters = [
            contract.topic("overlap", "#"),
            contract.topic("overlap", "a", "+"),
            contract.topic("overlap", "+", "b"),
            topic,
            topic,
            contract.topic("overlap", "a", "b", "#"),
        ]
        recorders = [Recorder(f) for f in filters]
        for topic_filter, recorder in zip(filters, recorders, strict=True):
            await subscriber.subscribe(topic_filter, recorder)
        await publisher.publish(topic, {"n": 1})
        await publisher.publish(topic, {"n": 2})
        await contract.sentinel(publisher, subscriber)
        for recorder in recorders:
            assert recorder.payloads == [{"n": 1}, {"n": 2}], (
                f"subscription {recorder.name!r} got {recorder.payloads}"
            )

    # ------------------------------------------------------------------ 5. retained state

    @contract_test()
    async def test_subscribe_returns_after_retained_messages_were_delivered(
        self, contract: ContractKit
    ) -> None:
        """Promise 5 (retained): `subscribe()` returns only after the matching retained state was delivered.

        Checked right after `subscribe()` returns, with no waiting: an engine must see a pause before
        it runs its first task. Non-retained messages are not replayed. If this fails, make
        `subscribe()` wait for the end of the retained replay (on MQTT: a QoS 1 marker published after
        the SUBACK, §7.11) before returning.
        """
        publisher = await contract.connected()
        for name in ("a", "b", "c"):
            await publisher.publish(contract.topic("state", name), {"state": name}, qos=1, retain=True)
        await publisher.publish(contract.topic("state", "live"), {"state": "not retained"}, qos=1)
        subscriber = await contract.connected()
        received = Recorder()
        await subscriber.subscribe(contract.topic("state", "#"), received)
        assert sorted(received.topics) == [contract.topic("state", n) for n in ("a", "b", "c")], (
            "subscribe() returned before the retained messages were delivered (or delivered extra ones)"
        )
        assert sorted(p["state"] for p in received.payloads) == ["a", "b", "c"]

    @contract_test()
    async def test_retained_publish_replaces_previous_state(self, contract: ContractKit) -> None:
        """Promise 5 (retained): a later retained publish replaces the topic's state.

        If this fails, your backend or connector keeps more than one retained message per topic.
        """
        publisher = await contract.connected()
        topic = contract.topic("replace")
        await publisher.publish(topic, {"v": 1}, qos=1, retain=True)
        await publisher.publish(topic, {"v": 2}, qos=1, retain=True)
        subscriber = await contract.connected()
        received = Recorder()
        await subscriber.subscribe(topic, received)
        assert received.payloads == [{"v": 2}]

    @contract_test()
    async def test_retained_empty_payload_clears_and_is_delivered_as_empty(
        self, contract: ContractKit
    ) -> None:
        """Promise 5 and §7.1: a retained ``{}`` clears the state and reaches current subscribers as ``{}``.

        This is how "resume" works. Publishing ``{}`` sends zero bytes; zero bytes decode to ``{}``
        and are never counted as malformed. If this fails, encode ``{}`` as ``b""`` and decode
        ``b""`` as ``{}`` (the protocol's codec does both).
        """
        publisher = await contract.connected()
        live = await contract.connected()
        topic = contract.topic("resume")
        received = Recorder("live subscriber")
        await live.subscribe(topic, received)
        await publisher.publish(topic, {"pause": True}, qos=1, retain=True)
        await publisher.publish(topic, {}, qos=1, retain=True)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"pause": True}, {}]
        assert stats_of(live).malformed == 0, "an empty payload was counted as malformed"
        late = await contract.connected()
        replay = Recorder("late subscriber")
        await late.subscribe(topic, replay)
        assert replay.payloads == [], "the retained state was not cleared by a retained {}"

    @contract_test()
    async def test_retained_replay_goes_only_to_the_new_subscription(self, contract: ContractKit) -> None:
        """§7.2 (replay is per subscription): a new subscription gets the retained state; others do not.

        A connector already subscribed to ``x/#`` then subscribes ``x/+`` and ``x/#`` again: each new
        subscription receives the retained messages, the first one does not receive them a second
        time. If this fails, route the broker's retained replay for a SUBSCRIBE to that subscription's
        callback only (live messages still go to every matching subscription).
        """
        publisher = await contract.connected()
        for name in ("a", "b"):
            await publisher.publish(contract.topic("replay", name), {"name": name}, qos=1, retain=True)
        subscriber = await contract.connected()
        first = Recorder("first x/#")
        await subscriber.subscribe(contract.topic("replay", "#"), first)
        assert len(first) == 2
        second = Recorder("then x/+")
        await subscriber.subscribe(contract.topic("replay", "+"), second)
        assert len(second) == 2, (
            "the new subscription did not get the retained state before subscribe() returned"
        )
        third = Recorder("then x/# again")
        await subscriber.subscribe(contract.topic("replay", "#"), third)
        assert len(third) == 2, (
            "the new subscription did not get the retained state before subscribe() returned"
        )
        await contract.sentinel(publisher, subscriber)
        assert len(first) == 2, (
            f"an existing subscription received the retained replay again: {first.messages}"
        )
        assert len(second) == 2, (
            f"an existing subscription received the retained replay again: {second.messages}"
        )
        await publisher.publish(contract.topic("replay", "a"), {"name": "live"})
        await contract.eventually(lambda: len(first) == 3 and len(second) == 3 and len(third) == 3)

    @contract_test()
    async def test_injected_empty_retained_payload_clears(self, contract: ContractKit) -> None:
        """§7.1: zero bytes retained by a foreign client clear the state and are delivered as ``{}``.

        Needs `SupportsInjectRaw`. If this fails, treat a zero-byte payload as ``{}`` (not malformed)
        and let your backend clear retained state on it.
        """
        inject = contract.need_inject_raw()
        publisher = await contract.connected()
        topic = contract.topic("inject-clear")
        live = await contract.connected()
        received = Recorder()
        await publisher.publish(topic, {"pause": True}, qos=1, retain=True)
        await live.subscribe(topic, received)
        assert received.payloads == [{"pause": True}]
        await inject.inject_raw(topic, b"", retain=True)
        await contract.wait_for(received, 2)
        assert received.payloads == [{"pause": True}, {}]
        assert stats_of(live).malformed == 0
        late = await contract.connected()
        replay = Recorder()
        await late.subscribe(topic, replay)
        assert replay.payloads == []

    # ------------------------------------------------------------------ 6. unsubscribe

    @contract_test()
    async def test_unsubscribe_stops_only_that_subscription(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): after `unsubscribe()` that callback gets nothing; others are unaffected.

        Two subscriptions on the same filter and one on an overlapping filter share a connector;
        removing one must not remove the broker-side subscription the others still need. If this
        fails, reference-count broker subscriptions per filter and match locally.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        other = await contract.connected()
        topic = contract.topic("unsub", "x")
        gone = Recorder("unsubscribed")
        same = Recorder("same filter")
        wider = Recorder("wider filter")
        elsewhere = Recorder("other connector")
        handle = await subscriber.subscribe(topic, gone)
        await subscriber.subscribe(topic, same)
        wider_handle = await subscriber.subscribe(contract.topic("unsub", "#"), wider)
        await other.subscribe(topic, elsewhere)
        await publisher.publish(topic, {"n": 1})
        await contract.eventually(lambda: len(gone) == len(same) == len(wider) == len(elsewhere) == 1)
        await handle.unsubscribe()
        await publisher.publish(topic, {"n": 2})
        await contract.eventually(lambda: len(same) == len(wider) == len(elsewhere) == 2)
        await wider_handle.unsubscribe()
        await publisher.publish(topic, {"n": 3})
        await contract.eventually(lambda: len(same) == len(elsewhere) == 3)
        await contract.sentinel(publisher, subscriber)
        assert gone.payloads == [{"n": 1}], "a callback ran after its unsubscribe() returned"
        assert wider.payloads == [{"n": 1}, {"n": 2}], "a callback ran after its unsubscribe() returned"
        assert same.payloads == [{"n": 1}, {"n": 2}, {"n": 3}]

    @contract_test()
    async def test_unsubscribe_twice_is_harmless(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): calling `unsubscribe()` again does nothing (and does not hurt others).

        If this fails, make `unsubscribe()` idempotent (and never decrement a shared reference twice).
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("twice")
        kept = Recorder("kept")
        handle = await subscriber.subscribe(topic, Recorder("removed"))
        await subscriber.subscribe(topic, kept)
        await handle.unsubscribe()
        await handle.unsubscribe()
        await publisher.publish(topic, {"n": 1})
        await contract.wait_for(kept, 1)
        assert kept.payloads == [{"n": 1}]

    @contract_test()
    async def test_unsubscribe_from_inside_the_callback(self, contract: ContractKit) -> None:
        """Promise 6 (unsubscribe): a callback may unsubscribe itself; it then gets nothing more.

        If this fails, `unsubscribe()` probably waits for the dispatcher that is running the callback
        (deadlock, the test times out), or messages already queued still reach the callback.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("self-unsub")
        calls: list[dict[str, Any]] = []
        handles: list[Any] = []

        async def once(_topic: str, payload: dict[str, Any]) -> None:
            calls.append(payload)
            await handles[0].unsubscribe()

        handles.append(await subscriber.subscribe(topic, once))
        for i in range(5):
            await publisher.publish(topic, {"i": i})
        await contract.sentinel(publisher, subscriber)
        assert calls == [{"i": 0}], f"the callback ran after it unsubscribed itself: {calls}"

    # ------------------------------------------------------------------ 7. isolation

    @contract_test()
    async def test_a_raising_callback_does_not_stop_deliveries(
        self, contract: ContractKit, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Promise 7 (isolation): a raising callback is logged with the topic and counted; deliveries go on.

        Both the failing callback and a healthy one on the same connector keep receiving every
        message; `stats.callback_errors` counts each failure. If this fails, wrap each callback call in
        ``try/except Exception`` in the dispatcher, log with the topic, count, continue.
        """
        caplog.set_level(logging.WARNING)
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("raising")
        failures: list[int] = []
        healthy = Recorder("healthy")

        async def broken(_topic: str, payload: dict[str, Any]) -> None:
            failures.append(payload["i"])
            raise RuntimeError("callback bug")

        await subscriber.subscribe(topic, broken)
        await subscriber.subscribe(topic, healthy)
        for i in range(3):
            await publisher.publish(topic, {"i": i})
        await contract.wait_for(healthy, 3)
        await contract.eventually(lambda: len(failures) == 3)
        assert failures == [0, 1, 2]
        assert healthy.payloads == [{"i": 0}, {"i": 1}, {"i": 2}]
        await contract.eventually(lambda: stats_of(subscriber).callback_errors == 3)
        assert any(
            topic in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
        ), "the callback error was not logged with the topic"

    @contract_test()
    async def test_malformed_inbound_messages_are_skipped_logged_and_counted(
        self, contract: ContractKit, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Promise 7 (isolation): inbound bytes that are not a UTF-8 JSON object are skipped, logged, counted.

        A foreign client sends invalid UTF-8, invalid JSON, NaN and JSON that is not an object; the
        callback never sees them, `stats.malformed` counts each, the log names the topic, and later
        valid messages (and an empty payload, which is ``{}``) still arrive. Needs `SupportsInjectRaw`.
        If this fails, decode with `decode_payload` inside ``try/except PayloadError``.
        """
        caplog.set_level(logging.WARNING)
        inject = contract.need_inject_raw()
        subscriber = await contract.connected()
        topic = contract.topic("malformed")
        received = Recorder()
        await subscriber.subscribe(topic, received)
        bad = [b"\xff\xfe\xfd", b"{not json", b"[1, 2]", b'"text"', b"42", b"null", b'{"x": NaN}']
        for data in bad:
            await inject.inject_raw(topic, data)
        await inject.inject_raw(topic, b'{"ok": true}')
        await inject.inject_raw(topic, b"")
        await contract.wait_for(received, 2)
        assert received.payloads == [{"ok": True}, {}]
        await contract.eventually(lambda: stats_of(subscriber).malformed == len(bad))
        assert any(
            topic in record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
        ), "the malformed message was not logged with the topic"

    # ------------------------------------------------------------------ 8. QoS

    @contract_test()
    async def test_qos0_publish_does_not_wait_for_delivery(self, contract: ContractKit) -> None:
        """Promise 8 (QoS): `publish(qos=0)` returns once queued, even while every subscriber is stuck.

        A subscriber's callback blocks on the first message; the publisher still completes 200
        publishes, and everything arrives once the callback is released. If this fails (times out),
        `publish` waits for something downstream: make qos 0 enqueue and return.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("qos0")
        gate = asyncio.Event()
        received: list[int] = []

        async def stuck(_topic: str, payload: dict[str, Any]) -> None:
            received.append(payload["i"])
            await gate.wait()

        await subscriber.subscribe(topic, stuck)
        for i in range(200):
            await publisher.publish(topic, {"i": i})
        await contract.eventually(lambda: len(received) >= 1)
        gate.set()
        await contract.eventually(lambda: len(received) == 200)
        assert received == list(range(200))

    @contract_test()
    async def test_qos1_publish_returns_after_the_backend_accepted_it(self, contract: ContractKit) -> None:
        """Promise 8 (QoS): when `publish(qos=1)` returns, the backend has the message.

        Right after it returns, a brand-new subscription sees the retained message. Invalid qos
        values raise `ValueError`. If this fails, await the PUBACK (or your backend's acknowledgement)
        before returning from a qos 1 publish.
        """
        publisher = await contract.connected()
        subscriber = await contract.connected()
        topic = contract.topic("qos1")
        await publisher.publish(topic, {"acked": True}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(topic, received)
        assert received.payloads == [{"acked": True}]
        for qos in (2, -1):
            with pytest.raises(ValueError):
                await publisher.publish(topic, {"n": 1}, qos=qos)

    # ------------------------------------------------------------------ 9. graceful stop

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
        await contract.sentinel(publisher, witness)
        assert late == [], f"callbacks ran after disconnect() returned, for messages {late[:10]}..."

    # ------------------------------------------------------------------ 10. presence

    @contract_test()
    async def test_connect_publishes_retained_online_presence(self, contract: ContractKit) -> None:
        """Promise 10 (presence) and §7.3: connecting publishes retained ``online`` on `status_topic(source)`.

        The message is a `StatusMessage` (``{"status", "source", "ts"}``). If this fails, publish
        ``StatusMessage("online", source).to_dict()`` retained right after each successful connection.
        """
        source = contract.source("online")
        await contract.connected(source=source)
        observer = await contract.connected()
        received = Recorder()
        await observer.subscribe(status_topic(source), received)
        await contract.eventually(
            lambda: bool(received.payloads) and _status(received.payloads[-1]) == "online"
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
        await contract.eventually(lambda: [_status(p) for p in received.payloads] == ["online"])
        await worker.disconnect()
        await contract.eventually(lambda: [_status(p) for p in received.payloads] == ["online", "offline"])
        late = await contract.connected()
        retained = Recorder()
        await late.subscribe(status_topic(source), retained)
        assert [_status(p) for p in retained.payloads] == ["offline"]

    @contract_test(OUTAGE_TIMEOUT)
    async def test_abrupt_loss_publishes_the_last_will_then_online_again(self, contract: ContractKit) -> None:
        """Promise 10 and 11, §7.3: an abrupt loss fires the ``offline`` will; the reconnect says ``online``.

        Needs `SupportsDrop`. The observer sees ``online``, ``offline`` (the will), ``online``; the
        retained state ends ``online``; `stats.reconnects` is 1. If this fails, set a retained
        ``offline`` will at connect time and publish ``online`` after every reconnect.
        """
        drop = contract.need_drop()
        source = contract.source("will")
        observer = await contract.connected()
        received = Recorder()
        await observer.subscribe(status_topic(source), received)
        worker = await contract.connected(source=source, **FAST_RECONNECT)
        await contract.eventually(lambda: [_status(p) for p in received.payloads] == ["online"])
        await drop.drop(worker)
        await contract.eventually(
            lambda: [_status(p) for p in received.payloads] == ["online", "offline", "online"],
            OUTAGE_WAIT,
        )
        await contract.eventually(lambda: stats_of(worker).reconnects == 1)
        late = await contract.connected()
        retained = Recorder()
        await late.subscribe(status_topic(source), retained)
        assert [_status(p) for p in retained.payloads] == ["online"]

    @contract_test(OUTAGE_TIMEOUT)
    async def test_presence_is_online_again_after_an_outage(self, contract: ContractKit) -> None:
        """§7.3 (presence on every connection): after the backend restarts, the retained status is ``online``.

        Needs `SupportsOutage`. If this fails, publish retained ``online`` after every automatic
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
            return bool(seen.payloads) and _status(seen.payloads[-1]) == "online"

        await contract.eventually(retained_online, OUTAGE_WAIT)

    # ------------------------------------------------------------------ 11. resilience

    @contract_test(OUTAGE_TIMEOUT)
    async def test_reconnect_resubscribes_and_redelivers_retained_state(self, contract: ContractKit) -> None:
        """Promise 11 (resilience): after an outage: reconnect, re-subscribe, retained state delivered again.

        Needs `SupportsOutage`; retained state survives the backend restart. The subscription
        receives its retained message a second time after the reconnect, then live messages again;
        `stats.reconnects` is 1 on both connectors. If this fails, keep the live subscriptions and
        re-subscribe all of them after every reconnect.
        """
        contract.need_outage()
        publisher = await contract.connected(**FAST_RECONNECT)
        subscriber = await contract.connected(**FAST_RECONNECT)
        state = contract.topic("resub", "state")
        await publisher.publish(state, {"state": "paused"}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(contract.topic("resub", "#"), received)
        assert received.payloads == [{"state": "paused"}]
        await contract.stop_backend()
        await contract.start_backend()
        await contract.eventually(lambda: received.payloads == [{"state": "paused"}] * 2, OUTAGE_WAIT)
        await contract.eventually(lambda: stats_of(publisher).reconnects == 1, OUTAGE_WAIT)
        await publisher.publish(contract.topic("resub", "live"), {"live": True}, qos=1)
        await contract.eventually(lambda: received.payloads[-1:] == [{"live": True}])
        assert stats_of(subscriber).reconnects == 1

    @contract_test(OUTAGE_TIMEOUT)
    async def test_publishes_during_an_outage_are_sent_after_reconnect_in_order(
        self, contract: ContractKit
    ) -> None:
        """Promise 11 and 8: publishing during an outage never raises; queued messages go out in order.

        Needs `SupportsOutage`. The connector subscribes to its own topic, the backend stops, 50 qos 0
        publishes return at once; after the restart the connector re-subscribes first, then sends
        the 50 in order. If this fails, queue while disconnected (do not raise), re-subscribe before
        flushing, and flush in FIFO order.
        """
        contract.need_outage()
        connector = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("queued")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        for i in range(50):
            await connector.publish(topic, {"i": i})
        await contract.start_backend()
        await contract.wait_for(received, 50, OUTAGE_WAIT)
        await contract.sentinel(connector, connector)
        assert [p["i"] for p in received.payloads] == list(range(50))
        assert stats_of(connector).dropped == 0

    @contract_test(OUTAGE_TIMEOUT)
    async def test_subscribe_during_an_outage_registers_and_returns(self, contract: ContractKit) -> None:
        """§7.6: during an outage `subscribe()` registers and returns; retained state follows the reconnect.

        Needs `SupportsOutage`. If this fails (times out or raises), do not wait for the broker in
        `subscribe()` while the connection is down: remember the subscription, send it on reconnect.
        """
        contract.need_outage()
        publisher = await contract.connected(**FAST_RECONNECT)
        subscriber = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("outage-sub")
        await publisher.publish(topic, {"state": "retained"}, qos=1, retain=True)
        await contract.stop_backend()
        received = Recorder()
        await subscriber.subscribe(topic, received)
        await contract.start_backend()
        await contract.eventually(lambda: received.payloads[:1] == [{"state": "retained"}], OUTAGE_WAIT)
        await contract.eventually(lambda: stats_of(publisher).reconnects == 1, OUTAGE_WAIT)
        await publisher.publish(topic, {"state": "live"})
        await contract.eventually(lambda: received.payloads[-1:] == [{"state": "live"}])

    @contract_test(OUTAGE_TIMEOUT)
    async def test_qos1_publish_waits_across_an_outage_and_is_never_dropped(
        self, contract: ContractKit
    ) -> None:
        """§7.7 (QoS 1 is never dropped): a qos 1 publish during an outage waits and is delivered after it.

        Needs `SupportsOutage`. With ``max_buffered=10`` a qos 1 publish is followed by 30 qos 0 ones:
        the overflow drops only the oldest qos 0 messages, the qos 1 publish completes after the
        restart and its message is delivered, with the newest qos 0 messages, in order.
        If this fails, never evict QoS 1 entries and resolve their waiters only on acknowledgement.
        """
        contract.need_outage()
        connector = await contract.connected(max_buffered=10, **FAST_RECONNECT)
        topic = contract.topic("qos1-outage")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        control = asyncio.ensure_future(connector.publish(topic, {"command": "pause"}, qos=1))
        for i in range(30):
            await connector.publish(topic, {"i": i})
        for _ in range(20):
            await asyncio.sleep(0)
        assert not control.done(), "a qos 1 publish returned while the backend was down"
        await contract.start_backend()
        await control
        await contract.eventually(lambda: {"i": 29} in received.payloads, OUTAGE_WAIT)
        await contract.sentinel(connector, connector)
        commands = [p for p in received.payloads if "command" in p]
        assert commands == [{"command": "pause"}], f"the qos 1 message was lost: {received.payloads}"
        numbers = [p["i"] for p in received.payloads if "i" in p]
        assert numbers == list(range(30 - len(numbers), 30)), (
            f"not the newest qos 0 messages in order: {numbers}"
        )
        assert stats_of(connector).dropped == 30 - len(numbers)

    @contract_test(OUTAGE_TIMEOUT)
    async def test_buffer_overflow_drops_exactly_the_oldest(self, contract: ContractKit) -> None:
        """§7.8 (counters): 150 publishes, ``max_buffered=100``, an outage: exactly the 50 oldest dropped.

        Needs `SupportsOutage`. `stats.published` is 150, `stats.dropped` is 50, and messages 50..149
        arrive after the restart, in order. If this fails, bound every message accepted and not yet
        handed to the broker by ``max_buffered`` and evict the oldest (counting each).
        """
        contract.need_outage()
        connector = await contract.connected(max_buffered=100, **FAST_RECONNECT)
        topic = contract.topic("overflow")
        received = Recorder()
        await connector.subscribe(topic, received)
        await contract.stop_backend()
        for i in range(150):
            await connector.publish(topic, {"i": i})
        await contract.start_backend()
        await contract.eventually(lambda: {"i": 149} in received.payloads, OUTAGE_WAIT)
        stats = stats_of(connector)
        assert stats.published == 150
        assert stats.dropped == 50
        await contract.sentinel(connector, connector)
        assert [p["i"] for p in received.payloads] == list(range(50, 150))

    @contract_test(OUTAGE_TIMEOUT)
    async def test_abrupt_loss_reconnects_and_resubscribes(self, contract: ContractKit) -> None:
        """Promise 11 (resilience): after an abrupt loss the connector reconnects and re-subscribes by itself.

        Needs `SupportsDrop`. The dropped subscriber gets its retained message again, then live
        messages; `stats.reconnects` is 1 and the publisher is unaffected. If this fails, detect the
        lost connection (no DISCONNECT from you) and run the same reconnect path as for an outage.
        """
        drop = contract.need_drop()
        publisher = await contract.connected()
        subscriber = await contract.connected(**FAST_RECONNECT)
        topic = contract.topic("drop")
        await publisher.publish(topic, {"state": "retained"}, qos=1, retain=True)
        received = Recorder()
        await subscriber.subscribe(topic, received)
        await drop.drop(subscriber)
        await contract.eventually(lambda: received.payloads == [{"state": "retained"}] * 2, OUTAGE_WAIT)
        await publisher.publish(topic, {"state": "live"})
        await contract.eventually(lambda: received.payloads[-1:] == [{"state": "live"}])
        assert stats_of(subscriber).reconnects == 1
        assert stats_of(publisher).reconnects == 0

    # ------------------------------------------------------------------ 12. observability

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
