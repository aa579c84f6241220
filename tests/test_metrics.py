"""rnnjax.metrics: the edit distance against a plain recursive definition, error rates by hand."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnjax.metrics import character_error_rate, edit_distance, exact_match


def reference_distance(a, b) -> int:
    """Levenshtein's definition, recursed from the front with memoisation (not the row-by-row programme)."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == len(a):
            return len(b) - j
        if j == len(b):
            return len(a) - i
        return min(d(i + 1, j) + 1, d(i, j + 1) + 1, d(i + 1, j + 1) + (a[i] != b[j]))

    return d(0, 0)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("kitten", "sitting", 3),  # two substitutions, one insertion
        ("", "", 0),
        ("", "seven", 5),
        ("seven", "", 5),
        ("seven", "seven", 0),
        ("seven", "sevne", 2),  # a transposition is two edits
        ("eight", "eigth", 2),
        ("four", "five", 3),  # f kept, o->i, u->v, r->e
        ("nine", "nnine", 1),
        ([1, 2, 3], [1, 3], 1),  # tokens, not only characters
    ],
)
def test_edit_distance_by_hand(a, b, distance):
    assert edit_distance(a, b) == distance


words = st.text(alphabet="abcz", max_size=8)


@settings(max_examples=200, deadline=None)
@given(words, words, words)
def test_edit_distance_is_the_metric_of_its_definition(a, b, c):
    d = edit_distance(a, b)
    assert d == reference_distance(a, b)
    assert d == edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert edit_distance(a, c) <= d + edit_distance(b, c)
    assert (d == 0) == (a == b)


def test_character_error_rate_pools_over_the_corpus():
    # 1 edit over 5 characters and 2 edits over 3: pooled (1 + 2) / (5 + 3), not the mean of 0.2 and 0.667.
    assert character_error_rate(["sevem", "ti"], ["seven", "two"]) == pytest.approx(3 / 8)
    assert character_error_rate(["zero"], ["zero"]) == 0.0
    assert character_error_rate(["seven seven"], ["one"]) > 1  # long and wrong
    assert character_error_rate(["", ""], ["one", "six"]) == 1.0  # saying nothing deletes every character


def test_exact_match():
    assert exact_match(["one", "two", "thre", ""], ["one", "two", "three", "four"]) == 0.5
    assert exact_match([[1, 2]], [(1, 2)]) == 1.0  # token for token, whatever the sequence type


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="predictions"):
        character_error_rate(["one"], ["one", "two"])
    with pytest.raises(ValueError, match="targets"):
        character_error_rate([""], [""])
    with pytest.raises(ValueError, match="targets"):
        exact_match([], [])
    with pytest.raises(ValueError, match="a: expected a sequence"):
        edit_distance(3, "three")
