"""The ``watch`` loop: subscribe, feed `WatchState`, print lines or redraw the live table."""

from __future__ import annotations

__all__ = ["WatchMode", "run_watch", "rich_available", "live_title"]

import asyncio
import contextlib
import importlib.util
import time
from typing import Any, Literal, TextIO

from cascade.connectors.protocol import CONSTRAINTS_FILTER, STATUS_FILTER, Connector

from .watch import WatchEvent, WatchState, format_event, format_event_json

WatchMode = Literal["live", "plain", "json"]

_REDRAW_SECONDS = 0.25


def rich_available() -> bool:
    """Whether ``rich`` (the ``[cli]`` extra) is installed."""
    return importlib.util.find_spec("rich") is not None


def live_title(url: str, telemetry_filter: str) -> str:
    """The first line of the live table."""
    return f"cascade-mqtt watch  {url}  {telemetry_filter}"


async def run_watch(
    connector: Connector,
    *,
    telemetry_filter: str,
    mode: WatchMode,
    stop: asyncio.Event,
    out: TextIO,
    err: TextIO,
    url: str,
    state: WatchState | None = None,
) -> WatchState:
    """Watch until `stop` is set (Ctrl-C) or stdout is closed; return the final state.

    Prints a ready line on `err` once every subscription is live (retained presence and constraints
    have been shown by then). Blocks until `stop` is set.
    """
    state = state if state is not None else WatchState()
    closed = False

    def emit(event: WatchEvent) -> None:
        nonlocal closed
        if closed:
            return
        line = format_event_json(event) if mode == "json" else format_event(event)
        try:
            out.write(line + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            closed = True
            stop.set()

    async def on_message(topic: str, payload: dict[str, Any]) -> None:
        event = state.on_message(topic, payload)
        if event is not None and mode != "live":
            emit(event)

    handles = [await connector.subscribe(f, on_message) for f in (STATUS_FILTER, CONSTRAINTS_FILTER)]
    handles.append(await connector.subscribe(telemetry_filter, on_message))
    err.write(f"watching {url} ({telemetry_filter}); Ctrl-C to stop\n")
    err.flush()
    try:
        if mode == "live":
            await _live(state, stop, out, title=live_title(url, telemetry_filter))
        else:
            await stop.wait()
    finally:
        for handle in handles:
            await handle.unsubscribe()
    return state


async def _live(state: WatchState, stop: asyncio.Event, out: TextIO, *, title: str) -> None:
    from rich.console import Console
    from rich.live import Live

    from .live import render

    console = Console(file=out)
    with Live(render(state, title=title, now=time.time()), console=console, auto_refresh=False) as live:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _REDRAW_SECONDS)
            live.update(render(state, title=title, now=time.time()), refresh=True)
