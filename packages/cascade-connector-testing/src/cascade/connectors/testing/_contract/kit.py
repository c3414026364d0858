"""What every contract test uses: the `contract_test` decorator, timeouts, and `ContractKit`.

No test sleeps to synchronise: positive assertions wait with `eventually`; negative ones ("nothing
more arrived") use a *sentinel*, a marker the same publisher sends afterwards on the SAME topic,
awaited on subscriptions that receive that topic (docs/contract.md promise 4: one publisher, one
topic, in publish order).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_TIMEOUT",
    "FAST_RECONNECT",
    "OUTAGE_TIMEOUT",
    "OUTAGE_WAIT",
    "SENTINEL_KEY",
    "WAIT",
    "ContractKit",
    "contract_test",
    "stats_of",
    "status_of",
]

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, ParamSpec, cast

import pytest
from cascade.connectors.protocol import Connector, ConnectorStats, StatusMessage

from .._eventually import eventually
from .._harness import (
    Capability,
    ContractHarness,
    SupportsDrop,
    SupportsInjectRaw,
    SupportsOutage,
    SupportsPacketLimit,
)
from .._recorder import Recorder

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
SENTINEL_KEY = "contract-sentinel"
"""The key of a sentinel marker's payload (``{"contract-sentinel": n}``)."""


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
    Capability.INJECT_RAW: (
        SupportsInjectRaw,
        "async def inject_raw(self, topic: str, data: bytes, retain: bool = False) -> None "
        "(publish raw bytes as a foreign client)",
    ),
    Capability.DROP: (
        SupportsDrop,
        "async def drop(self, connector: Connector) -> None "
        "(cut one connection abruptly; the last will fires)",
    ),
    Capability.STOP_BACKEND: (
        SupportsOutage,
        "async def stop_backend(self) -> None and async def start_backend(self) -> None "
        "(restart the backend, keeping retained state)",
    ),
    Capability.PACKET_LIMIT: (
        SupportsPacketLimit,
        "a max_packet_size: int attribute or property "
        "(bytes: the largest packet the backend accepts and announces to connectors)",
    ),
}


def declared_capabilities(harness: object) -> frozenset[Capability]:
    """The harness's ``capabilities`` as `Capability` members (none when the attribute is absent).

    Raises `TypeError` naming the problem for anything but a collection of `Capability` members or
    their string values.
    """
    declared: object = getattr(harness, "capabilities", frozenset())
    if isinstance(declared, str | bytes) or not isinstance(declared, Collection):
        raise TypeError(
            f"{type(harness).__name__}.capabilities must be a frozenset of Capability, not {declared!r}"
        )
    known = {c.value for c in Capability}
    unknown = [value for value in declared if value not in known]
    if unknown:
        raise TypeError(
            f"{type(harness).__name__}.capabilities holds unknown values {unknown!r}; "
            f"use members of Capability ({', '.join(sorted(known))})"
        )
    return frozenset(Capability(value) for value in declared)


def stats_of(connector: Connector) -> ConnectorStats:
    """``connector.stats``, checked to be a `ConnectorStats` (promise 12)."""
    value = getattr(connector, "stats", None)
    assert isinstance(value, ConnectorStats), (
        f"promise 12: {connector!r}.stats must be a ConnectorStats snapshot, not {value!r}"
    )
    return value


def status_of(payload: dict[str, Any]) -> str:
    """The ``status`` of a presence payload (``online`` / ``offline``)."""
    return StatusMessage.from_dict(payload).status


class ContractKit:
    """What each contract test gets (fixture ``contract``): the harness plus bookkeeping.

    Makes connectors through the harness and disconnects them at teardown, names unique topics so
    tests never see each other's retained state on a shared backend, checks declared capabilities,
    and implements the sentinel technique.
    """

    def __init__(self, harness: ContractHarness, scale: float = 1.0) -> None:
        self.harness = harness
        self.scale = scale
        self.capabilities = declared_capabilities(harness)
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

    async def sentinel(
        self,
        publisher: Connector,
        topic: str,
        *witnesses: Recorder,
        timeout: float = WAIT,  # noqa: ASYNC109 (polls; scaled)
    ) -> None:
        """Prove that every witness has been handed what `publisher` sent on `topic` so far.

        Publishes a marker ``{"contract-sentinel": n}`` on `topic` (QoS 1, so the backend has
        everything sent before it) from `publisher`, waits until each witness (a `Recorder`
        subscribed to a filter matching `topic`) received it, then removes the marker from the
        witnesses. By promise 4 (one publisher, one topic: publish order) anything sent on `topic`
        earlier reached each witness before the marker. Only ever used to bound a NEGATIVE
        assertion ("nothing more arrived"): what must arrive is awaited with `eventually` first.
        """
        assert witnesses, "a sentinel needs at least one witness subscription"
        self._markers += 1
        marker = {SENTINEL_KEY: self._markers}
        await publisher.publish(topic, marker, qos=1)

        def arrived() -> bool:
            missing = [w.name for w in witnesses if marker not in w.payloads]
            assert not missing, f"sentinel marker on {topic!r} has not reached {missing}"
            return True

        await self.eventually(arrived, timeout, message="the sentinel never arrived")
        for witness in witnesses:
            witness.messages[:] = [(t, p) for t, p in witness.messages if SENTINEL_KEY not in p]

    # -- capabilities

    def need(self, capability: Capability) -> None:
        """Skip the test unless the harness declares `capability`; fail if it declares it falsely."""
        protocol, method = _CAPABILITY_HELP[capability]
        name = type(self.harness).__name__
        if capability not in self.capabilities:
            pytest.skip(
                f"harness {name} does not declare the capability Capability.{capability.name}; to run "
                f"this test implement {method} on the harness and add Capability.{capability.name} to "
                "its `capabilities` (see docs/testing.md)"
            )
        if not isinstance(self.harness, protocol):
            pytest.fail(
                f"harness {name} declares Capability.{capability.name} but lacks {method}", pytrace=False
            )

    def need_inject_raw(self) -> SupportsInjectRaw:
        """The harness as `SupportsInjectRaw`, or skip (`Capability.INJECT_RAW`)."""
        self.need(Capability.INJECT_RAW)
        return cast(SupportsInjectRaw, self.harness)

    def need_drop(self) -> SupportsDrop:
        """The harness as `SupportsDrop`, or skip (`Capability.DROP`)."""
        self.need(Capability.DROP)
        return cast(SupportsDrop, self.harness)

    def need_outage(self) -> SupportsOutage:
        """The harness as `SupportsOutage`, or skip (`Capability.STOP_BACKEND`)."""
        self.need(Capability.STOP_BACKEND)
        return cast(SupportsOutage, self.harness)

    def need_packet_limit(self) -> int:
        """The harness's ``max_packet_size`` (bytes), or skip (`Capability.PACKET_LIMIT`).

        Fails the test when the declared value is not an int of at least 64.
        """
        self.need(Capability.PACKET_LIMIT)
        limit: object = cast(SupportsPacketLimit, self.harness).max_packet_size
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 64:
            pytest.fail(
                f"harness {type(self.harness).__name__} declares Capability.PACKET_LIMIT but its "
                f"max_packet_size is {limit!r}, not an int of at least 64 (bytes)",
                pytrace=False,
            )
        return limit

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
