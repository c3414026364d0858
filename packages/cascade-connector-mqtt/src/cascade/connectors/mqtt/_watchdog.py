"""The keepalive watchdog of one connection (private path): silence is caught within 1.5x keepalive.

After `PING_AFTER` x keepalive without a complete packet from the broker it sends a PINGREQ; after
`LOST_AFTER` x keepalive the link is declared lost. It checks every `CHECK_EVERY` x keepalive, so a dead
link (or one that only trickles bytes of an unfinished packet) is noticed within 1.375 x keepalive.
"""

from __future__ import annotations

__all__ = ["KeepaliveWatchdog"]

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final

PING_AFTER: Final = 0.5
LOST_AFTER: Final = 1.25
CHECK_EVERY: Final = 0.125


class KeepaliveWatchdog:
    """Runs on the event loop (timer callbacks, no task) until `cancel()` or until it declares a loss.

    `last_packet()` is the monotonic time of the last complete packet; `paused()` says whether we stopped
    reading on purpose (that silence is ours, not the broker's); `ping()` sends a PINGREQ; `lost(silent)`
    is called once with the seconds of silence when the link is to be declared lost.
    """

    __slots__ = (
        "_handle",
        "_keepalive",
        "_last",
        "_loop",
        "_lost",
        "_paused",
        "_ping",
        "_pinged_for",
        "touch",
    )

    def __init__(
        self,
        keepalive: float,
        last_packet: Callable[[], float],
        touch: Callable[[], None],
        paused: Callable[[], bool],
        ping: Callable[[], None],
        lost: Callable[[float], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._keepalive = keepalive
        self._last = last_packet
        self.touch = touch
        self._paused = paused
        self._ping = ping
        self._lost = lost
        self._pinged_for = 0.0
        self.touch()
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(keepalive * CHECK_EVERY, self._check)

    def cancel(self) -> None:
        """Stop watching (idempotent)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        keepalive = self._keepalive
        if self._paused():
            self.touch()  # silence while we do not read is ours
        last = self._last()
        silent = time.monotonic() - last
        if silent >= keepalive * LOST_AFTER:
            self._lost(silent)
            return
        if silent >= keepalive * PING_AFTER and self._pinged_for != last:
            self._pinged_for = last
            with contextlib.suppress(Exception):
                self._ping()
        self._handle = self._loop.call_later(keepalive * CHECK_EVERY, self._check)
