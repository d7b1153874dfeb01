"""The "did you mean" of every message that names something unknown.

A typo in a session, group, key or policy name should cost one look at the error line, not a
trip to the README. difflib alone misses the two typos people make most with short names: a
wrong case (``DB`` for ``db``) and two swapped letters (``ad`` for ``da`` scores 0.5), so both
are checked first. difflib is imported only when a suggestion is actually wanted (error paths).
"""

from __future__ import annotations

from collections.abc import Iterable

CUTOFF = 0.6


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, or None when nothing is close.

    Ties are broken by the candidates' order for the case and swap checks (config order gives
    stable messages) and by difflib's own rule (score, then text) for the rest.
    """
    pool = list(dict.fromkeys(candidates))
    if not pool:
        return None
    folded = word.casefold()
    for candidate in pool:
        if candidate.casefold() == folded:
            return candidate
    for candidate in pool:
        if _one_swap(folded, candidate.casefold()):
            return candidate
    import difflib

    by_folded: dict[str, str] = {}
    for candidate in pool:
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` to append to a message, or ``''`` when nothing is close."""
    match = closest(word, candidates)
    return f" (did you mean {match!r}?)" if match is not None else ""


def _one_swap(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with exactly two neighbouring characters exchanged."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and a[diff[1]] == b[diff[0]]
    )
