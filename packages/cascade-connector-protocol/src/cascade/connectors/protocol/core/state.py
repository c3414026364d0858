"""The connector lifecycle as an explicit state machine (one place checks every transition)."""

from __future__ import annotations

__all__ = ["ConnectorState", "IllegalTransitionError", "StateMachine"]

import enum
from typing import Final

from ..errors import ConnectorError


class ConnectorState(enum.Enum):
    """Where a connector is in its life.

    - ``IDLE``: never connected, or `disconnect()` finished (publish/subscribe raise `NotConnectedError`).
    - ``CONNECTING``: the first connection of a `connect()` call is being made.
    - ``CONNECTED``: a connection to the backend is up.
    - ``RECONNECTING``: the connection was lost; the connector retries with backoff (publishes queue).
    - ``CLOSING``: `disconnect()` is flushing and closing.
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSING = "closing"


_LEGAL: Final[dict[ConnectorState, frozenset[ConnectorState]]] = {
    ConnectorState.IDLE: frozenset({ConnectorState.CONNECTING}),
    # the first connection failed or was cancelled (IDLE), or it is up (CONNECTED)
    ConnectorState.CONNECTING: frozenset({ConnectorState.CONNECTED, ConnectorState.IDLE}),
    ConnectorState.CONNECTED: frozenset({ConnectorState.RECONNECTING, ConnectorState.CLOSING}),
    ConnectorState.RECONNECTING: frozenset({ConnectorState.CONNECTED, ConnectorState.CLOSING}),
    ConnectorState.CLOSING: frozenset({ConnectorState.IDLE}),
}


class IllegalTransitionError(ConnectorError, RuntimeError):
    """An internal error: a connector tried a state change its lifecycle does not allow (a bug)."""

    def __init__(self, current: ConnectorState, wanted: ConnectorState) -> None:
        super().__init__(f"illegal connector state transition {current.name} -> {wanted.name}")
        self.current = current
        self.wanted = wanted


class StateMachine:
    """The current `ConnectorState` (``.state``, read freely) and its only setter, `to`."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = ConnectorState.IDLE

    def to(self, new: ConnectorState) -> None:
        """Move to `new`. Raises `IllegalTransitionError` if the lifecycle does not allow it."""
        if new not in _LEGAL[self.state]:
            raise IllegalTransitionError(self.state, new)
        self.state = new

    @property
    def accepting(self) -> bool:
        """Whether publish/subscribe are allowed (connected, or reconnecting after a loss)."""
        state = self.state
        return state is ConnectorState.CONNECTED or state is ConnectorState.RECONNECTING

    def __repr__(self) -> str:
        return f"StateMachine({self.state.name})"
