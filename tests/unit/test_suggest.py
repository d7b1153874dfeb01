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
        ("astro-dvv", "astro-dev"),  # one letter replaced
        ("astro-dv", "astro-dev"),  # one left out
        ("astro-d", "astro-dev"),  # shortened
        ("astro-pord", "astro-prod"),  # swapped pair
        ("DB", "db"),  # case only
        ("Api", "api"),
        ("bd", "db"),  # swap in a two-letter name (difflib scores it 0.5)
        ("pai", "api"),  # swap at the start
        ("wroker", "worker"),
        ("workers", "worker"),
        ("workr", "worker"),
    ],
)
def test_closest_finds_the_meant_name(word: str, expected: str) -> None:
    assert closest(word, NAMES) == expected


@pytest.mark.parametrize("word", ["zzz", "x", "postgres", "", "astro-zzz", "astro-qa",
                                  "astro-web"])
def test_closest_none_when_nothing_is_close(word: str) -> None:
    """A shared prefix (``astro-``) is not enough: what differs must look like a typo."""
    assert closest(word, NAMES) is None


@pytest.mark.parametrize(("word", "candidates"), [
    ("kt1234-zzz", ["kt1234-t2", "kt1234-web"]),
    ("kt1234-nope", ["kt1234-web"]),
    ("kt1234-zz", ["kt1234-c"]),
])
def test_a_run_prefix_alone_suggests_nothing(word: str, candidates: list[str]) -> None:
    assert closest(word, candidates) is None


@pytest.mark.parametrize(("word", "candidate"), [
    ("workdir", "working_dir"), ("tmux_bin", "tmux_binary"), ("on_failure", "on-failure"),
    ("comand", "command"), ("envfile", "env_file"), ("opps", "ops"), ("osp", "ops"),
])
def test_keys_and_values_people_mistype(word: str, candidate: str) -> None:
    assert closest(word, [candidate, "zzzz"]) == candidate


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
    # 'abcd' -> 'badc' swaps two pairs: two edits replacing all of a short word.
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
