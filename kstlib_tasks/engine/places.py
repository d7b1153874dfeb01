"""Where sessions live: one backend object per place (backend, scope), and the lookup by name.

Every verb asks the same question the same way, so ``list``, ``status`` and ``stop`` always agree
on where a session lives. A session's *home* is the place its config entry names; a name is
looked for at home first and, only when it is not there, at every other place this tool knows
(configured scopes and those it started something on): a session started with ``--backend``,
``--socket`` or from an entry removed since is found too. A backend that does not answer is an
error only for the sessions that live there: looking elsewhere never fails a verb.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .. import backends
from ..errors import KstlibError
from ..models import SessionSpec, SessionStatus, State

if TYPE_CHECKING:
    from ..backends.base import Backend, BackendType
    from ..opsconfig import OpsConfig

log = logging.getLogger(__name__)

Place = tuple[str, str | None]  # (backend name, scope)
Factory = Callable[[str, "str | None", "OpsConfig"], "Backend"]


class Places:
    """The backend objects of one command run, built on first use and kept."""

    def __init__(self, config: OpsConfig, *, factory: Factory | None = None):
        self.config = config
        self._factory = factory
        self._objects: dict[Place, Backend] = {}

    def kind(self, name: str) -> BackendType:
        return backends.get(name)

    def backend(self, place: Place) -> Backend:
        found = self._objects.get(place)
        if found is None:
            name, scope = place
            if self._factory is not None:
                found = self._factory(name, scope, self.config)
            else:
                found = self.kind(name).create(scope, self.config)
            self._objects[place] = found
        return found

    def home(self, spec: SessionSpec) -> Place:
        """Where ``spec`` runs (BackendNotFoundError when that backend is missing)."""
        return spec.backend, self.kind(spec.backend).home(spec, self.config)

    def home_or_configured(self, spec: SessionSpec) -> Place:
        """The home when it can be told, else the scope the config names (never raises)."""
        kind = self.kind(spec.backend)
        try:
            return spec.backend, kind.home(spec, self.config)
        except KstlibError:
            return spec.backend, kind.configured_scope(spec, self.config)

    def same(self, a: Place, b: Place) -> bool:
        return a[0] == b[0] and self.kind(a[0]).same_scope(a[1], b[1])

    def known(self, names: Iterable[str] | None = None) -> list[Place]:
        """Every place to look at, in registry order (``names`` limits the backends)."""
        wanted = list(names) if names is not None else list(backends.names())
        found: list[Place] = []
        for name in wanted:
            for scope in self.kind(name).scopes(self.config):
                place = (name, scope)
                if not any(self.same(place, p) for p in found):
                    found.append(place)
        return found

    def find(self, name: str, spec: SessionSpec | None) -> tuple[Place, SessionStatus] | None:
        """The live session of that name: at home if there, else anywhere else it is.

        A running one wins over an exited one. A missing or silent backend at home is the
        caller's error; elsewhere it only means the session is not there.
        """
        home: Place | None = None
        if spec is not None:
            home = self.home(spec)
            status = self.backend(home).status(name)
            if status is not None:
                return home, status
        others = [p for p in self.known() if home is None or not self.same(p, home)]
        found: list[tuple[Place, SessionStatus]] = []
        failures: list[KstlibError] = []
        for place, result in zip(others, each(others, lambda p: self.backend(p).status(name)),
                                 strict=True):
            if isinstance(result, KstlibError):
                failures.append(result)
                log.debug("looking for %s at %s: %s", name, place, result)
            elif isinstance(result, SessionStatus):
                if result.state == State.RUNNING:
                    return place, result
                found.append((place, result))
        if found:
            return found[0]
        if spec is None and failures and len(failures) == len(others):
            raise failures[0]
        return None

    def listing(self, place: Place) -> list[SessionStatus]:
        return self.backend(place).list()


def each(places: list[Place], call: Callable[[Place], object]) -> list[object]:
    """Run ``call`` for every place in parallel; KstlibErrors are returned, not raised."""
    def one(place: Place) -> object:
        try:
            return call(place)
        except KstlibError as exc:
            return exc

    if len(places) <= 1:
        return [one(p) for p in places]
    with ThreadPoolExecutor(max_workers=len(places)) as pool:
        return list(pool.map(one, places))
