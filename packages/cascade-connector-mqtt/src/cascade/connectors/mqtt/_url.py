"""Parsing ``mqtt://`` and ``mqtts://`` URLs into `MqttConnector` settings (no secrets in errors).

No part of a password reaches an error: not its message, not its ``__cause__`` or ``__context__``.
The user name and password are read as RFC 3986 says (the authority ends at the first ``/``, ``?``
or ``#``; the user information at its last ``@``), and anything that would make a raw password spill
into the host, port, path, query or fragment is refused with a hint to percent-encode it.
"""

from __future__ import annotations

__all__ = ["InvalidUrlError", "parse_url", "redact_url"]

import contextlib
import re
import ssl
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import SplitResult, parse_qsl, unquote_to_bytes, urlsplit

from cascade.connectors.protocol import ConnectorError


class InvalidUrlError(ConnectorError, ValueError):
    """A connection URL that cannot be used. `url` is the URL with its password replaced by ``***``;
    `problem` says what is wrong.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        shown = f" {url!r}" if url else ""
        super().__init__(f"invalid MQTT URL{shown}: {problem}")


def _int(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def _float(text: str) -> float:
    if not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text):
        raise ValueError(f"{text!r} is not a number of seconds")
    return float(text)


def _expiry(text: str) -> float | None:
    return None if text in ("", "none", "never") else _float(text)


def _text(text: str) -> str:
    return text


_OPTIONS: Final[dict[str, Callable[[str], Any]]] = {
    "protocol": _text,
    "sync_topic": _text,
    "client_id": _text,
    "source": _text,
    "keepalive": _int,
    "max_buffered": _int,
    "max_inbound": _int,
    "max_inbound_packet_size": _int,
    "presence_expiry": _expiry,
    "reconnect_min_delay": _float,
    "reconnect_max_delay": _float,
    "connect_timeout": _float,
    "flush_timeout": _float,
}
_TLS_OPTIONS: Final = ("ca_file", "cert_file", "key_file")
_SCHEMES: Final = {"mqtt": 1883, "mqtts": 8883}


def redact_url(url: object) -> str:
    """`url` with any password replaced by ``***``.

    Works on URLs that do not parse too (a raw ``#`` or ``?`` in a password): everything between the
    first ``:`` of the authority and the last ``@`` of the URL is hidden, erring on the side of hiding.
    """
    if not isinstance(url, str):
        return ""
    at = url.rfind("@")
    if at < 0:
        return url
    scheme_end = url.find("://")
    start = scheme_end + 3 if 0 <= scheme_end < at else 0
    colon = url.find(":", start, at)
    if colon < 0:
        return url
    return f"{url[: colon + 1]}***{url[at:]}"


_ENCODE_HINT: Final = (
    "percent-encode the user name and password (%2F for /, %3F for ?, %23 for #, %40 for @, %25 for %, "
    "%5B %5D for [ ]; urllib.parse.quote(password, safe='') does it)"
)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _secret_part(url: str) -> str:
    """The text `redact_url` hides: everything that could be part of a password."""
    shown = redact_url(url)
    if shown == url:
        return ""
    start = shown.index("***")
    return url[start : len(url) - (len(shown) - start - 3)]


def parse_url(url: object) -> dict[str, Any]:
    """The `MqttConnector` keyword arguments described by `url`; raises `InvalidUrlError`.

    A user name or password holding ``/ ? # @ % [ ]`` must be percent-encoded (the error says so).
    No error shows any part of the password, nor has an exception that does as its cause or context.
    """
    if not isinstance(url, str):
        raise InvalidUrlError("", f"must be a str, not {type(url).__name__}")
    shown = redact_url(url)
    _check_userinfo(url, shown)
    url, more_hosts = _host_list(url)
    # From here on the user information lies inside the authority, before its last '@': the host,
    # port, path, query and fragment that messages may quote hold no part of the password.
    parts = _split(url, shown)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        found = f"{parts.scheme!r}" if parts.scheme else "none"
        raise InvalidUrlError(shown, f"the scheme must be mqtt:// or mqtts://, not {found}")
    host = parts.hostname
    if not host:
        raise InvalidUrlError(shown, "no host name (expected mqtt://host[:port])")
    port = _port(parts, shown) or _SCHEMES[scheme]
    if parts.path not in ("", "/"):
        raise InvalidUrlError(
            shown, f"unexpected path {parts.path!r} (options go in the query: ?option=value)"
        )
    if parts.fragment:
        raise InvalidUrlError(shown, "unexpected '#fragment'")
    options: dict[str, Any] = {"hostname": host, "port": port}
    if more_hosts:
        others = [_other_host(item, _SCHEMES[scheme], shown) for item in more_hosts]
        options["addresses"] = [(host, port), *others]
    username = _decoded(parts.username, "user name", shown)
    password = _decoded(parts.password, "password", shown)
    if username == "" and password is not None:
        raise InvalidUrlError(shown, "a password needs a user name (mqtt://user:password@host)")
    if username:
        options["username"] = username
        options["password"] = password
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise InvalidUrlError(shown, f"malformed query string ({exc})") from exc
    tls_files: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in query:
        if name in seen:
            raise InvalidUrlError(shown, f"option {name!r} is given twice")
        seen.add(name)
        if not value:
            raise InvalidUrlError(shown, f"option {name!r} has no value")
        if name in _TLS_OPTIONS:
            if scheme != "mqtts":
                raise InvalidUrlError(shown, f"option {name!r} needs an mqtts:// URL")
            tls_files[name] = value
            continue
        convert = _OPTIONS.get(name)
        if convert is None:
            known = ", ".join(sorted([*_OPTIONS, *_TLS_OPTIONS]))
            raise InvalidUrlError(shown, f"unknown option {name!r} (known: {known})")
        try:
            options[name] = convert(value)
        except ValueError as exc:
            raise InvalidUrlError(shown, f"option {name!r}: {exc}") from exc
    if scheme == "mqtts":
        options["tls"] = _tls_context(tls_files, shown)
    return options


def _host_list(url: str) -> tuple[str, list[str]]:
    """Split ``scheme://[userinfo@]h1:p1,h2:p2...`` into the URL with only ``h1:p1`` and the other hosts."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url, []
    start = scheme_end + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?#"), len(url))
    at = url.rfind("@", start, end)
    hosts_start = at + 1 if at >= 0 else start
    hosts = url[hosts_start:end]
    if "," not in hosts:
        return url, []
    first, *others = hosts.split(",")
    return url[:hosts_start] + first + url[end:], others


def _other_host(item: str, default_port: int, shown: str) -> tuple[str, int]:
    """(host, port) of one further entry of a host list (``host``, ``host:port`` or ``[v6]:port``)."""
    if not item:
        raise InvalidUrlError(shown, "an empty entry in the host list (expected host1[:port1],host2[:port2])")
    try:
        parts = urlsplit(f"mqtt://{item}")
    except ValueError as exc:
        raise InvalidUrlError(shown, f"host list entry {item!r} cannot be parsed ({exc})") from exc
    if not parts.hostname or parts.username is not None or parts.path:
        raise InvalidUrlError(shown, f"host list entry {item!r} is not host[:port]")
    return parts.hostname, _port(parts, shown) or default_port


def _check_userinfo(url: str, shown: str) -> None:
    """Refuse what would let a raw password spill out of the authority, or decode to something else."""
    if _CONTROL.search(url):
        raise InvalidUrlError(shown, "contains a control character (a tab, a newline ...): remove it")
    scheme_end = url.find("://")
    if scheme_end < 0:
        return
    start = scheme_end + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?#"), len(url))
    if "@" in url[end:]:
        raise InvalidUrlError(
            shown,
            f"has an '@' after the host: if the user name or password holds / ? # or @, {_ENCODE_HINT}; "
            "in an option value, write %40",
        )
    userinfo = url[start:end].rpartition("@")[0]
    if "[" in userinfo or "]" in userinfo:
        raise InvalidUrlError(shown, f"the user name or password holds '[' or ']': {_ENCODE_HINT}")
    if _BAD_PERCENT.search(userinfo):
        raise InvalidUrlError(
            shown, f"the user name or password holds a '%' that starts no percent-encoding: {_ENCODE_HINT}"
        )


def _decoded(text: str | None, what: str, shown: str) -> str | None:
    if text is None:
        return None
    data = unquote_to_bytes(text)
    with contextlib.suppress(UnicodeDecodeError):  # not chained below: it holds the secret's bytes
        return data.decode("utf-8")
    raise InvalidUrlError(shown, f"the {what} is not UTF-8 once percent-decoded: {_ENCODE_HINT}")


def _split(url: str, shown: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:
        # urllib's message may quote the whole authority, password included (a character that NFKC
        # turns into '/', '@' ...): then neither its message nor the error itself goes any further.
        if not _secret_part(url) or str(exc) == "Invalid IPv6 URL":
            raise InvalidUrlError(shown, f"cannot be parsed ({exc})") from exc
    # Raised outside the except block, so that the error quoting the password is not its context.
    raise InvalidUrlError(shown, f"cannot be parsed (urllib's reason may hold the password); {_ENCODE_HINT}")


def _port(parts: SplitResult, shown: str) -> int | None:
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidUrlError(shown, "the port must be a number between 1 and 65535") from exc
    if port == 0:
        raise InvalidUrlError(shown, "the port must be a number between 1 and 65535")
    return port


def _tls_context(files: dict[str, str], shown: str) -> ssl.SSLContext:
    if "key_file" in files and "cert_file" not in files:
        raise InvalidUrlError(shown, "option 'key_file' needs 'cert_file'")
    try:
        context = ssl.create_default_context(cafile=files.get("ca_file"))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidUrlError(
            shown, f"option 'ca_file': cannot load {files.get('ca_file')!r} ({exc})"
        ) from exc
    if "cert_file" in files:
        try:
            context.load_cert_chain(files["cert_file"], files.get("key_file"))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidUrlError(
                shown, f"option 'cert_file': cannot load the client certificate ({exc})"
            ) from exc
    return context
