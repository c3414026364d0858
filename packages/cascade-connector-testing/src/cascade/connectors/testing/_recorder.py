"""`Recorder`: an async subscription callback that remembers what it received."""

from __future__ import annotations

__all__ = ["Recorder"]

from typing import Any

from ._eventually import eventually


class Recorder:
    """An async callback ``(topic, payload)`` that appends every call to `messages`.

    Use it as the callback of `Connector.subscribe`, then assert on `messages`, `payloads` or
    `topics`; `wait_for` waits (without sleeping a fixed time) until enough messages arrived.
    """

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __repr__(self) -> str:
        return f"Recorder({self.name!r}, {len(self.messages)} messages)"

    async def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        self.messages.append((topic, payload))

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The payloads received, in order."""
        return [payload for _, payload in self.messages]

    @property
    def topics(self) -> list[str]:
        """The topics received, in order."""
        return [topic for topic, _ in self.messages]

    def clear(self) -> None:
        """Forget what was received so far."""
        self.messages.clear()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (polls via eventually)
        """Wait until at least `count` messages arrived; `AssertionError` after `timeout` seconds."""

        def enough() -> bool:
            got = len(self.messages)
            assert got >= count, f"{self.name} received {got} of {count} messages: {self.messages[-5:]!r}"
            return True

        await eventually(enough, timeout)
