"""Covering sets (connections without subscription identifiers): each topic any local filter matches is
matched by exactly one broker filter, and each local filter lies inside one broker filter.
"""

from __future__ import annotations

import itertools

from cascade.connectors.mqtt._covering import covering_set, covers, overlaps
from cascade.connectors.protocol import topic_matches
from hypothesis import given, settings
from hypothesis import strategies as st

_LEVELS = ["a", "b", "", "$s"]
_TOPICS = [
    "/".join(levels)
    for depth in range(1, 4)
    for levels in itertools.product(_LEVELS, repeat=depth)
    if not any(level == "$s" for level in levels[1:]) and "/".join(levels)
]


def _filters() -> st.SearchStrategy[str]:
    level = st.sampled_from(["a", "b", "", "+", "$s"])
    return st.builds(
        lambda levels, tail: "/".join([*levels, *(["#"] if tail else [])]) or "#",
        st.lists(level, min_size=0, max_size=3),
        st.booleans(),
    ).filter(lambda f: "$s" not in f.split("/")[1:])


def test_examples() -> None:
    assert all([covers("a/#", "a"), covers("a/#", "a/b/c"), covers("+/b", "a/b")])
    assert not any([covers("#", "$SYS/x"), covers("a/+", "a/#"), covers("a/b", "a/+")])
    assert overlaps("a/+", "+/b")
    assert not any([overlaps("a/+/c", "a/b"), overlaps("+/x", "$SYS/x")])
    assert covering_set(["a/b", "a/#", "c"]) == {"a/#", "c"}
    assert covering_set(["a/+", "+/b"]) == {"+/+"}  # overlapping, neither covers: one wider filter
    assert covering_set(["x/y", "x/y"]) == {"x/y"}


@settings(max_examples=300, deadline=None)
@given(st.lists(_filters(), min_size=1, max_size=5))
def test_every_matched_topic_is_matched_by_exactly_one_broker_filter(filters: list[str]) -> None:
    broker = covering_set(filters)
    for local in filters:
        assert any(covers(b, local) for b in broker), (local, broker)
    for topic in _TOPICS:
        wanted = any(topic_matches(f, topic) for f in filters)
        matched = [b for b in broker if topic_matches(b, topic)]
        assert len(matched) <= 1, (topic, matched)
        if wanted:
            assert matched, (topic, broker)


@settings(max_examples=300, deadline=None)
@given(_filters(), _filters())
def test_covers_and_overlaps_agree_with_matching(wide: str, narrow: str) -> None:
    matched_wide = {t for t in _TOPICS if topic_matches(wide, t)}
    matched_narrow = {t for t in _TOPICS if topic_matches(narrow, t)}
    if covers(wide, narrow):
        assert matched_narrow <= matched_wide
    if matched_wide & matched_narrow:
        assert overlaps(wide, narrow)
