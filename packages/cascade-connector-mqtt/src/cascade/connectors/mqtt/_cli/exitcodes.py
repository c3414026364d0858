"""Exit codes of ``cascade-mqtt`` (documented in docs/operators.md) and the error that carries one."""

from __future__ import annotations

__all__ = ["ExitCode", "CliError", "redact"]

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """What ``cascade-mqtt`` returns to the shell; one code per class of failure."""

    OK = 0
    INTERNAL = 1
    """An unexpected error (a bug); rerun with ``-v`` for the traceback."""
    USAGE = 2
    """Invalid input: a bad option, scope, rate, TTL, project/run name or URL (nothing was sent)."""
    UNREACHABLE = 3
    """The broker cannot be reached, or did not answer (connect or acknowledgement) in time."""
    AUTH = 4
    """The broker refused the credentials (bad user name or password, or not authorised)."""
    TLS = 5
    """The TLS handshake or certificate verification failed."""
    BROKER = 6
    """The broker refused the connection for another reason, or refused a command or a subscription."""
    NOTHING_TO_RESUME = 7
    """``resume``: no constraint was in force on the scope (nothing changed for the engines)."""
    INTERRUPTED = 130
    """Ctrl-C during a command other than ``watch`` (``watch`` exits 0 on Ctrl-C)."""


class CliError(Exception):
    """A failure to report as one line on stderr with `code` as the exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
