"""Cascade's topic grammar and the single MQTT 3.1.1 (§4.7) topic matcher.

Every package validates and matches topics through this module; nothing else re-implements it.

==============================  ==================================================
``telemetry_topic(o, p, r)``    ``cascade/telemetry/{o}/{p}/{r}/events``
``TELEMETRY_FILTER``            ``cascade/telemetry/+/+/+/events``
``constraint_topic(scope)``     ``cascade/constraints/{scope with ':' as '/'}``
``CONSTRAINTS_FILTER``          ``cascade/constraints/#``
``status_topic(source)``        ``cascade/status/{source}``
``STATUS_FILTER``               ``cascade/status/+``
==============================  ==================================================
"""

from __future__ import annotations

__all__ = [
    "TELEMETRY_FILTER",
    "CONSTRAINTS_FILTER",
    "STATUS_FILTER",
    "MAX_TOPIC_BYTES",
    "telemetry_topic",
    "constraint_topic",
    "scope_from_topic",
    "status_topic",
    "source_from_status_topic",
    "validate_scope",
    "validate_topic",
    "validate_filter",
    "topic_matches",
]

import re
from typing import Final

from .errors import TopicError

MAX_TOPIC_BYTES = 65535
"""The MQTT limit on a topic name or filter, in UTF-8 bytes."""

TELEMETRY_FILTER = "cascade/telemetry/+/+/+/events"
CONSTRAINTS_FILTER = "cascade/constraints/#"
STATUS_FILTER = "cascade/status/+"

_CONSTRAINTS_PREFIX = "cascade/constraints/"
_STATUS_PREFIX = "cascade/status/"

# Code points MQTT 5 §1.5.4 forbids (and Mosquitto disconnects a client for): C0 controls and DEL,
# C1 controls, lone surrogates (a str can hold them; UTF-8 cannot), and the Unicode non-characters
# U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of all 17 planes. `re` matches a class of BMP code points with
# one table lookup per character, but a class that also holds the 32 astral non-characters cost about
# 9x more per character here: so the BMP ones are one class, and the astral ones are found by a second
# pass over astral characters only, run only for text that is not ASCII.
_REFUSED_BMP: Final = r"\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
_REFUSED: Final = re.compile(f"[{_REFUSED_BMP}]")
_REFUSED_IN_NAME: Final = re.compile(f"[+#{_REFUSED_BMP}]")
_REFUSED_IN_PART: Final = re.compile(f"[/+#{_REFUSED_BMP}]")
_ASTRAL: Final = re.compile(r"[\U00010000-\U0010ffff]")
# A str of at most this many code points is at most MAX_TOPIC_BYTES in UTF-8 (4 bytes each at most).
_SURELY_SHORT: Final = MAX_TOPIC_BYTES // 4


def _first_refused(value: str, pattern: re.Pattern[str]) -> int:
    """The index of the first character of `value` that `pattern` or the astral rule refuses, or -1."""
    found = pattern.search(value)
    index = found.start() if found is not None else -1
    if not value.isascii():
        end = index if index >= 0 else len(value)
        for astral in _ASTRAL.finditer(value, 0, end):
            if ord(astral.group()) & 0xFFFE == 0xFFFE:
                return astral.start()
    return index


def _describe(code: int) -> str:
    if code == 0:
        return "NUL, a control character"
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "a control character"
    if 0xD800 <= code <= 0xDFFF:
        return "a lone surrogate, not encodable as UTF-8"
    return "a Unicode non-character"


def _refused(value: str, index: int, kind: str) -> TopicError:
    code = ord(value[index])
    return TopicError(
        value,
        f"contains U+{code:04X} ({_describe(code)}) at index {index}, which MQTT forbids: "
        "remove or replace it",
        kind=kind,
    )


def _check_length(value: str, kind: str) -> None:
    # Callers refuse lone surrogates first, so the encoding cannot fail.
    if len(value) <= _SURELY_SHORT:
        return
    size = len(value.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        raise TopicError(value, f"is {size} UTF-8 bytes, more than {MAX_TOPIC_BYTES}", kind=kind)


def validate_topic(name: str) -> str:
    """Return `name` if it is a valid MQTT topic name to publish to, else raise `TopicError`.

    Valid: a non-empty str of at most 65535 UTF-8 bytes with no ``+`` or ``#``, no control character
    (U+0000..U+001F, U+007F..U+009F), no Unicode non-character and no lone surrogate. Spaces and
    letters of any script are fine.
    """
    if not isinstance(name, str):
        raise TopicError(repr(name), f"must be a str, not {type(name).__name__}")
    if not name:
        raise TopicError(name, "must not be empty")
    index = _first_refused(name, _REFUSED_IN_NAME)
    if index >= 0:
        if name[index] in "+#":
            raise TopicError(name, "wildcards '+' and '#' are only allowed in subscription filters")
        raise _refused(name, index, "topic")
    _check_length(name, "topic")
    return name


def validate_filter(topic_filter: str) -> str:
    """Return `topic_filter` if it is a valid MQTT subscription filter, else raise `TopicError`.

    ``#`` may only be the whole last level, ``+`` only a whole level; the characters refused in topic
    names (see `validate_topic`) are refused here too.
    """
    kind = "filter"
    if not isinstance(topic_filter, str):
        raise TopicError(repr(topic_filter), f"must be a str, not {type(topic_filter).__name__}", kind=kind)
    if not topic_filter:
        raise TopicError(topic_filter, "must not be empty", kind=kind)
    index = _first_refused(topic_filter, _REFUSED)
    if index >= 0:
        raise _refused(topic_filter, index, kind)
    if "+" in topic_filter or "#" in topic_filter:
        levels = topic_filter.split("/")
        last = len(levels) - 1
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != last):
                raise TopicError(topic_filter, "'#' must be the whole last level", kind=kind)
            if "+" in level and level != "+":
                raise TopicError(topic_filter, "'+' must be a whole level", kind=kind)
    _check_length(topic_filter, kind)
    return topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether `topic` matches `topic_filter` under MQTT 3.1.1 §4.7.

    ``sport/#`` matches ``sport``; ``+`` matches an empty level; filters starting with ``+`` or ``#``
    do not match topics starting with ``$``. Raises `TopicError` if either argument is invalid.
    """
    validate_filter(topic_filter)
    validate_topic(topic)
    if topic.startswith("$") and topic_filter[0] in "+#":
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    n_topic = len(t_levels)
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= n_topic:
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == n_topic


def _check_segment(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TopicError(repr(value), f"{what} must be a str, not {type(value).__name__}", kind=what)
    if not value:
        raise TopicError(value, "must not be empty", kind=what)
    _check_part_characters(value, what)
    return value


def _check_part_characters(value: str, kind: str) -> None:
    index = _first_refused(value, _REFUSED_IN_PART)
    if index < 0:
        return
    if value[index] in "/+#":
        raise TopicError(value, f"must not contain {value[index]!r}", kind=kind)
    raise _refused(value, index, kind)


def telemetry_topic(org_id: str, project_id: str, run_id: str) -> str:
    """``cascade/telemetry/{org_id}/{project_id}/{run_id}/events``.

    Each part must be non-empty, without ``/ + #`` or a character `validate_topic` refuses, else
    `TopicError`.
    """
    _check_segment(org_id, "org_id")
    _check_segment(project_id, "project_id")
    _check_segment(run_id, "run_id")
    return validate_topic(f"cascade/telemetry/{org_id}/{project_id}/{run_id}/events")


def validate_scope(scope: str) -> str:
    """Return `scope` if valid, else raise `TopicError`.

    A scope is ``global`` or ``kind:name[:name...]`` (for example ``task:api_call``,
    ``project:etl``), every part non-empty, not whitespace only, and free of ``/ + #`` and of the
    characters `validate_topic` refuses, so that a scope can never inject extra topic levels or
    wildcards, nor get its client disconnected by the broker. The kind ``global`` is reserved:
    ``global:x`` is refused, since it would read as global but cover nothing.
    """
    if not isinstance(scope, str):
        raise TopicError(repr(scope), f"scope must be a str, not {type(scope).__name__}", kind="scope")
    if scope == "global":
        return scope
    parts = scope.split(":")
    if len(parts) < 2:
        raise TopicError(scope, "must be 'global' or 'kind:name' (for example 'task:api_call')", kind="scope")
    if parts[0] == "global":
        raise TopicError(scope, "the kind 'global' is reserved: use 'global' alone", kind="scope")
    _check_part_characters(scope, "scope")
    for part in parts:
        if not part:
            raise TopicError(scope, "every ':'-separated part must be non-empty", kind="scope")
        if part.isspace():
            raise TopicError(
                scope, f"the part {part!r} is whitespace only: every part needs a visible name", kind="scope"
            )
    _check_length(_CONSTRAINTS_PREFIX + scope, "scope")
    return scope


def constraint_topic(scope: str) -> str:
    """The retained topic of `scope`'s constraint: ``task:api_call`` → ``cascade/constraints/task/api_call``.

    Raises `TopicError` for an invalid scope (see `validate_scope`).
    """
    validate_scope(scope)
    return _CONSTRAINTS_PREFIX + scope.replace(":", "/")


def scope_from_topic(topic: str) -> str:
    """The inverse of `constraint_topic`; raises `TopicError` if `topic` is not a constraint topic."""
    validate_topic(topic)
    if not topic.startswith(_CONSTRAINTS_PREFIX):
        raise TopicError(topic, f"is not a constraint topic (must start with {_CONSTRAINTS_PREFIX!r})")
    rest = topic[len(_CONSTRAINTS_PREFIX) :]
    if ":" in rest:
        raise TopicError(topic, "a constraint topic level must not contain ':'")
    try:
        return validate_scope(rest.replace("/", ":"))
    except TopicError as exc:
        raise TopicError(topic, f"does not name a valid scope ({exc.problem})") from exc


def status_topic(source: str) -> str:
    """``cascade/status/{source}``, where presence (`StatusMessage`) is retained.

    `source` must be non-empty, without ``/ + #`` or a character `validate_topic` refuses, else
    `TopicError`.
    """
    _check_segment(source, "source")
    return validate_topic(_STATUS_PREFIX + source)


def source_from_status_topic(topic: str) -> str:
    """The inverse of `status_topic`; raises `TopicError` if `topic` is not a status topic."""
    validate_topic(topic)
    if not topic.startswith(_STATUS_PREFIX) or "/" in topic[len(_STATUS_PREFIX) :]:
        raise TopicError(topic, "is not a status topic (cascade/status/{source})")
    return _check_segment(topic[len(_STATUS_PREFIX) :], "source")
