"""``cascade-mqtt``: argument parsing, input checks, and turning every failure into an exit code."""

from __future__ import annotations

__all__ = ["main", "build_parser"]

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TextIO

from cascade.connectors.protocol import Connector, ConnectorError, ConstraintType

from .commands import (
    describe_command,
    format_constraints,
    format_workers,
    make_constraint,
    read_constraints,
    read_workers,
    send_constraint,
    send_resume,
)
from .exitcodes import CliError, ExitCode, redact
from .session import ConnectorFactory, Session
from .validate import (
    DEFAULT_URL,
    URL_ENV,
    check_concurrency,
    check_name,
    check_rate,
    check_scope,
    check_timeout,
    check_ttl,
    display_url,
    url_password,
)
from .watch import WatchState, telemetry_filter
from .watching import WatchMode, rich_available, run_watch

PROG = "cascade-mqtt"

_DESCRIPTION = """\
Operate Cascade engines over MQTT: watch telemetry live, pause/resume/limit scopes,
list the constraints in force and the workers online.

scopes: 'global', 'task:NAME' or 'project:NAME'.
exit codes: 0 ok, 1 internal error, 2 invalid input, 3 broker unreachable or not answering,
4 credentials refused, 5 TLS failure, 6 broker refused (connection, command or subscription),
130 interrupted.
"""


_SCOPE_HELP = "'global', 'task:NAME' or 'project:NAME'"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitCode.USAGE), f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--url",
        default=default,
        help=f"broker URL, mqtt://[user:password@]host[:port] or mqtts://... "
        f"(default: ${URL_ENV} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--timeout",
        default=argparse.SUPPRESS if suppress else "10",
        metavar="SECONDS",
        help="how long to wait for the broker to connect or acknowledge (default: 10)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log what the connector does (-vv: debug); show tracebacks of internal errors",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (global options are accepted before or after the command)."""
    parser = _Parser(
        prog=PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _common_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _common_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    watch = commands.add_parser(
        "watch", parents=[common], help="live view of runs, failures, constraints and workers"
    )
    watch.add_argument("--project", help="only runs of this project")
    watch.add_argument("--run", help="only this run id")
    output = watch.add_mutually_exclusive_group()
    output.add_argument("--plain", action="store_true", help="one line per event, even on a terminal")
    output.add_argument("--json", action="store_true", help="one JSON object per event and line")

    pause = commands.add_parser("pause", parents=[common], help="stop tasks in SCOPE from starting")
    pause.add_argument("scope", metavar="SCOPE", help=_SCOPE_HELP)
    pause.add_argument("--ttl", metavar="SECONDS", help="expire after this many seconds")

    resume = commands.add_parser("resume", parents=[common], help="clear the constraint on SCOPE")
    resume.add_argument("scope", metavar="SCOPE", help=_SCOPE_HELP)

    limit = commands.add_parser("limit", parents=[common], help="cap concurrency or start rate in SCOPE")
    limit.add_argument("scope", metavar="SCOPE", help=_SCOPE_HELP)
    cap = limit.add_mutually_exclusive_group(required=True)
    cap.add_argument("--concurrency", metavar="N", help="at most N tasks of SCOPE running at once")
    cap.add_argument("--rate", metavar="N/s|N/m|N/h", help="at most N task starts per second/minute/hour")
    limit.add_argument("--ttl", metavar="SECONDS", help="expire after this many seconds")

    constraints = commands.add_parser(
        "constraints", parents=[common], help="list the constraints in force (retained on the broker)"
    )
    constraints.add_argument("--json", action="store_true", help="print a JSON list")

    status = commands.add_parser(
        "status", parents=[common], help="list the workers and whether they are online"
    )
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.add_argument("--all", action="store_true", help="also list cascade-mqtt's own connections")
    return parser


class _Context:
    """What every command needs: the connector factory, the masked URL, the timeout, the streams."""

    def __init__(self, factory: ConnectorFactory, url: str, timeout: float, out: TextIO, err: TextIO) -> None:
        self.factory = factory
        self.url = url
        self.timeout = timeout
        self.out = out
        self.err = err

    def session(self) -> Session:
        return Session(self.factory, self.url, self.timeout)

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


Command = Callable[[_Context], Coroutine[Any, Any, None]]


CLI_SOURCE_PREFIX = "cascade-mqtt-cli-"
"""Presence name prefix of the CLI's own connections; ``status`` and ``watch`` leave them out."""


def cli_source() -> str:
    """The CLI's presence name on this host (one retained status per host, not one per command)."""
    host = re.sub(r"[/+#\x00\s]", "_", socket.gethostname()) or "host"
    return CLI_SOURCE_PREFIX + host


def is_cli_source(source: str) -> bool:
    """Whether `source` is a ``cascade-mqtt`` connection (not a worker)."""
    return source.startswith(CLI_SOURCE_PREFIX)


def _connector_factory(url: str, timeout: float) -> ConnectorFactory:
    """Build the connector for `url` now (so a bad URL fails before anything else); raise `CliError`."""
    from cascade.connectors.mqtt import MqttConnector

    shown = display_url(url)
    try:
        connector = MqttConnector.from_url(
            url, source=cli_source(), connect_timeout=timeout, flush_timeout=timeout
        )
    except (ValueError, ConnectorError, OSError) as exc:
        text = str(exc)
        raise CliError(ExitCode.USAGE, text if "URL" in text else f"invalid URL {shown}: {text}") from exc

    def factory() -> Connector:
        return connector

    return factory


def _prepare(args: argparse.Namespace, stop: asyncio.Event) -> Command:
    """Check every input and return the command to run (raises `CliError` with `ExitCode.USAGE`)."""
    name: str = args.command
    if name in ("pause", "limit"):
        scope = check_scope(args.scope)
        ttl = check_ttl(args.ttl) if args.ttl is not None else None
        params: dict[str, Any]
        if name == "pause":
            ctype, params = ConstraintType.PAUSE, {}
        elif args.concurrency is not None:
            ctype, params = ConstraintType.CONCURRENCY, {"limit": check_concurrency(args.concurrency)}
        else:
            ctype, params = ConstraintType.RATE_LIMIT, {"rate": check_rate(args.rate)}

        async def send(ctx: _Context) -> None:
            constraint = make_constraint(scope, ctype, params, ttl)
            async with ctx.session() as connector:
                await send_constraint(connector, constraint, ack_timeout=ctx.timeout, url=ctx.url)
            ctx.print(describe_command(constraint))

        return send
    if name == "resume":
        scope = check_scope(args.scope)

        async def resume(ctx: _Context) -> None:
            async with ctx.session() as connector:
                await send_resume(connector, scope, ack_timeout=ctx.timeout, url=ctx.url)
            ctx.print(f"resumed {scope} (its constraint is cleared)")

        return resume
    if name == "constraints":
        as_json: bool = args.json

        async def constraints(ctx: _Context) -> None:
            async with ctx.session() as connector:
                book, problems = await _bounded(read_constraints(connector), ctx)
            _warn_unreadable(ctx, problems, "constraint")
            ctx.print(format_constraints(book, as_json=as_json, now=time.time()))

        return constraints
    if name == "status":
        status_json: bool = args.json
        hide = (lambda source: False) if args.all else is_cli_source

        async def status(ctx: _Context) -> None:
            async with ctx.session() as connector:
                workers, problems = await _bounded(read_workers(connector, hide=hide), ctx)
            _warn_unreadable(ctx, problems, "presence")
            ctx.print(format_workers(workers, as_json=status_json))

        return status
    assert name == "watch"
    project = check_name(args.project, "project") if args.project is not None else None
    run = check_name(args.run, "run") if args.run is not None else None
    topic_filter = telemetry_filter(project, run)
    plain: bool = args.plain
    watch_json: bool = args.json

    async def watch(ctx: _Context) -> None:
        mode = choose_watch_mode(
            plain=plain, as_json=watch_json, terminal=ctx.out.isatty(), rich=rich_available()
        )
        if mode == "plain" and not plain and ctx.out.isatty():
            ctx.err.write(f"{PROG}: install cascade-connector-mqtt[cli] for the live table\n")
        async with ctx.session() as connector:
            try:
                await run_watch(
                    connector,
                    telemetry_filter=topic_filter,
                    mode=mode,
                    stop=stop,
                    out=ctx.out,
                    err=ctx.err,
                    url=ctx.url,
                    state=WatchState(hide_source=is_cli_source),
                )
            except ConnectorError as exc:
                raise CliError(ExitCode.BROKER, f"the broker at {ctx.url} refused: {exc}") from exc

    return watch


def choose_watch_mode(*, plain: bool, as_json: bool, terminal: bool, rich: bool) -> WatchMode:
    """``json`` with --json; the live table on a terminal when rich is installed; else ``plain``."""
    if as_json:
        return "json"
    if plain or not terminal or not rich:
        return "plain"
    return "live"


async def _bounded(coro: Coroutine[Any, Any, Any], ctx: _Context) -> Any:
    """Await `coro` within the timeout; subscription failures become `CliError`s."""
    try:
        async with asyncio.timeout(ctx.timeout):
            return await coro
    except TimeoutError as exc:
        raise CliError(
            ExitCode.UNREACHABLE, f"the broker at {ctx.url} did not answer within {ctx.timeout:g} s"
        ) from exc
    except ConnectorError as exc:
        raise CliError(ExitCode.BROKER, f"the broker at {ctx.url} refused: {exc}") from exc


def _warn_unreadable(ctx: _Context, problems: list[str], what: str) -> None:
    if problems:
        ctx.err.write(
            f"{PROG}: warning: skipped {len(problems)} retained {what} message(s) that do not decode "
            f"(first: {problems[0]})\n"
        )


def _configure_logging(verbosity: int, err: TextIO) -> None:
    root = logging.getLogger()
    if verbosity <= 0:
        # Connector logs would break "one clear line on failure"; -v shows them.
        root.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)


async def _watch_until_stopped(command: Command, ctx: _Context, stop: asyncio.Event) -> None:
    """Run `watch` with Ctrl-C and SIGTERM setting `stop` (a clean exit, code 0)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, or not the main thread
            pass
    try:
        await command(ctx)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``cascade-mqtt`` with `argv` (default: ``sys.argv[1:]``); return the exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage error (one line already on stderr) or --help
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    verbosity: int = args.verbose
    _configure_logging(verbosity, err)
    url: str = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    secrets = [url_password(url)]
    shown = display_url(url)
    try:
        timeout = check_timeout(args.timeout)
        stop = asyncio.Event()
        if args.command not in ("pause", "resume", "limit", "constraints", "status", "watch"):
            raise CliError(ExitCode.USAGE, f"unknown command {args.command!r}")  # pragma: no cover
        command = _prepare(args, stop)
        factory = _connector_factory(url, timeout)
        ctx = _Context(factory, shown, timeout, out, err)
        if args.command == "watch":
            return _run_watch_command(command, ctx, stop)
        asyncio.run(command(ctx))  # Ctrl-C: KeyboardInterrupt, exit code 130
        return int(ExitCode.OK)
    except CliError as exc:
        err.write(f"{PROG}: error: {redact(exc.message, secrets)}\n")
        return int(exc.code)
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except ConnectorError as exc:  # a failure no command mapped more precisely
        err.write(f"{PROG}: error: {redact(str(exc), secrets)}\n")
        return int(ExitCode.BROKER)
    except Exception as exc:
        if verbosity > 0:
            err.write(redact(traceback.format_exc(), secrets))
        err.write(
            f"{PROG}: internal error: {type(exc).__name__}: {redact(str(exc), secrets)} "
            "(rerun with -v for the traceback)\n"
        )
        return int(ExitCode.INTERNAL)


def _run_watch_command(command: Command, ctx: _Context, stop: asyncio.Event) -> int:
    # Ctrl-C before the signal handler was installed is still a clean exit.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch_until_stopped(command, ctx, stop))
    try:
        ctx.out.flush()
    except BrokenPipeError:
        # stdout was closed by the reader (watch --json | head): keep interpreter shutdown quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, ctx.out.fileno())
    return int(ExitCode.OK)
