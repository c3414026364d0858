"""Topic names, filters, MQTT 3.1.1 §4.7 matching and Cascade's topic helpers."""

from __future__ import annotations

from typing import Any

import pytest
from cascade.connectors.protocol import (
    CONSTRAINTS_FILTER,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    TopicError,
    constraint_topic,
    scope_from_topic,
    source_from_status_topic,
    status_topic,
    telemetry_topic,
    topic_matches,
    validate_filter,
    validate_scope,
    validate_topic,
)
from cascade.connectors.protocol.topics import MAX_TOPIC_BYTES

# --- topic names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "a/b/c", "/", "//", "/a", "a/", "$SYS/broker", "sport/tennis/player1", "héllo/wörld", " ", "a b"],
)
def test_valid_topic_names_are_returned_unchanged(name: str) -> None:
    assert validate_topic(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("a/+/b", "wildcards"),
        ("+", "wildcards"),
        ("a/#", "wildcards"),
        ("#", "wildcards"),
        ("a+b", "wildcards"),
        ("a#b", "wildcards"),
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
    ],
)
def test_invalid_topic_names_raise_topic_error(name: str, problem: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_topic(name)
    assert problem in info.value.problem
    assert info.value.value == name
    assert info.value.kind == "topic"


@pytest.mark.parametrize("value", [None, 1, b"a/b", ["a"], 1.5])
def test_non_str_topic_raises_topic_error(value: Any) -> None:
    with pytest.raises(TopicError) as info:
        validate_topic(value)
    assert "must be a str" in info.value.problem
    assert info.value.value == repr(value)


def test_topic_length_limit_is_in_utf8_bytes() -> None:
    assert validate_topic("a" * MAX_TOPIC_BYTES) == "a" * MAX_TOPIC_BYTES
    with pytest.raises(TopicError, match="65536 UTF-8 bytes"):
        validate_topic("a" * (MAX_TOPIC_BYTES + 1))


def test_topic_length_counts_multibyte_characters_by_their_bytes() -> None:
    # "é" is 2 bytes, "€" 3 bytes, "😀" 4 bytes in UTF-8.
    fits = "é" * (MAX_TOPIC_BYTES // 2) + "a"  # 65535 bytes, 32768 characters
    assert len(fits.encode()) == MAX_TOPIC_BYTES
    assert validate_topic(fits) == fits
    too_long = "é" * (MAX_TOPIC_BYTES // 2 + 1)  # 65536 bytes but only 32768 characters
    assert len(too_long) < MAX_TOPIC_BYTES
    with pytest.raises(TopicError, match="UTF-8 bytes"):
        validate_topic(too_long)
    with pytest.raises(TopicError):
        validate_topic("€" * (MAX_TOPIC_BYTES // 3 + 1))
    with pytest.raises(TopicError):
        validate_topic("😀" * (MAX_TOPIC_BYTES // 4 + 1))
    assert validate_topic("😀" * (MAX_TOPIC_BYTES // 4)) is not None


def test_topic_that_is_not_utf8_encodable_is_refused() -> None:
    with pytest.raises(TopicError, match="UTF-8"):
        validate_topic("a/\ud800")


def test_topic_error_message_shortens_long_values() -> None:
    with pytest.raises(TopicError) as info:
        validate_topic("x" * 200 + "#")
    assert len(str(info.value)) < 200
    assert info.value.value == "x" * 200 + "#"


# --- filters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+",
        "a",
        "a/#",
        "a/+",
        "+/a",
        "+/+",
        "/+",
        "+/",
        "a/+/b/#",
        "+/+/+/#",
        "/",
        "$SYS/#",
        TELEMETRY_FILTER,
        CONSTRAINTS_FILTER,
        STATUS_FILTER,
    ],
)
def test_valid_filters_are_returned_unchanged(topic_filter: str) -> None:
    assert validate_filter(topic_filter) == topic_filter


@pytest.mark.parametrize(
    ("topic_filter", "problem"),
    [
        ("a/#/b", "'#' must be the whole last level"),
        ("#/a", "'#' must be the whole last level"),
        ("#/", "'#' must be the whole last level"),
        ("a#", "'#' must be the whole last level"),
        ("a/b#", "'#' must be the whole last level"),
        ("#a", "'#' must be the whole last level"),
        ("##", "'#' must be the whole last level"),
        ("a/#/#", "'#' must be the whole last level"),
        ("a+/b", "'+' must be a whole level"),
        ("+a", "'+' must be a whole level"),
        ("a/b+", "'+' must be a whole level"),
        ("++", "'+' must be a whole level"),
        ("a/+b/c", "'+' must be a whole level"),
        ("+#", "'#' must be the whole last level"),
        ("", "must not be empty"),
        ("a/\x00", "NUL"),
    ],
)
def test_invalid_filters_raise_topic_error(topic_filter: str, problem: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_filter(topic_filter)
    assert info.value.problem == problem or problem in info.value.problem
    assert info.value.kind == "filter"


@pytest.mark.parametrize("value", [None, 3, b"#"])
def test_non_str_filter_raises_topic_error(value: Any) -> None:
    with pytest.raises(TopicError) as info:
        validate_filter(value)
    assert info.value.kind == "filter"


def test_filter_length_limit_is_in_utf8_bytes() -> None:
    assert validate_filter("+/" + "a" * (MAX_TOPIC_BYTES - 2))
    with pytest.raises(TopicError, match="UTF-8 bytes"):
        validate_filter("+/" + "é" * (MAX_TOPIC_BYTES // 2))


# --- matching: every example of MQTT 3.1.1 §4.7 -------------------------------------------------------

# (filter, topic, matches)
SPEC_EXAMPLES = [
    # 4.7.1.2 multi-level wildcard
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport", True),
    ("#", "sport/tennis/player1", True),
    ("#", "/", True),
    ("sport/tennis/#", "sport/tennis", True),
    ("sport/tennis/#", "sport/tennisplayer1", False),
    # 4.7.1.3 single-level wildcard
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+", "sport", True),
    ("+/tennis/#", "sport/tennis", True),
    ("+/tennis/#", "sport/tennis/player1", True),
    ("+/tennis/#", "sport/golf", False),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    # 4.7.2 topics beginning with $
    ("#", "$SYS", False),
    ("#", "$SYS/broker/clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("+", "$SYS", False),
    ("+/+", "$SYS/x", False),
    # a $ that is not the first character is an ordinary character
    ("+/$x", "a/$x", True),
    ("a/+", "a/$x", True),
    ("a/#", "a/$x/y", True),
    # 4.7.3 topic semantics: levels are exact and case-sensitive, empty levels count
    ("sport", "Sport", False),
    ("sport/tennis", "sport/tennis/", False),
    ("sport/tennis/", "sport/tennis/", True),
    ("/", "/", True),
    ("+/+", "/", True),
    ("+", "/", False),
    ("/#", "/", True),
    ("/#", "/a/b", True),
    ("+/#", "/", True),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("a/+/b", "a/b", False),
    ("a", "a/b", False),
    ("a/b", "a", False),
    ("a/b/c", "a/b/c", True),
    ("a/#", "b", False),
    ("a/b/#", "a", False),
    # Cascade's own filters
    (TELEMETRY_FILTER, "cascade/telemetry/local/default/r1/events", True),
    (TELEMETRY_FILTER, "cascade/telemetry/local/default/events", False),
    (CONSTRAINTS_FILTER, "cascade/constraints/task/api_call", True),
    (CONSTRAINTS_FILTER, "cascade/constraints", True),
    (STATUS_FILTER, "cascade/status/worker-1", True),
    (STATUS_FILTER, "cascade/status/worker-1/x", False),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), SPEC_EXAMPLES)
def test_topic_matches_follows_mqtt_3_1_1(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


def test_topic_matches_validates_both_arguments() -> None:
    with pytest.raises(TopicError) as info:
        topic_matches("a/#/b", "a/x/b")
    assert info.value.kind == "filter"
    with pytest.raises(TopicError) as info:
        topic_matches("#", "a/+")
    assert info.value.kind == "topic"
    with pytest.raises(TopicError):
        topic_matches("#", "")


# --- scopes and constraint topics --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "topic"),
    [
        ("global", "cascade/constraints/global"),
        ("task:api_call", "cascade/constraints/task/api_call"),
        ("project:etl", "cascade/constraints/project/etl"),
        ("team:data:eu", "cascade/constraints/team/data/eu"),
        ("task:ns:job", "cascade/constraints/task/ns/job"),
        ("task:$x", "cascade/constraints/task/$x"),
        ("task:日本", "cascade/constraints/task/日本"),
    ],
)
def test_constraint_topic_round_trip(scope: str, topic: str) -> None:
    assert validate_scope(scope) == scope
    assert constraint_topic(scope) == topic
    assert scope_from_topic(topic) == scope
    assert topic_matches(CONSTRAINTS_FILTER, topic)


@pytest.mark.parametrize(
    "scope",
    [
        "task:a/b",  # would inject a level
        "task:#",  # would inject a wildcard
        "task:+",
        "task:a+",
        "task:a#b",
        "global/x",
        "global/#",
        "global:x",  # the kind 'global' is reserved
        "global:x:y",
        "task:a\x00",
        "task:",
        ":x",
        ":",
        "task::x",
        "task:x:",
        "",
        "task",
        "globals",
        "Global",
        "#",
        "+",
        "/",
    ],
)
def test_invalid_scopes_raise_topic_error_and_never_make_a_topic(scope: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_scope(scope)
    assert info.value.kind == "scope"
    with pytest.raises(TopicError):
        constraint_topic(scope)


@pytest.mark.parametrize("value", [None, 1, b"global", ("task", "x")])
def test_non_str_scope_raises_topic_error(value: Any) -> None:
    with pytest.raises(TopicError) as info:
        validate_scope(value)
    assert info.value.kind == "scope"
    with pytest.raises(TopicError):
        constraint_topic(value)


def test_scope_too_long_for_a_topic_is_refused() -> None:
    with pytest.raises(TopicError, match="UTF-8 bytes"):
        validate_scope("task:" + "a" * MAX_TOPIC_BYTES)


@pytest.mark.parametrize(
    "topic",
    [
        "cascade/constraints",
        "cascade/constraints/",
        "cascade/constraints/task",
        "cascade/constraints/task/",
        "cascade/constraints//x",
        "cascade/constraints/task//x",
        "cascade/constraints/task:x",
        "cascade/constraints/global:x",
        "cascade/constraints/global/x",
        "cascade/constraint/global",
        "cascade/status/global",
        "x/cascade/constraints/global",
        "cascade/constraints/task/+",
        "cascade/constraints/#",
        "",
    ],
)
def test_scope_from_topic_refuses_other_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        scope_from_topic(topic)


def test_scope_from_topic_refuses_non_str() -> None:
    with pytest.raises(TopicError):
        scope_from_topic(None)  # type: ignore[arg-type]


# --- telemetry and status topics ---------------------------------------------------------------------


def test_telemetry_topic() -> None:
    topic = telemetry_topic("acme", "etl", "run-1")
    assert topic == "cascade/telemetry/acme/etl/run-1/events"
    assert topic_matches(TELEMETRY_FILTER, topic)


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (("", "p", "r"), "org_id"),
        (("o", "", "r"), "project_id"),
        (("o", "p", ""), "run_id"),
        (("o/x", "p", "r"), "org_id"),
        (("o", "p+", "r"), "project_id"),
        (("o", "p", "#"), "run_id"),
        (("o", "p", "r\x00"), "run_id"),
        ((None, "p", "r"), "org_id"),
        (("o", 5, "r"), "project_id"),
    ],
)
def test_telemetry_topic_refuses_bad_parts(args: tuple[Any, Any, Any], kind: str) -> None:
    with pytest.raises(TopicError) as info:
        telemetry_topic(*args)
    assert info.value.kind == kind


def test_telemetry_topic_refuses_too_long_parts() -> None:
    with pytest.raises(TopicError, match="UTF-8 bytes"):
        telemetry_topic("o", "p", "r" * MAX_TOPIC_BYTES)


def test_status_topic_round_trip() -> None:
    topic = status_topic("worker-1")
    assert topic == "cascade/status/worker-1"
    assert source_from_status_topic(topic) == "worker-1"
    assert topic_matches(STATUS_FILTER, topic)


@pytest.mark.parametrize("source", ["", "a/b", "a+", "#", "a\x00", None, 7])
def test_status_topic_refuses_bad_sources(source: Any) -> None:
    with pytest.raises(TopicError) as info:
        status_topic(source)
    assert info.value.kind == "source"


@pytest.mark.parametrize(
    "topic", ["cascade/status", "cascade/status/", "cascade/status/a/b", "cascade/statusx/a", "status/a", ""]
)
def test_source_from_status_topic_refuses_other_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        source_from_status_topic(topic)


# --- characters brokers refuse (MQTT 5 §1.5.4): controls, non-characters, lone surrogates --------------

# (code point, the class named in the error)
REFUSED = [
    (0x0000, "NUL, a control character"),
    (0x0001, "a control character"),
    (0x0009, "a control character"),  # TAB
    (0x000A, "a control character"),  # LF
    (0x001B, "a control character"),  # ESC
    (0x001F, "a control character"),
    (0x007F, "a control character"),  # DEL
    (0x0080, "a control character"),
    (0x0085, "a control character"),  # NEL
    (0x009F, "a control character"),
    (0xD800, "a lone surrogate"),
    (0xDBFF, "a lone surrogate"),
    (0xDC00, "a lone surrogate"),
    (0xDFFF, "a lone surrogate"),
    (0xFDD0, "a Unicode non-character"),
    (0xFDEF, "a Unicode non-character"),
    (0xFFFE, "a Unicode non-character"),
    (0xFFFF, "a Unicode non-character"),
    *[(plane << 16 | low, "a Unicode non-character") for plane in range(1, 17) for low in (0xFFFE, 0xFFFF)],
]
# Neighbours of every refused range, and text of other scripts: all valid.
ALLOWED = [0x0020, 0x007E, 0x00A0, 0x00A1, 0xD7FF, 0xE000, 0xFDCF, 0xFDF0, 0xFFFD, 0x10000, 0x1FFFD, 0x20000]
OTHER_SCRIPTS = "über/日本/عربى/ a b"


def _cases() -> list[Any]:
    return [pytest.param(chr(code), code, what, id=f"U+{code:04X}") for code, what in REFUSED]


@pytest.mark.parametrize(("char", "code", "what"), _cases())
def test_validate_topic_and_filter_refuse_the_character_by_code_point_and_index(
    char: str, code: int, what: str
) -> None:
    cases = ((validate_topic, "topic", f"a/b{char}c"), (validate_filter, "filter", f"+/b{char}"))
    for validate, kind, text in cases:
        with pytest.raises(TopicError) as info:
            validate(text)
        assert info.value.kind == kind
        assert info.value.value == text
        assert info.value.problem.startswith(f"contains U+{code:04X} ({what}"), info.value.problem
        assert "at index 3" in info.value.problem
        assert "remove or replace it" in info.value.problem
        # The message shows the character escaped, never raw (a TAB or LF would break a log line).
        assert char not in str(info.value)


@pytest.mark.parametrize(("char", "code", "what"), _cases())
def test_scopes_and_topic_helpers_refuse_the_character(char: str, code: int, what: str) -> None:
    with pytest.raises(TopicError) as info:
        validate_scope(f"task:a{char}b")
    assert info.value.kind == "scope"
    assert f"U+{code:04X} ({what}" in info.value.problem
    assert "at index 6" in info.value.problem
    with pytest.raises(TopicError):
        validate_scope(f"team:{char}:eu")
    with pytest.raises(TopicError):
        validate_scope(f"t{char}sk:x")
    with pytest.raises(TopicError):
        constraint_topic(f"task:{char}")
    with pytest.raises(TopicError):
        scope_from_topic(f"cascade/constraints/task/{char}")
    for args, kind in (
        ((char, "p", "r"), "org_id"),
        (("o", f"p{char}", "r"), "project_id"),
        (("o", "p", f"r{char}"), "run_id"),
    ):
        with pytest.raises(TopicError) as info:
            telemetry_topic(*args)
        assert info.value.kind == kind
        assert f"U+{code:04X}" in info.value.problem
    with pytest.raises(TopicError) as info:
        status_topic(f"worker{char}")
    assert info.value.kind == "source"
    assert "at index 6" in info.value.problem
    with pytest.raises(TopicError):
        source_from_status_topic(f"cascade/status/w{char}")
    with pytest.raises(TopicError):
        topic_matches("#", f"a{char}")
    with pytest.raises(TopicError):
        topic_matches(f"a{char}/#", "a")


@pytest.mark.parametrize("code", ALLOWED, ids=lambda v: f"{v:04X}")
def test_neighbours_of_the_refused_ranges_stay_valid(code: int) -> None:
    char = chr(code)
    assert validate_topic(f"a/{char}") == f"a/{char}"
    assert validate_filter(f"+/{char}/#") == f"+/{char}/#"
    assert validate_scope(f"task:{char}x") == f"task:{char}x"
    assert scope_from_topic(constraint_topic(f"task:x{char}")) == f"task:x{char}"
    assert telemetry_topic(char, char, char) == f"cascade/telemetry/{char}/{char}/{char}/events"
    assert source_from_status_topic(status_topic(char)) == char


def test_spaces_and_letters_of_any_script_stay_valid() -> None:
    assert validate_topic(OTHER_SCRIPTS) == OTHER_SCRIPTS
    assert validate_filter(OTHER_SCRIPTS + "/#") == OTHER_SCRIPTS + "/#"
    scope = "task:über:日本:عربى: a b"
    assert scope_from_topic(constraint_topic(scope)) == scope
    assert constraint_topic(scope) == "cascade/constraints/task/über/日本/عربى/ a b"
    assert telemetry_topic("über", "日本", " a b") == "cascade/telemetry/über/日本/ a b/events"
    assert status_topic("عربى 1") == "cascade/status/عربى 1"


def test_the_first_refused_character_is_the_one_named() -> None:
    # An astral non-character before a BMP control character: the earlier one is named.
    with pytest.raises(TopicError, match=r"U\+1FFFE .* at index 2"):
        validate_topic("a😀\U0001fffe\tb")
    with pytest.raises(TopicError, match=r"U\+0009 .* at index 2"):
        validate_topic("a😀\t\U0001fffeb")
    with pytest.raises(TopicError, match=r"U\+10FFFF .* at index 1"):
        validate_filter("a\U0010ffff")


def test_a_surrogate_pair_in_a_str_is_two_lone_surrogates() -> None:
    with pytest.raises(TopicError, match=r"U\+D83D \(a lone surrogate, not encodable as UTF-8\) at index 0"):
        validate_topic("\ud83d\ude00")
    assert validate_topic("\U0001f600") == "\U0001f600"  # the real emoji is fine


@pytest.mark.parametrize("part", [" ", "  ", "\u00a0", "\u3000", " \u2003 "])
def test_a_whitespace_only_scope_part_is_refused(part: str) -> None:
    for scope in (f"task:{part}", f"{part}:x", f"team:{part}:eu"):
        with pytest.raises(TopicError) as info:
            validate_scope(scope)
        assert info.value.kind == "scope"
        assert "whitespace only" in info.value.problem
        with pytest.raises(TopicError):
            constraint_topic(scope)
    with pytest.raises(TopicError):
        scope_from_topic(f"cascade/constraints/task/{part}")


def test_scope_parts_with_spaces_inside_stay_valid() -> None:
    assert validate_scope("task: a") == "task: a"
    assert validate_scope("task:a b") == "task:a b"


def test_long_topics_are_still_checked_in_full() -> None:
    # The refused character at the very end of a topic at the byte limit is still found.
    with pytest.raises(TopicError, match=f"at index {MAX_TOPIC_BYTES - 1}"):
        validate_topic("a" * (MAX_TOPIC_BYTES - 1) + "\x7f")
    with pytest.raises(TopicError, match=f"at index {MAX_TOPIC_BYTES // 4}"):
        validate_topic("é" * (MAX_TOPIC_BYTES // 4) + "\U0010fffe")
