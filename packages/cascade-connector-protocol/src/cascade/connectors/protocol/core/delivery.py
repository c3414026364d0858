"""Delivery of one inbound message to the callbacks it matches, the same in every connector.

- The payload is decoded once per callback, so each gets a fresh dict (promise 2); a payload that is
  not a UTF-8 JSON object is counted once in ``malformed`` and logged with the topic (promise 7).
- Callbacks may be coroutine functions or plain functions: the result is awaited when it is awaitable.
- Each callback runs isolated: an exception, or a cancellation the callback raised itself, is logged
  ONCE (the record below, with the topic) and counted in ``callback_errors``; later callbacks still run.
  A real cancellation of the running task (``task.cancelling()``) propagates.
- ``delivered`` counts callback invocations.

The log record, on the connector's logger: ``subscription callback for '<topic>' raised`` (ERROR, with
the traceback) or ``subscription callback for '<topic>' was cancelled`` (ERROR); its ``extra`` holds
``topic`` and ``topic_filter``.
"""

from __future__ import annotations

__all__ = ["Delivery", "Target", "check_callback", "invoke"]

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from inspect import isawaitable
from types import CoroutineType
from typing import Any, Protocol

from ..codec import decode_payload
from ..connector import Callback, ConnectorStats
from ..errors import PayloadError


class Target(Protocol):
    """What a delivery goes to: a subscription with its callback, its filter and whether it is live."""

    @property
    def active(self) -> bool:
        """False once unsubscribed: it receives nothing more."""
        ...

    @property
    def callback(self) -> Callback:
        """The subscriber's callback."""
        ...

    @property
    def topic_filter(self) -> str:
        """The subscription filter."""
        ...


def check_callback(callback: object) -> None:
    """Raise `TypeError` if `callback` is not callable (called by ``subscribe``)."""
    if not callable(callback):
        raise TypeError(
            "callback must be callable as callback(topic, payload): a function or coroutine function, "
            f"not {type(callback).__name__}"
        )


async def invoke(callback: Callback, topic: str, payload: dict[str, Any]) -> None:
    """Call `callback` and await its result if it is awaitable (the exceptions are the caller's)."""
    result: Awaitable[None] | None = callback(topic, payload)
    if result is not None and (type(result) is CoroutineType or isawaitable(result)):
        await result


class Delivery:
    """Runs callbacks for one connector session and keeps its counters exact.

    `open` is True until the owner closes the session (`close`): from then on `deliver` runs no more
    callbacks, even in the middle of a message's targets.
    """

    __slots__ = ("_log", "open", "stats")

    def __init__(self, stats: ConnectorStats, logger: logging.Logger) -> None:
        self.stats = stats
        self._log = logger
        self.open = True

    def close(self) -> None:
        """No callback runs after this (disconnect)."""
        self.open = False

    def malformed(self, topic: str, exc: PayloadError) -> None:
        """Count and log one malformed inbound message."""
        self.stats.malformed += 1
        self._log.warning("skipped a malformed message on %r: %s", topic, exc.problem)

    async def deliver(
        self,
        topic: str,
        raw: bytes | bytearray,
        targets: Sequence[Target],
        data: dict[str, Any] | None = None,
    ) -> bool:
        """Deliver `raw` on `topic` to every active target, in order.

        `data`: `raw` already decoded by the caller (given to the first target; the others get fresh
        copies). Returns False (after counting and logging it) if `raw` is not a JSON object, else True.
        """
        if data is None:
            try:
                data = decode_payload(raw)
            except PayloadError as exc:
                self.malformed(topic, exc)
                return False
        stats = self.stats
        first = True
        for sub in targets:
            if not sub.active or not self.open:
                continue
            if first:
                first = False
            else:
                data = decode_payload(raw)  # a fresh dict for each callback
            stats.delivered += 1
            try:
                result = sub.callback(topic, data)
                if result is not None and (type(result) is CoroutineType or isawaitable(result)):
                    await result
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                self.failed(sub, topic, cancelled=True)
            except Exception:
                self.failed(sub, topic)
        return True

    def failed(self, sub: Target, topic: str, *, cancelled: bool = False) -> None:
        """Count and log one failed callback invocation (the one agreed record; see the module doc)."""
        self.stats.callback_errors += 1
        extra = {"topic": topic, "topic_filter": sub.topic_filter}
        if cancelled:
            self._log.error("subscription callback for %r was cancelled", topic, extra=extra)
        else:
            self._log.exception("subscription callback for %r raised", topic, extra=extra)
