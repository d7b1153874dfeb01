"""The "did you mean" of every message that names something unknown.

A typo in a session, group, key or policy name should cost one look at the error line, not a
trip to the README. A suggestion must be a likely typo (a wrong case, a few edits, two swapped
letters), never merely a name with the same prefix: a wrong suggestion costs more than none.
"""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, or None when nothing is close.

    Close means shortened (``workdir``), or a few edits away (one for short words, two up to
    10 characters, three beyond) without replacing most of the part that differs: names share
    prefixes (``astro-``, a run's own prefix), and ``astro-zzz`` is no typo of ``astro-dev``.
    Ties go to the candidates' order (config order gives stable messages).
    """
    pool = list(dict.fromkeys(candidates))
    if not pool:
        return None
    folded = word.casefold()
    for candidate in pool:
        if candidate.casefold() == folded:
            return candidate
    best: tuple[int, str] | None = None
    for candidate in pool:
        distance = _typo_distance(folded, candidate.casefold())
        if distance is not None and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best is not None else None


def _typo_distance(word: str, candidate: str) -> int | None:
    """Edits from ``word`` to ``candidate`` (a swap of neighbours counts one) when that looks
    like a typo, else None."""
    if len(word) >= max(3, 0.6 * len(candidate)) and _shortened(word, candidate):
        return len(candidate) - len(word)  # an abbreviation: workdir, tmux_bin
    limit = 1 if len(word) <= 4 else 2 if len(word) <= 10 else 3
    if abs(len(word) - len(candidate)) > limit:
        return None
    head = 0
    while head < min(len(word), len(candidate)) and word[head] == candidate[head]:
        head += 1
    tail = 0
    while (tail < min(len(word), len(candidate)) - head
           and word[-1 - tail] == candidate[-1 - tail]):
        tail += 1
    mine, theirs = word[head:len(word) - tail], candidate[head:len(candidate) - tail]
    distance = _edits(mine, theirs)
    if distance > limit:
        return None
    if (mine and theirs and max(len(mine), len(theirs)) > 1
            and 2 * distance > max(len(mine), len(theirs)) and not _one_swap(mine, theirs)):
        return None  # most of what differs was replaced: another word, not a typo
    return distance


def _shortened(word: str, candidate: str) -> bool:
    """``word`` is ``candidate`` with letters left out (its letters, in order)."""
    rest = iter(candidate)
    return len(word) < len(candidate) and all(letter in rest for letter in word)


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, replace, swap neighbours)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


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
