"""The demo's summary: what the engine, the operator and the watcher measured, as JSON and as text."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cascade.connectors.protocol import Connector, ConnectorStats

if TYPE_CHECKING:  # mypy reads docs/examples as the namespace package docs.examples
    from docs.examples.demo_engine import EngineReport
    from docs.examples.demo_operator import OperatorReport, Watcher


def _stats(connector: Connector) -> ConnectorStats:
    stats = getattr(connector, "stats", None)
    return stats if isinstance(stats, ConnectorStats) else ConnectorStats()


def summarise(
    run: dict[str, Any],
    expected: dict[str, int],
    report: EngineReport,
    operator: OperatorReport,
    watcher: Watcher,
    wall: float,
    connectors: Sequence[Connector],
) -> dict[str, Any]:
    """The summary as a JSON-ready dict. `run` holds ``seed``, ``tasks``, ``run_id``, ``transport``
    and ``transport_note``; `expected` the final states the workflow must end in; `connectors` are
    the engine's, the operator's and the watcher's, in that order.
    """
    run_id = run["run_id"]
    seen = next(r for r in watcher.state.runs.values() if r.run_id == run_id)
    parts = dict(zip(("engine", "operator", "watcher"), (_stats(c) for c in connectors), strict=True))
    sent = operator.pause_sent_at
    # The operator's pause: the first episode that began after its command (not an earlier pause
    # already in force on the broker).
    episode = next((e for e in report.pauses if sent is not None and e.observed_at >= sent), None)
    pause: dict[str, Any] = {"observed": episode is not None}
    if episode is not None and sent is not None:
        pause.update(
            scope=episode.scope,
            command_to_ack_ms=_round_ms(operator.pause_acked_at, sent),
            command_to_observed_ms=_round_ms(episode.observed_at, sent),
            command_to_still_ms=_round_ms(episode.still_at, sent),
            drained=episode.running_when_observed,
            started_while_paused=episode.started_while_paused,
        )
        held_from, held_to = _wall_of(episode.still_at), _wall_of(episode.resumed_at)
        if held_from is not None and held_to is not None:
            pause["running_seen_while_held"] = sum(
                1 for ts in watcher.running_stamped if held_from < ts < held_to - 0.001
            )
    return {
        **run,
        "expected": expected,
        "engine_states": report.counts(),
        "watcher_states": {state.value: count for state, count in seen.counts().items()},
        "messages": {
            "published": sum(s.published for s in parts.values()),
            "received": sum(s.delivered for s in parts.values()),
            "dropped": sum(s.dropped for s in parts.values()),
            "malformed_skipped": watcher.state.malformed,
            "by_part": {name: s.as_dict() for name, s in parts.items()},
        },
        "pause": pause,
        "cap": {
            "limit": report.cap,
            "max_running_before_cap": report.max_running,
            "max_running_after_cap": report.max_running_after_cap if report.cap is not None else None,
        },
        "operator_commands": operator.commands,
        "wall_seconds": round(wall, 2),
    }


# time.monotonic() -> Unix time, for comparing engine instants with message header timestamps.
_MONO_TO_UNIX = time.time() - time.monotonic()


def _wall_of(mono: float | None) -> float | None:
    return None if mono is None else mono + _MONO_TO_UNIX


def _round_ms(later: float | None, earlier: float) -> float | None:
    return None if later is None else round((later - earlier) * 1000.0, 1)


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the lines the demo prints at the end."""

    def states(counts: dict[str, int]) -> str:
        shown = "  ".join(f"{name} {n}" for name, n in counts.items() if n)
        return f"{shown}  (total {sum(counts.values())})"

    messages = summary["messages"]
    pause = summary["pause"]
    cap = summary["cap"]
    lines = [
        "",
        "Summary",
        f"  transport            {summary['transport']}",
        f"  tasks by state       {states(summary['engine_states'])}",
        f"  as the watcher saw   {states(summary['watcher_states'])}",
        f"  messages             {messages['published']} published, {messages['received']} received"
        f" ({messages['dropped']} dropped, {messages['malformed_skipped']} malformed skipped)",
    ]
    if pause.get("command_to_still_ms") is not None:
        lines += [
            f"  pause -> still       {pause['command_to_still_ms']:.1f} ms from the pause command to the"
            " engine holding still",
            f"                       (broker ack {pause['command_to_ack_ms']:.1f} ms, engine saw it after"
            f" {pause['command_to_observed_ms']:.1f} ms, {pause['drained']} running task(s) drained,"
            f" {pause['started_while_paused']} started while paused)",
        ]
    else:
        lines.append(
            "  pause -> still       not measured: the engine was already held by another pause"
            " (see cascade-mqtt constraints)"
        )
    if cap["limit"] is not None:
        lines.append(
            f"  concurrency cap      {cap['limit']}: at most {cap['max_running_after_cap']} running"
            f" after the cap (up to {cap['max_running_before_cap']} before)"
        )
    lines.append(f"  wall time            {summary['wall_seconds']:.1f} s")
    return "\n".join(lines) + "\n"
