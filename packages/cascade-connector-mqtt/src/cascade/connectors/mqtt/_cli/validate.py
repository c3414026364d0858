"""Checks on operator input, done before anything touches the network.

Each checker returns the normalised value or raises `CliError` with `ExitCode.USAGE` and a message
that says what is wrong and what is expected.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_URL",
    "URL_ENV",
    "check_scope",
    "check_rate",
    "check_ttl",
    "check_concurrency",
    "check_timeout",
    "check_name",
    "url_password",
    "url_username",
    "display_url",
]

import math
from urllib.parse import SplitResult, urlsplit

from cascade.connectors.protocol import SchemaError, TopicError, parse_rate, validate_scope, validate_topic

from .exitcodes import CliError, ExitCode

DEFAULT_URL = "mqtt://localhost:1883"
URL_ENV = "CASCADE_MQTT_URL"

_FORBIDDEN_IN_NAME = ("/", "+", "#", "\x00")


def check_scope(scope: str) -> str:
    """A valid constraint scope: ``global``, ``task:NAME``, ``project:NAME`` (any ``kind:name``)."""
    try:
        return validate_scope(scope)
    except TopicError as exc:
        raise CliError(
            ExitCode.USAGE,
            f"invalid scope {_short(scope)!r}: {exc.problem} (use 'global', 'task:NAME' or 'project:NAME')",
        ) from exc


def check_rate(rate: str) -> str:
    """A valid rate such as ``10/s``, ``5/m`` or ``100/h`` (returned stripped)."""
    try:
        parse_rate(rate)
    except SchemaError as exc:
        raise CliError(
            ExitCode.USAGE, f"invalid rate {_short(rate)!r}: use N/s, N/m or N/h with N > 0 (e.g. 10/s)"
        ) from exc
    return rate.strip()


def check_ttl(text: str) -> float:
    """A time to live in seconds: a finite number > 0."""
    return _positive_seconds(text, "TTL")


def check_timeout(text: str) -> float:
    """A network timeout in seconds: a finite number > 0."""
    return _positive_seconds(text, "timeout")


def _positive_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise CliError(
            ExitCode.USAGE, f"invalid {what} {_short(text)!r}: give a number of seconds > 0 (e.g. 60)"
        ) from exc
    if not math.isfinite(value) or value <= 0:
        raise CliError(ExitCode.USAGE, f"invalid {what} {_short(text)!r}: must be a number of seconds > 0")
    return value


def check_concurrency(text: str) -> int:
    """A concurrency limit: an integer >= 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise CliError(
            ExitCode.USAGE, f"invalid concurrency {_short(text)!r}: give a whole number >= 1"
        ) from exc
    if value < 1:
        raise CliError(ExitCode.USAGE, f"invalid concurrency {value}: must be >= 1")
    return value


def check_name(value: str, what: str) -> str:
    """A project or run name usable as one topic level (non-empty, no ``/ + #`` or NUL)."""
    if not value:
        raise CliError(ExitCode.USAGE, f"invalid {what}: must not be empty")
    for ch in _FORBIDDEN_IN_NAME:
        if ch in value:
            raise CliError(ExitCode.USAGE, f"invalid {what} {_short(value)!r}: must not contain {ch!r}")
    try:
        validate_topic(value)  # the shared grammar: control characters, non-characters, surrogates
    except TopicError as exc:
        raise CliError(ExitCode.USAGE, f"invalid {what}: {exc.problem}") from exc
    return value


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts


def url_password(url: str) -> str | None:
    """The password in `url`, if any (so that it can be kept out of every message)."""
    parts = _split(url)
    if parts is None:
        # Unparseable: guess the password as whatever sits between "user:" and "@".
        netloc = url.split("://", 1)[-1].split("/", 1)[0]
        if "@" in netloc:
            userinfo = netloc.rsplit("@", 1)[0]
            if ":" in userinfo:
                return userinfo.split(":", 1)[1] or None
        return None
    return parts.password or None


def url_username(url: str) -> str | None:
    """The user name in `url`, if any."""
    parts = _split(url)
    if parts is None:
        netloc = url.split("://", 1)[-1].split("/", 1)[0]
        return netloc.rsplit("@", 1)[0].split(":", 1)[0] or None if "@" in netloc else None
    return parts.username or None


def display_url(url: str) -> str:
    """`url` fit to show: the password masked, the query dropped."""
    parts = _split(url)
    if parts is None or not parts.scheme or not parts.hostname:
        password = url_password(url)
        return _short(url.replace(password, "***") if password else url)
    userinfo = ""
    if parts.username is not None:
        userinfo = parts.username + (":***" if parts.password is not None else "") + "@"
    hosts = parts.netloc.rpartition("@")[2].split("?")[0]
    if "," in hosts:  # several brokers: mqtt://h1:p1,h2:p2
        return f"{parts.scheme}://{userinfo}{hosts}"
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{userinfo}{host}{port}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
