"""The live table of ``cascade-mqtt watch`` on a terminal (needs ``rich``: the ``[cli]`` extra).

Imported only by `render_live`, so the rest of the operator API works without rich.
"""

from __future__ import annotations

__all__ = ["render"]

from datetime import UTC, datetime

from cascade.connectors.protocol import TaskState
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ._link import LinkState, LinkView
from ._model import TASK_STATES, WatchModel, describe_constraint
from ._text import describe_params as _describe_params
from ._text import format_seconds, safe_text
from ._text import time_left as _time_left

_STATE_STYLE = {
    TaskState.PENDING: "dim",
    TaskState.RUNNING: "cyan",
    TaskState.COMPLETED: "green",
    TaskState.FAILED: "bold red",
    TaskState.SKIPPED: "yellow",
    TaskState.BLOCKED: "magenta",
}
_STATE_LABEL = {
    TaskState.PENDING: "pend",
    TaskState.RUNNING: "run",
    TaskState.COMPLETED: "done",
    TaskState.FAILED: "fail",
    TaskState.SKIPPED: "skip",
    TaskState.BLOCKED: "blkd",
}
_ENGINE_STYLE = {"running": "green", "stopped": "dim", "unknown": "yellow"}


def _text(text: str, style: str = "") -> Text:
    """Wire text as a rich `Text` (never markup), made safe for the terminal."""
    return Text(safe_text(text), style=style)


def render(state: WatchModel, *, title: str, now: float, max_runs: int = 15) -> RenderableType:
    """The whole view: runs, constraints, workers, recent failures, and a footer. `now` in Unix s.

    A run marked ``(gap)`` was running while the watcher was disconnected: it may have missed events.
    Task columns: pend(ing), run(ning), done (completed), fail(ed), skip(ped), blkd (blocked, shown
    only when a run has blocked tasks); each counts the tasks whose latest state it is.
    """
    recent = state.recent_runs(max_runs)
    # BLOCKED is rare: its column appears only when some run has blocked tasks.
    shown = [s for s in TASK_STATES if s is not TaskState.BLOCKED or any(r.counts()[s] for r in recent)]
    runs = Table(title=_text(title), title_justify="left", expand=True)
    longest = max((len(r.name) + (6 if r.through_outage else 0) for r in recent), default=12)
    runs.add_column("project/run", no_wrap=True, min_width=min(longest, 32))
    runs.add_column("engine", no_wrap=True)
    for task_state in shown:
        runs.add_column(
            _STATE_LABEL[task_state], justify="right", style=_STATE_STYLE[task_state], no_wrap=True
        )
    runs.add_column("last (UTC)", style="dim", no_wrap=True)
    for run in recent:
        counts = run.counts()
        runs.add_row(
            _text(run.name + (" (gap)" if run.through_outage else "")),
            Text(run.engine, style=_ENGINE_STYLE[run.engine]),
            *(str(counts[s]) if counts[s] else "" for s in shown),
            _text(_clock_time(run.last_ts)),
        )
    if not state.runs:
        runs.add_row("(waiting for telemetry)", "", *("" for _ in shown), "")
    parts: list[RenderableType] = [runs]

    active = state.constraints.active()
    if active:
        table = Table(title="constraints in force", title_justify="left", expand=True)
        for column in ("scope", "constraint", "params", "expires in"):
            table.add_column(column)
        for c in active:
            table.add_row(
                _text(c.scope),
                _text(describe_constraint(c.type.value, c.params), "bold yellow"),
                _text(_describe_params(c.params)),
                _time_left(c.expires_at, now),
            )
        parts.append(table)

    if state.workers:
        table = Table(title="workers", title_justify="left", expand=True)
        for column in ("source", "status", "since"):
            table.add_column(column)
        for worker in sorted(state.workers.values(), key=lambda w: (w.status != "online", w.source)):
            style = "green" if worker.status == "online" else "red"
            table.add_row(_text(worker.source), Text(worker.describe(now), style=style), _text(worker.ts))
        parts.append(table)

    if state.failures:
        table = Table(title="recent failures", title_justify="left", expand=True)
        for column in ("time (UTC)", "run", "task", "error"):
            table.add_column(column)
        for failure in reversed(state.failures):
            table.add_row(
                _text(_clock_time(failure.ts)),
                _text(failure.run),
                _text(f"{failure.task_name} [{failure.task_id}]"),
                _text(failure.error),
            )
        parts.append(table)

    # Every text that comes from the wire is a Text, never markup: "[red]" in an error stays literal.
    footer = f"{state.messages} messages"
    if state.malformed:
        footer += f", {state.malformed} malformed skipped (last: {state.last_problem})"
    if state.link is not None:
        parts.append(_link_line(state.link, now))
    parts.append(_text(footer + "   Ctrl-C to exit", "dim"))  # a Text: the problem may hold "["
    return Group(*parts)


def _link_line(link: LinkView, now: float) -> Text:
    """The watcher's own connection: connected, or reconnecting since when; what it may have missed."""
    missed = []
    if link.state is LinkState.RECONNECTING:
        outage = link.outage_seconds + max(0.0, now - link.since)
        since = _clock_time(_iso(link.since))
        text = (
            f"connection: RECONNECTING since {since} ({format_seconds(now - link.since)});"
            " telemetry sent meanwhile is missed"
        )
        style = "bold red"
    else:
        outage = link.outage_seconds
        text = "connection: connected"
        style = "yellow" if link.may_have_missed else "dim"
    if link.reconnects:
        plural = "s" if link.reconnects != 1 else ""
        missed.append(f"{link.reconnects} reconnect{plural}, telemetry missed for {format_seconds(outage)}")
    if link.dropped_inbound:
        missed.append(f"{link.dropped_inbound} messages dropped (this watcher fell behind)")
    if missed:
        text += "   (" + "; ".join(missed) + ")"
    return Text(text, style=style)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clock_time(ts: str) -> str:
    """``12:00:02`` from an ISO 8601 timestamp (UTC), for narrow columns."""
    _, _, clock = ts.partition("T")
    return clock[:8] if clock else ts
