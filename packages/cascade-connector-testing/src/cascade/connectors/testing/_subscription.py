"""`InMemorySubscription`: the handle `InMemoryConnector.subscribe` returns."""

from __future__ import annotations

__all__ = ["InMemorySubscription"]

from typing import TYPE_CHECKING

from cascade.connectors.protocol import Callback

if TYPE_CHECKING:
    from ._connector import InMemoryConnector


class InMemorySubscription:
    """One subscription: its `topic_filter`, its `callback`, whether `active`; `unsubscribe()` ends it."""

    __slots__ = ("__weakref__", "_connector", "active", "callback", "topic_filter")

    def __init__(self, connector: InMemoryConnector, topic_filter: str, callback: Callback) -> None:
        self._connector = connector
        self.topic_filter = topic_filter
        self.callback = callback
        self.active = True

    def __repr__(self) -> str:
        state = "active" if self.active else "unsubscribed"
        return f"<InMemorySubscription {self.topic_filter!r} {state}>"

    async def unsubscribe(self) -> None:
        """Stop this subscription; when this returns its callback gets nothing more. Idempotent."""
        if self.active:
            self.active = False
            self._connector._inbox.remove(self)
