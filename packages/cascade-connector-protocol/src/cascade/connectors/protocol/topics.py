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

from .errors import TopicError

MAX_TOPIC_BYTES = 65535
"""The MQTT limit on a topic name or filter, in UTF-8 bytes."""

TELEMETRY_FILTER = "cascade/telemetry/+/+/+/events"
CONSTRAINTS_FILTER = "cascade/constraints/#"
STATUS_FILTER = "cascade/status/+"

_CONSTRAINTS_PREFIX = "cascade/constraints/"
_STATUS_PREFIX = "cascade/status/"
_FORBIDDEN_IN_SEGMENT = ("/", "+", "#", "\x00")


def _check_length(value: str, kind: str) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise TopicError(value, "is not encodable as UTF-8", kind=kind) from exc
    if size > MAX_TOPIC_BYTES:
        raise TopicError(value, f"is {size} UTF-8 bytes, more than {MAX_TOPIC_BYTES}", kind=kind)


def validate_topic(name: str) -> str:
    """Return `name` if it is a valid MQTT topic name to publish to, else raise `TopicError`.

    Valid: a non-empty str of at most 65535 UTF-8 bytes with no ``+``, ``#`` or NUL.
    """
    if not isinstance(name, str):
        raise TopicError(repr(name), f"must be a str, not {type(name).__name__}")
    if not name:
        raise TopicError(name, "must not be empty")
    if "\x00" in name:
        raise TopicError(name, "must not contain NUL")
    if "+" in name or "#" in name:
        raise TopicError(name, "wildcards '+' and '#' are only allowed in subscription filters")
    _check_length(name, "topic")
    return name


def validate_filter(topic_filter: str) -> str:
    """Return `topic_filter` if it is a valid MQTT subscription filter, else raise `TopicError`.

    ``#`` may only be the whole last level, ``+`` only a whole level.
    """
    kind = "filter"
    if not isinstance(topic_filter, str):
        raise TopicError(repr(topic_filter), f"must be a str, not {type(topic_filter).__name__}", kind=kind)
    if not topic_filter:
        raise TopicError(topic_filter, "must not be empty", kind=kind)
    if "\x00" in topic_filter:
        raise TopicError(topic_filter, "must not contain NUL", kind=kind)
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
    for ch in _FORBIDDEN_IN_SEGMENT:
        if ch in value:
            raise TopicError(value, f"must not contain {ch!r}", kind=what)
    return value


def telemetry_topic(org_id: str, project_id: str, run_id: str) -> str:
    """``cascade/telemetry/{org_id}/{project_id}/{run_id}/events``.

    Each part must be non-empty without ``/ + #`` or NUL, else `TopicError`.
    """
    _check_segment(org_id, "org_id")
    _check_segment(project_id, "project_id")
    _check_segment(run_id, "run_id")
    return validate_topic(f"cascade/telemetry/{org_id}/{project_id}/{run_id}/events")


def validate_scope(scope: str) -> str:
    """Return `scope` if valid, else raise `TopicError`.

    A scope is ``global`` or ``kind:name[:name...]`` (for example ``task:api_call``,
    ``project:etl``), every part non-empty and free of ``/ + #`` and NUL, so that a scope can never
    inject extra topic levels or wildcards. The kind ``global`` is reserved: ``global:x`` is refused,
    since it would read as global but cover nothing.
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
    for part in parts:
        if not part:
            raise TopicError(scope, "every ':'-separated part must be non-empty", kind="scope")
        for ch in _FORBIDDEN_IN_SEGMENT:
            if ch in part:
                raise TopicError(scope, f"must not contain {ch!r}", kind="scope")
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

    `source` must be non-empty without ``/ + #`` or NUL, else `TopicError`.
    """
    _check_segment(source, "source")
    return validate_topic(_STATUS_PREFIX + source)


def source_from_status_topic(topic: str) -> str:
    """The inverse of `status_topic`; raises `TopicError` if `topic` is not a status topic."""
    validate_topic(topic)
    if not topic.startswith(_STATUS_PREFIX) or "/" in topic[len(_STATUS_PREFIX) :]:
        raise TopicError(topic, "is not a status topic (cascade/status/{source})")
    return _check_segment(topic[len(_STATUS_PREFIX) :], "source")
