"""`SubscriptionIndex`: a trie over topic levels that finds every subscription matching a topic.

A lookup costs time proportional to the topic's depth (times the wildcards on the way), not to the
number of subscriptions. Both connectors dispatch through it; it agrees with `topic_matches`.
"""

from __future__ import annotations

__all__ = ["SubscriptionIndex"]

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from .topics import validate_filter

V = TypeVar("V", bound=Hashable)


class _Node(Generic[V]):
    __slots__ = ("children", "exact", "multi")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        # Values whose filter ends exactly at this node, and values whose filter is "<this node>/#".
        # dicts (not sets) keep insertion order, so matches come back in subscription order per node.
        self.exact: dict[V, None] = {}
        self.multi: dict[V, None] = {}

    def is_empty(self) -> bool:
        return not (self.children or self.exact or self.multi)


class SubscriptionIndex(Generic[V]):
    """A mapping from MQTT filters to sets of values (typically subscription objects).

    `add` and `remove` validate the filter (`TopicError`); `match` assumes a valid topic name (the
    connector validated it on publish or it came from the broker).
    """

    __slots__ = ("_filters", "_root")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()
        self._filters: dict[V, str] = {}

    def __len__(self) -> int:
        return len(self._filters)

    def __contains__(self, value: object) -> bool:
        return value in self._filters

    def __iter__(self) -> Iterator[V]:
        return iter(list(self._filters))

    def filter_of(self, value: V) -> str:
        """The filter `value` was added under; `KeyError` if it is not in the index."""
        return self._filters[value]

    def add(self, topic_filter: str, value: V) -> None:
        """Index `value` under `topic_filter`. A value lives under one filter; re-adding moves it."""
        validate_filter(topic_filter)
        if value in self._filters:
            self.remove(value)
        node = self._root
        levels = topic_filter.split("/")
        if levels[-1] == "#":
            for level in levels[:-1]:
                node = node.children.setdefault(level, _Node())
            node.multi[value] = None
        else:
            for level in levels:
                node = node.children.setdefault(level, _Node())
            node.exact[value] = None
        self._filters[value] = topic_filter

    def remove(self, value: V) -> bool:
        """Remove `value`; return whether it was present. Prunes emptied branches."""
        topic_filter = self._filters.pop(value, None)
        if topic_filter is None:
            return False
        levels = topic_filter.split("/")
        multi = levels[-1] == "#"
        if multi:
            levels = levels[:-1]
        path: list[tuple[_Node[V], str]] = []
        node = self._root
        for level in levels:
            path.append((node, level))
            node = node.children[level]
        (node.multi if multi else node.exact).pop(value, None)
        for parent, level in reversed(path):
            child = parent.children[level]
            if not child.is_empty():
                break
            del parent.children[level]
        return True

    def match(self, topic: str) -> list[V]:
        """Every value whose filter matches `topic` (MQTT 3.1.1 §4.7), each once."""
        levels = topic.split("/")
        out: dict[V, None] = {}
        n = len(levels)
        # The '$' rule: a leading wildcard never matches a topic starting with '$'.
        dollar = topic.startswith("$")
        stack: list[tuple[_Node[V], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            wild_ok = not (dollar and i == 0)
            if node.multi and wild_ok:
                out.update(node.multi)
            if i == n:
                out.update(node.exact)
                continue
            children = node.children
            if not children:
                continue
            child = children.get(levels[i])
            if child is not None:
                stack.append((child, i + 1))
            if wild_ok:
                plus = children.get("+")
                if plus is not None:
                    stack.append((plus, i + 1))
        return list(out)

    def clear(self) -> None:
        """Remove every value."""
        self._root = _Node()
        self._filters.clear()
