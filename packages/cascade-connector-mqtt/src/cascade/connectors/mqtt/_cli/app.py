"""``cascade-mqtt``: the parser built from the command table, and every failure turned into an exit code."""

from __future__ import annotations

__all__ = ["main", "build_parser", "cli_source", "cli_client_id"]

import argparse
import asyncio
import contextlib
import io
import logging
import os
import secrets
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from cascade.connectors.protocol import Connector, ConnectorError
from cascade.connectors.protocol.core import host_segment

from ..operator import OPERATOR_SOURCE_PREFIX
from .commands import COMMANDS, PROG, CommandSpec, Context, Runner
from .exitcodes import CliError, ExitCode, redact
from .password import PasswordSource, read_password
from .session import ConnectorFactory
from .validate import DEFAULT_URL, URL_ENV, check_timeout, display_url, url_password, url_username

_DESCRIPTION = """\
Operate Cascade engines over MQTT: watch telemetry live, pause/resume/limit scopes,
list the constraints in force and the workers online.

scopes: 'global', 'task:NAME' or 'project:NAME'.
exit codes: 0 ok, 1 internal error, 2 invalid input, 3 broker unreachable or not answering,
4 credentials refused, 5 TLS failure, 6 broker refused (connection, command or subscription),
7 nothing to resume, 130 interrupted.
"""

_BY_NAME: dict[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cascade-connector-mqtt")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitCode.USAGE), f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--url",
        default=default(None),
        help=f"broker URL, mqtt://[user@]host[:port] or mqtts://... (default: ${URL_ENV} or {DEFAULT_URL})",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-file",
        metavar="PATH",
        default=default(None),
        help="read the password from the first line of PATH (the user name comes from the URL)",
    )
    secret.add_argument(
        "--password-prompt",
        action="store_true",
        default=default(False),
        help="ask for the password on the terminal (not echoed)",
    )
    parser.add_argument(
        "--timeout",
        default=default("10"),
        metavar="SECONDS",
        help="how long to wait for the broker to connect or acknowledge (default: 10)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log what the connector does (-vv: debug); show tracebacks of internal errors",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, from `COMMANDS` (global options go before or after the command)."""
    parser = _Parser(
        prog=PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    _common_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _common_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for spec in COMMANDS:
        sub = commands.add_parser(spec.name, parents=[common], help=spec.help, description=spec.description)
        spec.configure(sub)
    return parser


def cli_source() -> str:
    """The CLI's presence name on this host (one retained status per host, not one per command)."""
    return OPERATOR_SOURCE_PREFIX + host_segment()


def cli_client_id() -> str:
    """A fresh MQTT client id, ``cascade-mqtt-cli-{host}-{8 hex}`` (two commands never collide)."""
    return f"{cli_source()}-{secrets.token_hex(4)}"


def _connector_factory(url: str, timeout: float, password: str | None) -> ConnectorFactory:
    """Build the connector for `url` now (so a bad URL fails before anything else); raise `CliError`."""
    from cascade.connectors.mqtt import MqttConnector

    shown = display_url(url)
    overrides: dict[str, Any] = {"password": password} if password is not None else {}
    try:
        connector = MqttConnector.from_url(
            url,
            source=cli_source(),
            client_id=cli_client_id(),
            connect_timeout=timeout,
            flush_timeout=timeout,
            **overrides,
        )
    except (ValueError, ConnectorError, OSError) as exc:
        text = str(exc)
        raise CliError(ExitCode.USAGE, text if "URL" in text else f"invalid URL {shown}: {text}") from exc

    def factory() -> Connector:
        return connector

    return factory


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


def _tolerant(stream: TextIO) -> None:
    """Make `stream` escape what its encoding cannot write (``PYTHONIOENCODING=ascii``, a C locale)."""
    if isinstance(stream, io.TextIOWrapper):
        with contextlib.suppress(ValueError, io.UnsupportedOperation):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``cascade-mqtt`` with `argv` (default: ``sys.argv[1:]``); return the exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    _tolerant(out)
    _tolerant(err)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage error (one line already on stderr), --help or --version
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    verbosity: int = args.verbose
    _configure_logging(verbosity, err)
    url: str = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    secrets_seen: list[str | None] = [url_password(url)]
    shown = display_url(url)
    spec = _BY_NAME[args.command]
    try:
        timeout = check_timeout(args.timeout)
        runner = spec.prepare(args)
        source, password = read_password(
            file=args.password_file, prompt=args.password_prompt, username=url_username(url)
        )
        secrets_seen.append(password)
        if source is not PasswordSource.URL:
            logging.getLogger("cascade.connectors.mqtt.cli").debug("password from %s", source.value)
        ctx = Context(_connector_factory(url, timeout, password), shown, timeout, out, err, asyncio.Event())
        if spec.long_running:
            return _run_until_stopped(runner, ctx)
        return int(asyncio.run(runner(ctx)))  # Ctrl-C: KeyboardInterrupt, exit code 130
    except CliError as exc:
        err.write(f"{PROG}: error: {redact(exc.message, secrets_seen)}\n")
        return int(exc.code)
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except ConnectorError as exc:  # a failure no command mapped more precisely
        err.write(f"{PROG}: error: {redact(str(exc), secrets_seen)}\n")
        return int(ExitCode.BROKER)
    except Exception as exc:
        if verbosity > 0:
            err.write(redact(traceback.format_exc(), secrets_seen))
        err.write(
            f"{PROG}: internal error: {type(exc).__name__}: {redact(str(exc), secrets_seen)} "
            "(rerun with -v for the traceback)\n"
        )
        return int(ExitCode.INTERNAL)


async def _until_stopped(runner: Runner, ctx: Context) -> ExitCode:
    """Run a long-running command with Ctrl-C and SIGTERM setting ``ctx.stop`` (a clean exit)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, ctx.stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, or not the main thread
            pass
    try:
        return await runner(ctx)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _run_until_stopped(runner: Runner, ctx: Context) -> int:
    code = ExitCode.OK
    # Ctrl-C before the signal handler was installed is still a clean exit.
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(_until_stopped(runner, ctx))
    try:
        ctx.out.flush()
    except BrokenPipeError:
        # stdout was closed by the reader (watch --json | head): keep interpreter shutdown quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, ctx.out.fileno())
    return int(code)
