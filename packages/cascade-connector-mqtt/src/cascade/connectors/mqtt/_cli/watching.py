"""The ``watch`` loop: subscribe, feed the `WatchModel`, print lines or redraw the live table, and
report the watcher's own connection (lost, restored) as it changes.
"""

from __future__ import annotations

__all__ = ["WatchMode", "run_watch", "choose_watch_mode"]

import asyncio
import contextlib
import logging
import time
from typing import Any, Literal, TextIO

from cascade.connectors.protocol import CONSTRAINTS_FILTER, STATUS_FILTER, Connector

from ..operator import (
    LinkMonitor,
    WatchEvent,
    WatchModel,
    format_event,
    format_event_json,
    live_title,
    render_live,
    safe_text,
)
from .session import over, protocol_of

WatchMode = Literal["live", "plain", "json"]

_REDRAW_SECONDS = 0.25
_LINK_POLL_SECONDS = 0.2

_log = logging.getLogger("cascade.connectors.mqtt.cli")


def choose_watch_mode(*, plain: bool, as_json: bool, terminal: bool, rich: bool) -> WatchMode:
    """``json`` with --json; the live table on a terminal when rich is installed; else ``plain``."""
    if as_json:
        return "json"
    if plain or not terminal or not rich:
        return "plain"
    return "live"


class _Printer:
    """Writes one line per event; a closed stdout (``watch | head``) stops the watch."""

    def __init__(self, mode: WatchMode, out: TextIO, stop: asyncio.Event) -> None:
        self._mode = mode
        self._out = out
        self._stop = stop
        self.closed = False
        encoding = (getattr(out, "encoding", None) or "").lower().replace("_", "-")
        self._ascii_only = encoding not in ("utf-8", "utf8", "utf-8-sig")
        """JSON for a terminal that cannot write UTF-8 escapes every non-ASCII character (valid JSON)."""

    def emit(self, event: WatchEvent) -> None:
        if self.closed or self._mode == "live":
            return
        try:
            line = (
                format_event_json(event, ascii_only=self._ascii_only)
                if self._mode == "json"
                else format_event(event)
            )
        except Exception:  # a bug in formatting one event must not end the watch
            _log.exception("cannot format a %s event; skipped", event.kind)
            return
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except UnicodeEncodeError:  # a terminal that cannot show some letter: escape it
            self._out.write(line.encode("ascii", "backslashreplace").decode("ascii") + "\n")
            self._out.flush()
        except (BrokenPipeError, ValueError):  # the reader went away, or stdout was closed
            self.closed = True
            self._stop.set()


async def run_watch(
    connector: Connector,
    *,
    telemetry_filter: str,
    mode: WatchMode,
    stop: asyncio.Event,
    out: TextIO,
    err: TextIO,
    url: str,
    model: WatchModel | None = None,
) -> WatchModel:
    """Watch until `stop` is set (Ctrl-C) or stdout is closed; return the final model.

    Prints a ready line on `err` once every subscription is live (retained presence and constraints
    have been shown by then). Blocks until `stop` is set.
    """
    model = model if model is not None else WatchModel()
    printer = _Printer(mode, out, stop)

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        try:
            event = model.on_message(topic, payload)
        except Exception:  # nothing from the wire may end the watch
            _log.exception("cannot apply a message on %s; skipped", safe_text(topic))
            return
        if event is not None:
            printer.emit(event)

    handles = [await connector.subscribe(f, on_message) for f in (STATUS_FILTER, CONSTRAINTS_FILTER)]
    handles.append(await connector.subscribe(telemetry_filter, on_message))
    monitor = LinkMonitor(connector)
    model.link = monitor.view
    err.write(f"watching {over(url, connector)} ({telemetry_filter}); Ctrl-C to stop\n")
    err.flush()
    following = asyncio.create_task(_follow_link(monitor, model, printer, stop))
    try:
        if mode == "live":
            title = live_title(url, telemetry_filter, protocol_of(connector))
            await _live(model, stop, out, title=title)
        else:
            await stop.wait()
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        for handle in handles:
            await handle.unsubscribe()
    return model


async def _follow_link(
    monitor: LinkMonitor, model: WatchModel, printer: _Printer, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _LINK_POLL_SECONDS)
        change = monitor.poll()
        if change is not None:
            printer.emit(model.on_link(change))
        else:
            model.link = monitor.view


async def _live(model: WatchModel, stop: asyncio.Event, out: TextIO, *, title: str) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console(file=out)
    failed = False
    with Live(render_live(model, title=title, now=time.time()), console=console, auto_refresh=False) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _REDRAW_SECONDS)
            try:
                view = render_live(model, title=title, now=time.time())
            except Exception:  # keep the last good view rather than end the watch
                if not failed:
                    _log.exception("cannot draw the live table; showing the last good one")
                failed = True
                continue
            live.update(view, refresh=True)
