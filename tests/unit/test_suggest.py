"""suggest: the "did you mean" appended to messages about unknown names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstlib_tasks.suggest import closest, did_you_mean

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None)
NAMES = ["api", "db", "astro-dev", "astro-prod", "worker"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("astro-dvv", "astro-dev"),  # difflib
        ("astro-pord", "astro-prod"),  # swapped pair
        ("DB", "db"),  # case only
        ("Api", "api"),
        ("bd", "db"),  # swap in a two-letter name (difflib scores it 0.5)
        ("pai", "api"),  # swap at the start
        ("wroker", "worker"),
        ("workers", "worker"),
    ],
)
def test_closest_finds_the_meant_name(word: str, expected: str) -> None:
    assert closest(word, NAMES) == expected


@pytest.mark.parametrize("word", ["zzz", "x", "postgres", ""])
def test_closest_none_when_nothing_is_close(word: str) -> None:
    assert closest(word, NAMES) is None


def test_closest_no_candidates() -> None:
    assert closest("db", []) is None
    assert closest("db", iter(())) is None


def test_closest_accepts_any_iterable_once() -> None:
    assert closest("DB", (n for n in NAMES)) == "db"


def test_case_match_wins_over_a_closer_looking_one() -> None:
    assert closest("Worker", ["workers", "worker"]) == "worker"


def test_case_ties_follow_candidate_order() -> None:
    assert closest("db", ["DB", "Db"]) == "DB"


def test_did_you_mean_text() -> None:
    assert did_you_mean("DB", NAMES) == " (did you mean 'db'?)"
    assert did_you_mean("nothing-like-it", NAMES) == ""


def test_two_swaps_are_not_one_swap() -> None:
    # 'abcd' -> 'badc' swaps two pairs: not caught by the swap rule (difflib decides).
    assert closest("badc", ["abcd"]) is None


@FAST
@given(st.text(min_size=1, max_size=20))
def test_a_word_among_the_candidates_is_its_own_closest(word: str) -> None:
    assert closest(word, ["zzzz-unrelated", word]) == word


@FAST
@given(st.text(), st.lists(st.text(), max_size=8))
def test_closest_is_a_candidate_or_none(word: str, candidates: list[str]) -> None:
    match = closest(word, candidates)
    assert match is None or match in candidates
