"""The watcher's own connection: connected or reconnecting, since when, and what it may have missed.

`LinkMonitor` polls what every connector exposes (``stats.reconnects``; ``connected`` where the
connector has it, as both connectors of this repository do) and reports each change once.
"""

from __future__ import annotations

__all__ = ["LinkState", "LinkView", "LinkChange", "LinkMonitor", "ReportsConnection"]

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from cascade.connectors.protocol import Connector


class LinkState(Enum):
    """Whether the watcher's connection is up."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"


@runtime_checkable
class ReportsConnection(Protocol):
    """A connector that says whether its connection is up right now (False during an outage)."""

    @property
    def connected(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LinkView:
    """The connection as last polled. Times are Unix seconds.

    - `since`: when `state` began (the start of the watch, the loss, or the reconnection).
    - `reconnects`: reconnections since the watch began.
    - `outage_seconds`: time spent reconnecting so far (telemetry sent then was missed: it is not
      retained; presence and constraints are retained and arrive again after each reconnection).
    - `dropped_inbound`: messages this watcher received but dropped because it fell behind (counted
      by connectors that report ``stats.dropped_inbound``; 0 otherwise).
    """

    state: LinkState
    since: float
    reconnects: int = 0
    outage_seconds: float = 0.0
    dropped_inbound: int = 0

    @property
    def may_have_missed(self) -> bool:
        """Whether telemetry may have been missed (an outage happened, or messages were dropped)."""
        return self.reconnects > 0 or self.state is LinkState.RECONNECTING or self.dropped_inbound > 0


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A change `LinkMonitor.poll` found: `view` is the new state; `gap_seconds` how long the
    outage lasted when a reconnection ended one (None: lost now, or a loss shorter than one poll).
    """

    view: LinkView
    gap_seconds: float | None = None


class LinkMonitor:
    """Poll `connector` with `poll` (for example every 0.25 s) to follow its connection.

    Works with any `Connector`: without a ``connected`` property, a loss is seen only once the
    reconnection happened (``stats.reconnects`` grew). `clock` gives Unix seconds.
    """

    def __init__(self, connector: Connector, clock: Callable[[], float] = time.time) -> None:
        self._connector = connector
        self._clock = clock
        stats = connector.stats
        self._base_reconnects = stats.reconnects
        self._base_dropped = _dropped_inbound(connector)
        up = self._is_up()
        state = LinkState.CONNECTED if up else LinkState.RECONNECTING
        self.view = LinkView(state, clock())
        """The connection as last polled."""

    def _is_up(self) -> bool:
        connector = self._connector
        return connector.connected if isinstance(connector, ReportsConnection) else True

    def poll(self) -> LinkChange | None:
        """Look at the connector now; return the change since the last poll, or None."""
        now = self._clock()
        old = self.view
        reconnects = self._connector.stats.reconnects - self._base_reconnects
        dropped = _dropped_inbound(self._connector) - self._base_dropped
        up = self._is_up()
        if old.state is LinkState.CONNECTED and not up:
            self.view = LinkView(LinkState.RECONNECTING, now, reconnects, old.outage_seconds, dropped)
            return LinkChange(self.view)
        if old.state is LinkState.RECONNECTING and up:
            gap = max(0.0, now - old.since)
            self.view = LinkView(LinkState.CONNECTED, now, reconnects, old.outage_seconds + gap, dropped)
            return LinkChange(self.view, gap)
        if reconnects > old.reconnects and up:  # lost and regained between two polls
            self.view = LinkView(LinkState.CONNECTED, now, reconnects, old.outage_seconds, dropped)
            return LinkChange(self.view)
        if reconnects != old.reconnects or dropped != old.dropped_inbound:
            self.view = LinkView(old.state, old.since, reconnects, old.outage_seconds, dropped)
        return None

    def outage_so_far(self) -> float:
        """Seconds spent reconnecting, the current outage included."""
        view = self.view
        current = self._clock() - view.since if view.state is LinkState.RECONNECTING else 0.0
        return view.outage_seconds + max(0.0, current)


def _dropped_inbound(connector: Connector) -> int:
    value = getattr(connector.stats, "dropped_inbound", 0)
    return value if isinstance(value, int) else 0
