"""SubscriptionIndex: a trie over topic levels that agrees with topic_matches."""

from __future__ import annotations

import pytest
from cascade.connectors.protocol import SubscriptionIndex, TopicError


def test_empty_index() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    assert len(index) == 0
    assert index.match("a/b") == []
    assert list(index) == []
    assert "x" not in index


def test_add_and_match() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("sport/tennis/+", "plus")
    index.add("sport/#", "multi")
    index.add("sport/tennis/player1", "exact")
    index.add("#", "all")
    index.add("news/#", "other")
    assert sorted(index.match("sport/tennis/player1")) == ["all", "exact", "multi", "plus"]
    assert sorted(index.match("sport")) == ["all", "multi"]
    assert sorted(index.match("sport/tennis")) == ["all", "multi"]
    assert sorted(index.match("sport/tennis/player1/ranking")) == ["all", "multi"]
    assert index.match("weather") == ["all"]
    assert len(index) == 5
    assert "plus" in index
    assert index.filter_of("plus") == "sport/tennis/+"


def test_match_returns_each_value_once_even_when_several_paths_match() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("+/+", "v")
    assert index.match("a/b") == ["v"]
    other: SubscriptionIndex[int] = SubscriptionIndex()
    other.add("a/+", 1)
    other.add("+/b", 2)
    other.add("a/b", 3)
    other.add("a/#", 4)
    result = other.match("a/b")
    assert sorted(result) == [1, 2, 3, 4]
    assert len(result) == len(set(result))


def test_plus_matches_empty_levels() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("+/+", "two")
    index.add("/+", "slash-plus")
    index.add("+", "one")
    assert sorted(index.match("/finance")) == ["slash-plus", "two"]
    assert sorted(index.match("/")) == ["slash-plus", "two"]
    assert index.match("finance") == ["one"]


def test_multi_level_matches_the_parent_level() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("sport/tennis/player1/#", "v")
    assert index.match("sport/tennis/player1") == ["v"]
    assert index.match("sport/tennis") == []


def test_dollar_topics_are_not_matched_by_leading_wildcards() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("#", "all")
    index.add("+/monitor/Clients", "plus")
    index.add("$SYS/#", "sys")
    index.add("$SYS/monitor/+", "sys-plus")
    index.add("a/#", "a")
    assert sorted(index.match("$SYS/monitor/Clients")) == ["sys", "sys-plus"]
    assert index.match("$SYS") == ["sys"]
    # '$' elsewhere than the first character is an ordinary character.
    assert sorted(index.match("a/$SYS")) == ["a", "all"]


def test_remove() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a/+", "x")
    index.add("a/+", "y")
    assert index.remove("x") is True
    assert index.match("a/b") == ["y"]
    assert "x" not in index
    assert len(index) == 1
    assert index.remove("x") is False
    with pytest.raises(KeyError):
        index.filter_of("x")


def test_remove_unknown_value_is_false() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    assert index.remove("nothing") is False


def test_re_adding_moves_a_value_to_its_new_filter() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a/b", "v")
    index.add("c/#", "v")
    assert len(index) == 1
    assert index.filter_of("v") == "c/#"
    assert index.match("a/b") == []
    assert index.match("c/d") == ["v"]
    index.add("c/#", "v")  # same filter again: still there once
    assert index.match("c") == ["v"]
    assert len(index) == 1


def test_remove_prunes_empty_branches() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a/b/c/d", "deep")
    index.add("a/#", "shallow")
    index.remove("deep")
    # Only the 'a' node (holding the '#' subscription) remains below the root.
    root = index._root
    assert list(root.children) == ["a"]
    assert root.children["a"].children == {}
    index.remove("shallow")
    assert index._root.is_empty()


def test_remove_keeps_shared_branches_alive() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a/b/c", "long")
    index.add("a/b", "short")
    index.remove("long")
    assert index.match("a/b") == ["short"]
    index.add("a/b/c", "again")
    assert index.match("a/b/c") == ["again"]


def test_same_filter_many_values_in_subscription_order() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for i in range(5):
        index.add("t", i)
    assert index.match("t") == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", ["a/#/b", "a+", "", "#/a", "a\x00"])
def test_add_validates_the_filter(bad: str) -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    with pytest.raises(TopicError):
        index.add(bad, "v")
    assert len(index) == 0
    assert "v" not in index


def test_failed_re_add_keeps_the_old_subscription() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a", "v")
    with pytest.raises(TopicError):
        index.add("a/#/b", "v")
    assert index.match("a") == ["v"]


def test_iteration_is_a_snapshot() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a", "x")
    index.add("b", "y")
    for value in index:
        index.remove(value)
    assert len(index) == 0


def test_clear() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("a", "x")
    index.add("#", "y")
    index.clear()
    assert len(index) == 0
    assert index.match("a") == []
    index.add("a", "x")
    assert index.match("a") == ["x"]


def test_many_subscriptions_only_matching_ones_come_back() -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for i in range(1000):
        index.add(f"cascade/constraints/task/t{i}", i)
    assert index.match("cascade/constraints/task/t517") == [517]
    assert len(index) == 1000
