"""The async-context-manager guard: a connector's ``async with`` is reusable but not re-entrant."""

from __future__ import annotations

__all__ = ["ConnectOnEnter", "ContextGuard", "ReentryError"]

from types import TracebackType
from typing import Self

from ..errors import ConnectorError


class ReentryError(ConnectorError):
    """``async with connector:`` was entered while the connector was already inside one."""


class ContextGuard:
    """Tracks whether the owner is inside its ``async with`` block.

    Call `enter()` in ``__aenter__`` after connecting and `exit()` first in ``__aexit__``. `check()`
    (before connecting) raises `ReentryError` if a block is already open, naming `owner`.
    """

    __slots__ = ("_inside", "_owner")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._inside = False

    @property
    def inside(self) -> bool:
        """Whether an ``async with`` block is open."""
        return self._inside

    def check(self) -> None:
        """Raise `ReentryError` if an ``async with`` block is already open."""
        if self._inside:
            raise ReentryError(f"{self._owner} is not re-entrant: it is already inside 'async with'")

    def enter(self) -> None:
        """Mark the block open (after a successful connect)."""
        self.check()
        self._inside = True

    def exit(self) -> None:
        """Mark the block closed (the connector can be used in ``async with`` again)."""
        self._inside = False


class ConnectOnEnter:
    """Mixin: ``async with connector:`` is `connect()` ... `disconnect()`; reusable, not re-entrant.

    The class using it sets ``self._guard = ContextGuard(name)`` in ``__init__`` and defines
    `connect` and `disconnect`. Entering an open block again raises `ReentryError` before connecting.
    """

    __slots__ = ()
    _guard: ContextGuard

    async def connect(self) -> None:
        """Connect (the connector's own method)."""
        raise NotImplementedError

    async def disconnect(self) -> None:
        """Disconnect (the connector's own method)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """`connect()`; reusable after the block ends, but not re-entrant (`ReentryError`)."""
        self._guard.check()
        await self.connect()
        self._guard.enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._guard.exit()
        await self.disconnect()
