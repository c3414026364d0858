"""The `Connector` protocol: the one interface a Cascade engine uses to talk to the outside world."""

from __future__ import annotations

__all__ = ["Callback", "SubscriptionHandle", "Connector", "ConnectorStats"]

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

Callback = Callable[[str, dict[str, Any]], Awaitable[None] | None]
"""A callback receiving ``(topic, payload)``; `payload` is a fresh dict for each call.

A coroutine function or a plain function: connectors call it and await the result when it is
awaitable (so ``functools.partial`` of a coroutine function and objects with an async ``__call__``
work too). ``subscribe`` raises `TypeError` for something that is not callable.
"""


class SubscriptionHandle(Protocol):
    """What `Connector.subscribe` returns."""

    async def unsubscribe(self) -> None:
        """Stop this subscription. When it returns, its callback gets nothing more. Idempotent."""
        ...


@runtime_checkable
class Connector(Protocol):
    """A connection to a message backend (MQTT in production, in-memory in tests).

    Every connector keeps these promises (the contract suite in ``cascade-connector-testing``
    checks each of them; docs/contract.md numbers them):

    1. **Lifecycle.** `connect` and `disconnect` are idempotent; `disconnect` before `connect` is a
       no-op; connect → disconnect → connect works. `publish`/`subscribe` on a connector that was never
       connected, or was disconnected, raise `NotConnectedError`.
    2. **Payloads are JSON objects.** A payload that is not a mapping JSON can encode (NaN and
       infinities included) raises `PayloadError` in the caller before anything is sent. Subscribers
       get a fresh dict equal to the JSON round trip of what was published.
    3. **Topics.** Invalid topic names and filters raise `TopicError` before anything is sent.
       Matching follows MQTT 3.1.1 §4.7 (see `cascade.connectors.protocol.topics`).
    4. **Delivery.** After `subscribe` returns, the callback receives every later matching message, in
       publish order for one publisher and topic. Overlapping subscriptions on one connector each get
       a message exactly once.
    5. **Retained state.** ``retain=True`` stores the topic's current state; a later retained publish
       replaces it; a retained ``{}`` clears it (and is delivered as ``{}`` to current subscribers).
       `subscribe` returns only after every retained message matching the filter has been delivered.
    6. **Unsubscribe.** After `SubscriptionHandle.unsubscribe` returns, that callback gets nothing
       more; calling it twice is harmless; other subscriptions are unaffected.
    7. **Isolation.** A callback that raises does not stop later deliveries (the error is logged with
       the topic and counted); an inbound message that is not a UTF-8 JSON object is skipped, logged
       and counted.
    8. **QoS.** ``qos=0`` returns as soon as the message is queued and never raises for transport
       failures; ``qos=1`` returns once the backend acknowledged the message (across an outage if need
       be; bound it with `asyncio.timeout`).
    9. **Graceful stop.** `disconnect` first sends what is queued (bounded by a timeout); after it
       returns no callback runs.
    10. **Presence.** Each successful connection publishes retained ``online`` on
        ``status_topic(source)``; graceful `disconnect` publishes retained ``offline``; an abrupt loss
        makes the backend publish the ``offline`` last will.
    11. **Resilience.** After a lost connection the connector reconnects by itself (capped exponential
        backoff with jitter), re-subscribes (retained state is delivered again), and sends the
        publishes queued meanwhile in order, from a bounded buffer that drops the oldest QoS 0
        message when full. `publish` never raises because of an outage.
    12. **Observability.** ``connector.stats`` is a `ConnectorStats` snapshot; after `disconnect`,
        ``published`` == handed to the backend + ``dropped``.
    13. **Bounded inbound.** ``max_inbound`` bounds messages received and not yet handed to
        callbacks: beyond it the oldest QoS 0 one is dropped (``dropped_inbound``); QoS 1 waits at
        the backend and is acknowledged only after its callbacks ran.
    14. **No poison.** What the backend would refuse is refused in the caller when it can be known;
        what turns out refused later is dropped, counted and logged, never re-sent forever.
    """

    @property
    def stats(self) -> ConnectorStats:
        """A snapshot of the connector's counters (promise 12)."""
        ...

    async def connect(self) -> None:
        """Connect (and announce presence). Idempotent."""
        ...

    async def disconnect(self) -> None:
        """Flush what is queued, announce ``offline`` and disconnect. Idempotent."""
        ...

    async def publish(
        self, topic: str, payload: Mapping[str, Any], qos: int = 0, retain: bool = False
    ) -> None:
        """Publish a JSON object.

        Raises `NotConnectedError`, `TopicError`, `PayloadError`, or `ValueError` for a qos not 0/1.
        """
        ...

    async def subscribe(self, topic: str, callback: Callback) -> SubscriptionHandle:
        """Subscribe `callback` to a filter; returns after the retained state has been delivered."""
        ...


@dataclass(slots=True)
class ConnectorStats:
    """Counters every connector reports (``connector.stats`` returns a snapshot copy).

    - ``published``: messages accepted by `publish`.
    - ``delivered``: callback invocations.
    - ``dropped``: accepted messages never handed to the backend (buffer overflow, too large for
      the broker, quarantined, or left over at disconnect). A message already handed over is never
      counted here: after `disconnect`, ``published == handed over + dropped``.
    - ``dropped_inbound``: received messages discarded before their callbacks ran (``max_inbound``
      exceeded by QoS 0 messages, or left over at disconnect).
    - ``malformed``: inbound messages skipped because they were not UTF-8 JSON objects (or had a
      topic the grammar refuses).
    - ``callback_errors``: callback invocations that raised.
    - ``reconnects``: successful reconnections after a lost connection.
    - ``unconfirmed``: messages handed to the backend whose arrival was not confirmed when a
      connection ended (`disconnect` timing out, or a loss); they may or may not have arrived.
    - ``quarantined``: messages dropped (also counted in ``dropped``) because the broker closed the
      connection twice in a row while they were in flight.
    """

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    dropped_inbound: int = 0
    malformed: int = 0
    callback_errors: int = 0
    reconnects: int = 0
    unconfirmed: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)
