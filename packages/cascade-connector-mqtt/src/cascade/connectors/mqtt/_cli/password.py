"""Where the broker password comes from: a file, a prompt, the environment, or the URL.

Never from the command line alone: ``--password-file`` and ``--password-prompt`` name where to read
it, so it does not land in the shell history or the process list.
"""

from __future__ import annotations

__all__ = ["PASSWORD_ENV", "PasswordSource", "read_password"]

import getpass
import os
import warnings
from enum import Enum
from pathlib import Path

from .exitcodes import CliError, ExitCode

PASSWORD_ENV = "CASCADE_MQTT_PASSWORD"

_MAX_BYTES = 64 * 1024


class PasswordSource(Enum):
    """Where `read_password` took the password from."""

    FILE = "file"
    PROMPT = "prompt"
    ENV = "env"
    URL = "url"
    """None given apart from the URL (or none at all): the URL's own password applies."""


def read_password(
    *, file: str | None, prompt: bool, username: str | None
) -> tuple[PasswordSource, str | None]:
    """The password to use (None: the URL's own, if any), in this order: `file`, `prompt`, then
    ``$CASCADE_MQTT_PASSWORD``.

    A file holds the password on its first line (one trailing newline is ignored). Raises `CliError`
    (`ExitCode.USAGE`) when the file cannot be read or is empty, or when there is no user name; the
    message never holds the password.
    """
    if file is not None:
        return PasswordSource.FILE, _checked(_from_file(file), username, f"the password file {file!r}")
    if prompt:
        return PasswordSource.PROMPT, _checked(_from_prompt(username), username, "the prompt")
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return PasswordSource.ENV, _checked(from_env, username, f"${PASSWORD_ENV}")
    return PasswordSource.URL, None


def _from_prompt(username: str | None) -> str:
    who = f" for {username}" if username else ""
    with warnings.catch_warnings():
        # Without a terminal getpass would read stdin with echo on, after a warning: refuse instead.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(f"MQTT password{who}: ")
        except getpass.GetPassWarning as exc:
            raise CliError(
                ExitCode.USAGE, "--password-prompt needs a terminal (use --password-file PATH in scripts)"
            ) from exc
        except EOFError as exc:
            raise CliError(ExitCode.USAGE, "--password-prompt: no password was typed (end of input)") from exc


def _from_file(name: str) -> str:
    path = Path(name)
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        # The cause names only the path and the OS error (the content was never read).
        raise CliError(
            ExitCode.USAGE, f"cannot read the password file {name!r}: {exc.strerror or exc}"
        ) from exc
    if len(data) > _MAX_BYTES:
        raise CliError(
            ExitCode.USAGE, f"the password file {name!r} is larger than 64 KiB: is it the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # No cause: a UnicodeDecodeError holds the bytes it failed on, i.e. part of the password.
        raise CliError(ExitCode.USAGE, f"the password file {name!r} is not UTF-8 text") from None
    line, _, _ = text.partition("\n")
    return line.removesuffix("\r")


def _checked(password: str, username: str | None, where: str) -> str:
    if not password:
        raise CliError(ExitCode.USAGE, f"the password from {where} is empty")
    if not username:
        raise CliError(
            ExitCode.USAGE,
            f"a password (from {where}) needs a user name in the URL: mqtt://USER@host[:port]",
        )
    return password
