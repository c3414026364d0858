"""A bounded cache of publish topics already validated (validation is the costly part of a publish)."""

from __future__ import annotations

__all__ = ["TopicCache"]

from typing import Final

from ..topics import validate_topic

_LIMIT: Final = 4096


class TopicCache:
    """Topics known valid. Hot path, inlined by connectors::

        if topic not in cache.known:
            cache.add(topic)  # raises TopicError

    `known` is a plain set (membership only); `add` validates and remembers (the cache resets when it
    holds `limit` topics).
    """

    __slots__ = ("known", "limit")

    def __init__(self, limit: int = _LIMIT) -> None:
        self.known: set[str] = set()
        self.limit = limit

    def add(self, topic: str) -> None:
        """Validate `topic` (raises `TopicError`) and remember it."""
        validate_topic(topic)
        known = self.known
        if len(known) >= self.limit:
            known.clear()
        known.add(topic)
