"""The ``cascade-mqtt`` commands, in one table: name, help, description, arguments, and what runs.

Each `CommandSpec` checks its input in `prepare` (before anything touches the network; raises
`CliError` with `ExitCode.USAGE`) and returns the coroutine that runs the command with a `Context`.
The parser, the help and the dispatch in `app` are all built from `COMMANDS`.
"""

from __future__ import annotations

__all__ = ["CommandSpec", "Context", "Runner", "COMMANDS", "SCOPE_HELP"]

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TextIO

from cascade.connectors.protocol import ConnectorError, ConstraintType

from ..operator import (
    ResumeOutcome,
    WatchModel,
    describe_command,
    format_constraints,
    format_workers,
    is_operator_source,
    new_constraint,
    read_constraints,
    read_workers,
    resume,
    rich_available,
    safe_text,
    send_constraint,
    telemetry_filter,
)
from .exitcodes import CliError, ExitCode
from .session import ConnectorFactory, Session, acked, bounded, over
from .validate import check_concurrency, check_name, check_rate, check_scope, check_ttl
from .watching import choose_watch_mode, run_watch

PROG = "cascade-mqtt"
SCOPE_HELP = "'global', 'task:NAME' or 'project:NAME'"


@dataclass(slots=True)
class Context:
    """What every command needs: the connector factory, the masked URL, the timeout, the streams."""

    factory: ConnectorFactory
    url: str
    timeout: float
    out: TextIO
    err: TextIO
    stop: asyncio.Event

    def session(self) -> Session:
        return Session(self.factory, self.url, self.timeout)

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        self.err.write(f"{PROG}: {text}\n")
        self.err.flush()


Runner = Callable[[Context], Coroutine[Any, Any, ExitCode]]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: `help` is its line in ``cascade-mqtt --help``, `description` its own ``--help``."""

    name: str
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], None]
    prepare: Callable[[argparse.Namespace], Runner]
    long_running: bool = False
    """``watch``: runs until Ctrl-C or SIGTERM, which end it with exit code 0."""


# ---------------------------------------------------------------------------------------------
# pause, limit


def _configure_pause(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", metavar="SCOPE", help=SCOPE_HELP)
    parser.add_argument("--ttl", metavar="SECONDS", help="expire after this many seconds (default: never)")


def _configure_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", metavar="SCOPE", help=SCOPE_HELP)
    cap = parser.add_mutually_exclusive_group(required=True)
    cap.add_argument("--concurrency", metavar="N", help="at most N tasks of SCOPE running at once")
    cap.add_argument("--rate", metavar="N/s|N/m|N/h", help="at most N task starts per second/minute/hour")
    parser.add_argument("--ttl", metavar="SECONDS", help="expire after this many seconds (default: never)")


def _prepare_constraint(args: argparse.Namespace) -> Runner:
    scope = check_scope(args.scope)
    ttl = check_ttl(args.ttl) if args.ttl is not None else None
    params: dict[str, Any]
    if args.command == "pause":
        ctype, params = ConstraintType.PAUSE, {}
    elif args.concurrency is not None:
        ctype, params = ConstraintType.CONCURRENCY, {"limit": check_concurrency(args.concurrency)}
    else:
        ctype, params = ConstraintType.RATE_LIMIT, {"rate": check_rate(args.rate)}

    async def run(ctx: Context) -> ExitCode:
        constraint = new_constraint(scope, ctype, params, ttl)
        async with ctx.session() as connector:
            await acked(send_constraint(connector, constraint), within=ctx.timeout, url=ctx.url)
        ctx.print(describe_command(constraint))
        return ExitCode.OK

    return run


# ---------------------------------------------------------------------------------------------
# resume


_KIND = {
    ConstraintType.PAUSE: "pause",
    ConstraintType.CONCURRENCY: "concurrency limit",
    ConstraintType.RATE_LIMIT: "rate limit",
}


def _configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scope", metavar="SCOPE", help=SCOPE_HELP)


def _prepare_resume(args: argparse.Namespace) -> Runner:
    scope = check_scope(args.scope)

    async def run(ctx: Context) -> ExitCode:
        async with ctx.session() as connector:
            done = await acked(resume(connector, scope), within=ctx.timeout, url=ctx.url)
        if done.outcome is ResumeOutcome.CLEARED:
            assert done.constraint is not None
            ctx.print(f"resumed {scope} (its {_KIND[done.constraint.type]} is cleared)")
            return ExitCode.OK
        if done.outcome is ResumeOutcome.UNREADABLE:
            ctx.print(f"resumed {scope} (cleared a retained message that was not a valid constraint)")
            return ExitCode.OK
        if done.outcome is ResumeOutcome.EXPIRED:
            ctx.warn(f"nothing to resume: the constraint on {scope} had already expired (cleared it)")
        else:
            ctx.warn(f"nothing to resume: no constraint on {scope}")
        return ExitCode.NOTHING_TO_RESUME

    return run


# ---------------------------------------------------------------------------------------------
# constraints, status


def _configure_constraints(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def _prepare_constraints(args: argparse.Namespace) -> Runner:
    as_json: bool = args.json

    async def run(ctx: Context) -> ExitCode:
        async with ctx.session() as connector:
            listing = await bounded(read_constraints(connector), within=ctx.timeout, url=ctx.url)
        _warn_skipped(ctx, listing.skipped, "constraint")
        ctx.print(format_constraints(listing.book, as_json=as_json, now=time.time()))
        return ExitCode.OK

    return run


def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--all", action="store_true", help="also list cascade-mqtt's own connections")


def _prepare_status(args: argparse.Namespace) -> Runner:
    as_json: bool = args.json
    hide = None if args.all else is_operator_source

    async def run(ctx: Context) -> ExitCode:
        async with ctx.session() as connector:
            listing = await bounded(read_workers(connector, hide=hide), within=ctx.timeout, url=ctx.url)
            broker = f"broker: {over(ctx.url, connector)}"
        _warn_skipped(ctx, listing.skipped, "presence")
        shown = format_workers(listing.workers, as_json=as_json, now=time.time())
        if as_json:  # stdout stays the JSON list (for jq); the broker line goes to stderr
            ctx.print(shown)
            ctx.err.write(broker + "\n")
            ctx.err.flush()
        else:
            ctx.print(f"{shown}\n{broker}")
        return ExitCode.OK

    return run


def _warn_skipped(ctx: Context, skipped: list[str], what: str) -> None:
    if skipped:
        ctx.warn(
            f"warning: skipped {len(skipped)} retained {what} message(s) that do not decode "
            f"(first: {safe_text(skipped[0])})"
        )


# ---------------------------------------------------------------------------------------------
# watch


def _configure_watch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="only runs of this project")
    parser.add_argument("--run", help="only this run id")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--plain", action="store_true", help="one line per event, even on a terminal")
    output.add_argument("--json", action="store_true", help="one JSON object per event and line")


def _prepare_watch(args: argparse.Namespace) -> Runner:
    project = check_name(args.project, "project") if args.project is not None else None
    run_id = check_name(args.run, "run") if args.run is not None else None
    topic_filter = telemetry_filter(project, run_id)
    plain: bool = args.plain
    as_json: bool = args.json

    async def run(ctx: Context) -> ExitCode:
        mode = choose_watch_mode(
            plain=plain, as_json=as_json, terminal=ctx.out.isatty(), rich=rich_available()
        )
        if mode == "plain" and not plain and ctx.out.isatty():
            ctx.warn("install cascade-connector-mqtt[cli] for the live table")
        async with ctx.session() as connector:
            try:
                await run_watch(
                    connector,
                    telemetry_filter=topic_filter,
                    mode=mode,
                    stop=ctx.stop,
                    out=ctx.out,
                    err=ctx.err,
                    url=ctx.url,
                    model=WatchModel(hide_source=is_operator_source),
                )
            except ConnectorError as exc:
                raise CliError(ExitCode.BROKER, f"the broker at {ctx.url} refused: {exc}") from exc
        return ExitCode.OK

    return run


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "watch",
        "live view of runs, failures, constraints and workers",
        "Follow the telemetry of every run (or of one project or run), the workers' presence, the "
        "constraints in force and this watcher's own connection, until Ctrl-C (exit code 0). On a "
        "terminal with rich installed: a live table; otherwise one line per event.",
        _configure_watch,
        _prepare_watch,
        long_running=True,
    ),
    CommandSpec(
        "pause",
        "stop tasks in SCOPE from starting",
        "Stop tasks in SCOPE from starting (running tasks finish), until `resume` or the TTL. "
        "Returns once the broker acknowledged the retained constraint.",
        _configure_pause,
        _prepare_constraint,
    ),
    CommandSpec(
        "resume",
        "clear the constraint on SCOPE",
        "Clear the constraint on SCOPE, whatever it is (pause, concurrency or rate). Exit code 7, "
        "and nothing is sent, when no constraint was in force on SCOPE.",
        _configure_resume,
        _prepare_resume,
    ),
    CommandSpec(
        "limit",
        "cap concurrency or start rate in SCOPE",
        "Cap how many tasks of SCOPE run at once (--concurrency) or start per second, minute or "
        "hour (--rate), until `resume` or the TTL. Replaces the scope's earlier constraint.",
        _configure_limit,
        _prepare_constraint,
    ),
    CommandSpec(
        "constraints",
        "list the constraints in force (retained on the broker)",
        "List the constraints retained on the broker that have not expired: scope, what they do, "
        "their parameters and the time left.",
        _configure_constraints,
        _prepare_constraints,
    ),
    CommandSpec(
        "status",
        "list the workers and whether they are online",
        "List the workers that announced their presence, whether they are online, and since when.",
        _configure_status,
        _prepare_status,
    ),
)
