"""The operator API: what ``cascade-mqtt`` does, for any `Connector` (MQTT, the in-memory fake, yours).

- Commands: `new_constraint`, `send_constraint` (pause, concurrency or rate limit), `resume`;
  `describe_command` says what one did in one line.
- Reading what is in force: `read_constraints`, `read_workers` (with `format_constraints`,
  `format_workers` for tables or JSON; a worker's presence shows the age of its announcement,
  ``online (3s)`` or ``offline (2h 05m ago)``: `describe_presence`, `format_age`, `age_seconds`).
- Watching: `WatchModel` is fed every telemetry, presence and constraint message and keeps runs,
  failures, workers and constraints; `LinkMonitor` follows the watcher's own connection;
  `format_event` / `format_event_json` print one line per event; `render_live` draws the live table
  (needs ``rich``, the ``[cli]`` extra).
- Text from the wire goes through `safe_text` (or `safe_json`) before it reaches a terminal.

Every function takes a connected connector and raises its `ConnectorError` subclasses; publishes are
QoS 1 and return once acknowledged (bound them with `asyncio.timeout`). Nothing here imports
``cascade.connectors.testing``. See docs/operators.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._commands import (
    OPERATOR_SOURCE_PREFIX,
    ConstraintListing,
    Resumed,
    ResumeOutcome,
    WorkerListing,
    describe_command,
    is_operator_source,
    new_constraint,
    read_constraints,
    read_workers,
    resume,
    send_constraint,
)
from ._format import format_constraints, format_workers
from ._link import LinkChange, LinkMonitor, LinkState, LinkView, ReportsConnection
from ._model import (
    TASK_STATES,
    EventKind,
    FailureView,
    RunView,
    WatchEvent,
    WatchModel,
    WorkerView,
    describe_constraint,
    describe_link_change,
    format_event,
    format_event_json,
    telemetry_filter,
)
from ._text import (
    age_seconds,
    describe_params,
    describe_presence,
    format_age,
    format_seconds,
    format_table,
    plural,
    safe_json,
    safe_text,
    time_left,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    # commands
    "new_constraint",
    "send_constraint",
    "resume",
    "Resumed",
    "ResumeOutcome",
    "describe_command",
    # reading what is in force
    "read_constraints",
    "read_workers",
    "ConstraintListing",
    "WorkerListing",
    "format_constraints",
    "format_workers",
    "OPERATOR_SOURCE_PREFIX",
    "is_operator_source",
    # watching
    "WatchModel",
    "WatchEvent",
    "EventKind",
    "RunView",
    "FailureView",
    "WorkerView",
    "TASK_STATES",
    "telemetry_filter",
    "format_event",
    "format_event_json",
    "describe_constraint",
    "describe_link_change",
    "render_live",
    "live_title",
    "rich_available",
    # the watcher's own connection
    "LinkMonitor",
    "LinkState",
    "LinkView",
    "LinkChange",
    "ReportsConnection",
    # text
    "safe_text",
    "safe_json",
    "format_table",
    "format_seconds",
    "time_left",
    "format_age",
    "age_seconds",
    "describe_presence",
    "describe_params",
    "plural",
]


def rich_available() -> bool:
    """Whether ``rich`` (the ``[cli]`` extra, needed by `render_live`) is installed."""
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def live_title(address: str, telemetry_filter: str, protocol: str | None = None) -> str:
    """The first line of the live table: what is watched (`telemetry_filter`), where (`address`),
    and the MQTT version of the watcher's connection (`protocol`, e.g. ``"5"``; None: not shown).
    """
    version = f"  MQTT {protocol}" if protocol is not None else ""
    return f"cascade-mqtt watch  {address}  {telemetry_filter}{version}"


def render_live(model: WatchModel, *, title: str, now: float, max_runs: int = 15) -> RenderableType:
    """The live table of `model` as a rich renderable (`now` in Unix seconds).

    Raises `ImportError` when rich is not installed (see `rich_available`). Every text from the
    wire is shown literally (never as markup) and made safe with `safe_text`.
    """
    from ._live import render

    return render(model, title=title, now=now, max_runs=max_runs)
