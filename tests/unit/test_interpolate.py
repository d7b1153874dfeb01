"""interpolate: $VAR in command words, without a shell (exact results and messages)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstlib_tasks.interpolate import (
    InterpolationError,
    UnsetVariable,
    expand,
    expand_argv,
    required,
    syntax_error,
)

FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None)
ENV = {"HOME": "/home/me", "PORT": "8080", "EMPTY": "", "SPACED": "a b  c", "_X1": "x"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("$HOME", "/home/me"),
        ("${HOME}", "/home/me"),
        ("$HOME/bin", "/home/me/bin"),
        ("${HOME}bin", "/home/mebin"),
        ("$HOMEbin", None),  # the name is greedy: HOMEbin is unset
        ("--port=$PORT", "--port=8080"),
        ("$PORT$PORT", "80808080"),
        ("$_X1", "x"),
        ("${PORT:-9000}", "8080"),
        ("${MISSING:-9000}", "9000"),
        ("${EMPTY:-fallback}", "fallback"),  # empty counts as unset for ':-'
        ("${MISSING:-two words}", "two words"),
        ("${MISSING:-}", ""),
        ("${MISSING:-$HOME}", "$HOME"),  # the default is literal text
        ("${MISSING:-a:-b}", "a:-b"),
        ("${EMPTY}", ""),
        ("$EMPTY", ""),
        ("$$", "$"),
        ("$$HOME", "$HOME"),
        ("$$$HOME", "$/home/me"),
        ("$$$$", "$$"),
        ("${SPACED}", "a b  c"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", "$1"),
        ("$ x", "$ x"),
        ("{print $1}", "{print $1}"),
        ("5$", "5$"),
        ("$-", "$-"),
        ("$é", "$é"),
        ("}", "}"),
        ("x}$HOME}", "x}/home/me}"),
    ],
)
def test_expand(word: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UnsetVariable):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == expected
        assert syntax_error(word) is None


def test_unset_variable() -> None:
    with pytest.raises(UnsetVariable) as info:
        expand("--db=${DATABASE_URL}", ENV)
    err = info.value
    assert err.name == "DATABASE_URL"
    assert str(err) == "variable $DATABASE_URL is not set"
    assert isinstance(err, ValueError)
    assert not isinstance(err, KeyError)


def test_the_first_unset_variable_is_reported() -> None:
    with pytest.raises(UnsetVariable) as info:
        expand("$A$B", {})
    assert info.value.name == "A"


def test_expand_argv() -> None:
    argv = ("serve", "--port", "$PORT", "${SPACED}", "$$")
    assert expand_argv(argv, ENV) == ("serve", "--port", "8080", "a b  c", "$")
    assert expand_argv([], ENV) == ()


def test_expand_does_not_glob_or_split() -> None:
    assert expand_argv(["$G"], {"G": "*.py ~ $(id)"}) == ("*.py ~ $(id)",)


def test_values_are_not_expanded_again() -> None:
    assert expand("$A", {"A": "$B", "B": "no"}) == "$B"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${HOME", "unterminated '${' in '${HOME': add the closing '}'"),
        ("a${", "unterminated '${' in 'a${': add the closing '}'"),
        ("${}", "'${}': empty variable name"),
        (
            "${1X}",
            "'${1X}': invalid variable name '1X' (letters, digits and '_', not starting with a "
            "digit)",
        ),
        (
            "${A B}",
            "'${A B}': invalid variable name 'A B' (letters, digits and '_', not starting with "
            "a digit)",
        ),
        (
            "${é}",
            "'${é}': invalid variable name 'é' (letters, digits and '_', not starting with a "
            "digit)",
        ),
    ],
)
def test_syntax_errors(word: str, message: str) -> None:
    assert syntax_error(word) == message
    with pytest.raises(InterpolationError) as info:
        expand(word, ENV)
    assert str(info.value) == message


UNSUPPORTED = "unsupported form (use $NAME, ${NAME} or ${NAME:-default}; $$ is a literal $)"


@pytest.mark.parametrize(
    "form",
    [
        "${X:?error}",
        "${X?error}",
        "${X/a/b}",
        "${#X}",
        "${X-default}",
        "${X:=default}",
        "${X=default}",
        "${X:+alt}",
        "${X%suffix}",
        "${X#prefix}",
        "${X^^}",
        "${X,,}",
        "${X[0]}",
        "${!X}",
        "${@}",
        "${*}",
        "${X:1:2}",
    ],
)
def test_unsupported_forms(form: str) -> None:
    assert syntax_error(f"a{form}b") == f"{form!r}: {UNSUPPORTED}"
    with pytest.raises(InterpolationError):
        expand(form, {"X": "x"})


def test_nested_default_refused() -> None:
    message = "'${X:-${Y}': a default cannot contain '${' (no nesting)"
    assert syntax_error("${X:-${Y}}") == message


def test_first_syntax_error_is_reported() -> None:
    assert syntax_error("${1} ${") == syntax_error("${1}")


def test_syntax_error_does_not_need_values() -> None:
    assert syntax_error("$UNSET ${ALSO_UNSET}") is None


@pytest.mark.parametrize(
    ("word", "names"),
    [
        ("plain", []),
        ("$A", ["A"]),
        ("$A ${B} $A", ["A", "B"]),
        ("${A:-x}", []),
        ("${A:-x}$A", ["A"]),
        ("$$A", []),
        ("$1 $", []),
        ("${B}$A", ["B", "A"]),
    ],
)
def test_required(word: str, names: list[str]) -> None:
    assert required(word) == names


def test_required_refuses_bad_syntax() -> None:
    with pytest.raises(InterpolationError):
        required("${X")


# =========================================================================== properties

WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="$"), max_size=40)
# Mostly the characters the syntax is made of, so that the odd cases actually come up.
ANY = st.text(alphabet=st.sampled_from("$${}:-?#/aZ_1 é"), max_size=40) | st.text(max_size=40)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@FAST
@given(WORDS)
def test_words_without_dollar_are_unchanged(word: str) -> None:
    assert expand(word, {}) == word
    assert syntax_error(word) is None
    assert required(word) == []


@FAST
@given(ANY)
def test_doubled_dollars_round_trip(word: str) -> None:
    escaped = word.replace("$", "$$")
    assert syntax_error(escaped) is None
    assert expand(escaped, {}) == word
    assert required(escaped) == []


@FAST
@given(st.lists(st.tuples(NAMES, ANY), max_size=5), st.lists(ANY, max_size=5))
def test_expansion_never_splits(values: list[tuple[str, str]], extra: list[str]) -> None:
    env = dict(values)
    argv = [f"x${{{name}}}y" for name in env] + [w.replace("$", "$$") for w in extra]
    result = expand_argv(argv, env)
    assert len(result) == len(argv)
    assert list(result[: len(env)]) == [f"x{value}y" for value in env.values()]


@FAST
@given(ANY)
def test_any_word_either_expands_or_has_a_syntax_error(word: str) -> None:
    """Never another exception: every name it needs is given a value."""
    problem = syntax_error(word)
    if problem is None:
        env = dict.fromkeys(required(word), "v")
        assert isinstance(expand(word, env), str)
    else:
        with pytest.raises(InterpolationError) as info:
            expand(word, _Everything())
        assert str(info.value) == problem


class _Everything(dict[str, str]):
    """An environment where every variable is set, so only syntax can fail."""

    def get(self, key: str, default: object = None) -> str:
        return "v"
