"""Validation helpers for connector settings: one wording of every error, NaN refused everywhere.

Each raises `ValueError` naming the setting, what was wrong and what is allowed; each returns the
checked value (seconds as a `float`).
"""

from __future__ import annotations

__all__ = ["check_delay_range", "check_int", "check_seconds"]

import math


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """`value` must be an int (not a bool) in ``[low, high]`` (``high=None``: no upper bound)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, not {value}")
    return value


def check_seconds(name: str, value: object, *, positive: bool = False) -> float:
    """`value` must be a finite number of seconds, at least 0 (``positive=True``: more than 0)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite, not {value}")
    if seconds < 0.0 or (positive and seconds == 0.0):
        raise ValueError(f"{name} must be {'more than' if positive else 'at least'} 0, not {value:g}")
    return seconds


def check_delay_range(min_delay: object, max_delay: object) -> tuple[float, float]:
    """The reconnect delays: ``reconnect_min_delay >= 0``, ``reconnect_max_delay > 0`` and not below it."""
    low = check_seconds("reconnect_min_delay", min_delay)
    high = check_seconds("reconnect_max_delay", max_delay, positive=True)
    if high < low:
        raise ValueError(f"reconnect_max_delay ({high:g}) must be at least reconnect_min_delay ({low:g})")
    return low, high
