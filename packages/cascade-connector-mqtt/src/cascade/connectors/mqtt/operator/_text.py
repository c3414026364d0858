"""Text for operators: wire text made safe for a terminal, aligned tables, durations."""

from __future__ import annotations

__all__ = [
    "safe_text",
    "safe_json",
    "format_table",
    "format_seconds",
    "time_left",
    "format_age",
    "age_seconds",
    "describe_presence",
    "describe_params",
    "plural",
]

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# What never reaches a terminal as itself: C0/C1 controls (escape sequences, CR, LF...), bidi
# embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069), zero-width characters and marks
# (U+200B..U+200F, U+FEFF, U+2028/U+2029 line separators), lone surrogates (no encoding can write
# them) and Unicode non-characters.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff"
    "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(1, 17))
    + "]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(text: str) -> str:
    r"""`text` safe for any terminal: controls, bidi and zero-width characters, lone surrogates and
    non-characters are shown as escapes (``\x1b``, ``\u202e``, ``\ud800``); everything else as is.
    """
    return _UNSAFE.sub(_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with the characters `safe_text` escapes
    written as JSON escapes (the same data, safe to show and encodable in UTF-8).
    """
    return _UNSAFE.sub(_json_escape, json.dumps(value, ensure_ascii=False, **options))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing spaces; cells `safe_text`."""
    rows = [[safe_text(cell) for cell in row] for row in rows]
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


def format_age(seconds: float) -> str:
    """How long ago, for people: ``3s``, ``12m 03s``, ``2h 05m``, ``3d 04h`` (rounded down; a
    negative age, from a clock ahead of this one, shows as ``0s``).
    """
    total = max(0, math.floor(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def age_seconds(ts: str, now: float) -> float:
    """Seconds from the ISO 8601 timestamp `ts` (with its offset, as the protocol writes it) to
    `now` (Unix seconds); negative when `ts` is later than `now`. Raises `ValueError` for a `ts`
    that is not ISO 8601 or has no offset.
    """
    stamped = datetime.fromisoformat(ts)
    if stamped.tzinfo is None:
        raise ValueError(f"timestamp without a UTC offset: {ts!r}")
    return now - stamped.timestamp()


def describe_presence(status: str, ts: str, now: float) -> str:
    """``online (3s)`` (online for that long) or ``offline (2h 05m ago)``: a presence and the age
    of its announcement `ts` at `now` (Unix seconds). An old ``offline`` is a stale entry.
    """
    try:
        age = age_seconds(ts, now)
    except ValueError:
        return status
    return _with_age(status, age)


def _with_age(status: str, age: float) -> str:
    return f"{status} ({format_age(age)})" if status == "online" else f"{status} ({format_age(age)} ago)"


def describe_params(params: Mapping[str, Any]) -> str:
    """``limit=3``, ``rate=10/s``; ``-`` when there are none."""
    if not params:
        return "-"
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 running task``, ``4 running tasks``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"
