"""Non-overlapping covering sets of topic filters (for brokers without subscription identifiers).

Without MQTT 5 subscription identifiers a message cannot say which subscription it came through, and
some brokers (amqtt, ejabberd) send one copy per matching subscription. So on such connections the
connector subscribes at the broker only to the filters no other local filter covers: every topic any
local filter matches is matched by exactly one broker filter, the broker sends one copy, and the
connector matches it locally against every local subscription (docs/brokers.md). Two local filters
that overlap without one covering the other (``a/+`` and ``+/b``) are replaced at the broker by one
filter covering both (``+/+``): more traffic in that case, never a second copy.
"""

from __future__ import annotations

__all__ = ["covering_set", "covers", "join", "overlaps"]

from collections.abc import Iterable


def covers(wide: str, narrow: str) -> bool:
    """Whether every topic `narrow` matches is also matched by `wide` (both valid filters).

    Follows MQTT's matching: ``#`` also matches its parent level (``a/#`` matches ``a``), and a
    filter starting with a wildcard matches no topic starting with ``$``.
    """
    if wide == narrow:
        return True
    w, n = wide.split("/"), narrow.split("/")
    if w[0] in ("#", "+") and n[0][:1] == "$":
        return False  # narrow may match $ topics, which wide never matches
    for i, level in enumerate(w):
        if level == "#":
            return len(n) >= i  # narrow's topics have at least the levels checked so far
        if i >= len(n):
            return False  # narrow's topics end here; wide needs more levels
        if n[i] == "#":
            return False  # narrow matches topics of any depth, wide does not
        if level != "+" and level != n[i]:
            return False  # a literal level in wide that narrow does not fix to the same text
    return len(w) == len(n)


def overlaps(first: str, second: str) -> bool:
    """Whether some topic matches both filters."""
    a, b = first.split("/"), second.split("/")
    if (a[0] in ("#", "+") and b[0][:1] == "$") or (b[0] in ("#", "+") and a[0][:1] == "$"):
        return False
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and x != "+" and y != "+":
            return False
    return True


def join(first: str, second: str) -> str:
    """The narrowest filter (level by level) covering both filters."""
    a, b = first.split("/"), second.split("/")
    out: list[str] = []
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i] == "#" or b[i] == "#":
            out.append("#")
            break
        out.append(a[i] if a[i] == b[i] else "+")
    return "/".join(out)


def _not_covered(filters: set[str]) -> set[str]:
    ordered = sorted(filters)
    return {
        candidate
        for candidate in ordered
        if not any(
            other != candidate
            and covers(other, candidate)
            and (not covers(candidate, other) or other < candidate)
            for other in ordered
        )
    }


def covering_set(filters: Iterable[str]) -> frozenset[str]:
    """Broker filters for the local `filters`: together they match every topic any of `filters`
    matches, and no topic matches two of them. Each local filter is covered by one of them.
    """
    kept = _not_covered(set(filters))
    while True:
        ordered = sorted(kept)
        pair = next(
            ((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if overlaps(a, b)),
            None,
        )
        if pair is None:
            return frozenset(kept)
        kept = _not_covered((kept - set(pair)) | {join(*pair)})
