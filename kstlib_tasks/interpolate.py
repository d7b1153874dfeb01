"""``$VAR`` in command words, expanded by kstlib itself: commands never meet a shell.

Only the forms people rely on in compose files and Makefiles are supported: ``$NAME``,
``${NAME}``, ``${NAME:-default}`` and ``$$`` for a literal dollar. Everything a shell would do
beyond that (word splitting, globbing, ``${X:?}``, ``${X/a/b}``, nested defaults) is either
absent or refused at config time by :func:`syntax_error`, so a word means the same thing in the
file and in the argv that runs: one word in, one word out, whatever the value contains.

A ``$`` that starts none of these forms (``$1``, ``$ ``, a final ``$``) is kept as written, so
``awk '{print $1}'``-style arguments and prices keep working without escaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# What a shell would read as an operator after the name inside ${...}: refused, not guessed.
_OPERATORS = frozenset(":-=?+/#%^,@[*!")
_FORMS = "use $NAME, ${NAME} or ${NAME:-default}; $$ is a literal $"


class InterpolationError(ValueError):
    """A word whose ``$`` syntax kstlib does not support (caught at config time)."""


class UnsetVariable(InterpolationError):
    """A variable used without a default is not set where the command is expanded."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"variable ${name} is not set")


class _Variable(NamedTuple):
    name: str
    default: str | None  # None: no ':-' in the word


def expand(word: str, env: Mapping[str, str]) -> str:
    """``word`` with its variables replaced from ``env`` (a default applies when unset or empty).

    Raises :class:`UnsetVariable` for a variable without a default that ``env`` lacks, and
    :class:`InterpolationError` for syntax :func:`syntax_error` would have refused.
    """
    if "$" not in word:
        return word
    parts: list[str] = []
    for piece in _parse(word):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        value = env.get(piece.name)
        if piece.default is not None and not value:
            parts.append(piece.default)
        elif value is None:
            raise UnsetVariable(piece.name)
        else:
            parts.append(value)
    return "".join(parts)


def expand_argv(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, ...]:
    """Each word expanded on its own: never more or fewer words than written."""
    return tuple(expand(word, env) for word in argv)


def syntax_error(word: str) -> str | None:
    """Why ``word`` cannot be expanded, for the config check; None when it can."""
    try:
        for _ in _parse(word):
            pass
    except InterpolationError as exc:
        return str(exc)
    return None


def required(word: str) -> list[str]:
    """Names used without a default, once each in order of first use (what ``check`` lists).

    Raises :class:`InterpolationError` on bad syntax (ask :func:`syntax_error` first).
    """
    names: dict[str, None] = {}
    for piece in _parse(word):
        if isinstance(piece, _Variable) and piece.default is None:
            names[piece.name] = None
    return list(names)


def _parse(word: str) -> Iterator[str | _Variable]:
    """The literal runs and variables of ``word``, left to right."""
    start = 0  # first character of the current literal run
    i = word.find("$")
    while i != -1:
        nxt = word[i + 1 : i + 2]
        if nxt == "$":
            yield word[start : i + 1]
            start = i + 2
        elif nxt == "{":
            end = word.find("}", i + 2)
            if end == -1:
                raise InterpolationError(f"unterminated '${{' in {word!r}: add the closing '}}'")
            if start < i:
                yield word[start:i]
            yield _braced(word[i + 2 : end], word[i : end + 1])
            start = end + 1
        else:
            match = _NAME.match(word, i + 1)
            if match:
                if start < i:
                    yield word[start:i]
                yield _Variable(match.group(), None)
                start = match.end()
            # else: a '$' before a digit, a space, the end...: part of the literal run
        i = word.find("$", max(start, i + 1))
    if start < len(word):
        yield word[start:]


def _braced(inner: str, text: str) -> _Variable:
    """The variable of ``${inner}`` (``text`` is the whole form, for messages)."""
    match = _NAME.match(inner)
    if match and match.end() == len(inner):
        return _Variable(inner, None)
    if match and inner.startswith(":-", match.end()):
        default = inner[match.end() + 2 :]
        if "${" in default:
            raise InterpolationError(f"{text!r}: a default cannot contain '${{' (no nesting)")
        return _Variable(match.group(), default)
    if not inner:
        raise InterpolationError(f"{text!r}: empty variable name")
    rest = inner[match.end() :] if match else inner
    if rest[0] in _OPERATORS:
        raise InterpolationError(f"{text!r}: unsupported form ({_FORMS})")
    raise InterpolationError(
        f"{text!r}: invalid variable name {inner!r} (letters, digits and '_', not starting "
        "with a digit)"
    )
