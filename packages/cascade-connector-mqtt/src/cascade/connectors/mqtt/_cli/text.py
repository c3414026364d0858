"""Plain-text formatting shared by the commands: aligned tables and durations."""

from __future__ import annotations

__all__ = ["format_table", "format_seconds", "time_left", "describe_params", "printable"]

import math
from collections.abc import Mapping, Sequence
from typing import Any

_CONTROLS = {c: "?" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}


def printable(text: str) -> str:
    """`text` safe for a terminal: every C0/C1 control character (escape, CR, LF...) becomes ``?``."""
    return text.translate(_CONTROLS)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing spaces; cells `printable`."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    """A duration for people: ``45s``, ``12m 03s``, ``2h 01m`` (rounded up to the second)."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def time_left(expires_at: float | None, now: float) -> str:
    """``never`` for no expiry, else the time until `expires_at` (Unix seconds)."""
    if expires_at is None:
        return "never"
    return format_seconds(expires_at - now)


def describe_params(params: Mapping[str, Any]) -> str:
    """``limit=3``, ``rate=10/s``; ``-`` when there are none."""
    if not params:
        return "-"
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))
