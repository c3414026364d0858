"""Reconnect backoff: capped exponential with full jitter."""

from __future__ import annotations

__all__ = ["Backoff"]

import random

from .settings import check_delay_range


class Backoff:
    """Delays between reconnect attempts: attempt ``n`` (from 0) waits a uniformly random time between
    `min_delay` and ``min(max_delay, min_delay * 2**n)`` seconds ("full jitter", capped).

    `next_delay()` returns the delay for the next attempt and counts it; `reset()` after a success.
    Raises `ValueError` for invalid delays (see `check_delay_range`). `rng` is for tests.
    """

    __slots__ = ("_attempt", "_max", "_min", "_rng")

    def __init__(self, min_delay: float, max_delay: float, *, rng: random.Random | None = None) -> None:
        self._min, self._max = check_delay_range(min_delay, max_delay)
        self._attempt = 0
        self._rng = rng if rng is not None else random.Random()

    @property
    def attempts(self) -> int:
        """Delays handed out since the last `reset`."""
        return self._attempt

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (never below `min_delay`, never above `max_delay`)."""
        low = self._min
        cap = min(self._max, low * (2.0 ** min(self._attempt, 32)))
        self._attempt += 1
        return self._rng.uniform(low, max(cap, low))

    def reset(self) -> None:
        """Start again from the shortest delays (after a successful connection)."""
        self._attempt = 0

    def __repr__(self) -> str:
        return f"Backoff({self._min:g}..{self._max:g} s, attempt {self._attempt})"
