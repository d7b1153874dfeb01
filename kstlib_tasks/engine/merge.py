"""The ``list`` table: every config entry (live or ``defined``), then every other live session.

A live session is its entry's only when it runs where the entry says (same name, backend and
scope): a podman container named like an entry that says ``runtime: docker`` is a row of its own,
and ``status``/``stop`` agree, because they find it the same way (:mod:`.places`). Each place is
listed once, all in parallel; a place that does not answer is one warning, and the entries that
live there show as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..errors import BackendNotFoundError, EngineNotAnsweringError, KstlibError
from ..models import SessionStatus, State
from . import drift
from .places import Place, Places, each

if TYPE_CHECKING:
    from ..models import SessionSpec


def table(places: Places, specs: Iterable[SessionSpec], kinds: Iterable[str] | None,
          warn: Callable[[str], None]) -> list[SessionStatus]:
    """Config rows in config order, then unconfigured live sessions sorted by name."""
    config = places.config
    wanted = list(kinds) if kinds is not None else None
    known = places.known(wanted)
    results = each(known, places.listing)
    live: list[tuple[Place, SessionStatus]] = []
    failed: dict[Place, KstlibError] = {}
    used = {s.backend for s in config.sessions.values()}
    for place, result in zip(known, results, strict=True):
        if isinstance(result, KstlibError):
            failed[place] = result
            # a missing backend the config does not use is nobody's concern
            if place[0] in used or not isinstance(result, BackendNotFoundError):
                warn(_did_not_answer(place, result))
            continue
        assert isinstance(result, list)
        live.extend((place, status) for status in result)

    rows: list[SessionStatus] = []
    taken: set[int] = set()
    for spec in specs:
        kind = places.kind(spec.backend)
        try:
            home = places.home(spec)
        except KstlibError as exc:  # no runtime found: never listed, so it is said here
            home = spec.backend, kind.configured_scope(spec, config)
            if not any(places.same(home, place) for place in failed):
                failed[home] = exc
                warn(_did_not_answer(home, exc))
        match = next((i for i, (place, status) in enumerate(live)
                      if i not in taken and status.name == spec.name
                      and places.same(place, home)), None)
        if match is not None:
            taken.add(match)
            rows.append(drift.compare(spec, live[match][1].with_changes(defined=True), config))
            continue
        row = kind.defined_status(spec, config)
        if any(places.same(home, place) for place in failed):
            row = row.with_changes(state=State.UNKNOWN, note="its backend did not answer")
        rows.append(row)
    extra = [status.with_changes(defined=False) for i, (_, status) in enumerate(live)
             if i not in taken]
    extra.sort(key=lambda s: (s.backend, s.name, s.scope or ""))
    return rows + extra


def _did_not_answer(place: Place, error: KstlibError) -> str:
    missing = isinstance(error, BackendNotFoundError) and not isinstance(
        error, EngineNotAnsweringError)
    what = "is not available" if missing else "did not answer"
    return (f"warning: {place[0]}{' ' + place[1] if place[1] else ''} {what}, its "
            f"sessions show as unknown: {error.line()}")
