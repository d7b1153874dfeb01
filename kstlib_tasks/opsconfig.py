"""The ``ops:`` section after validation (:class:`OpsConfig`): what the engine works from.

Its own module so that the lookup (``config.py``), the parser (``config_parser.py``) and the
cache (``config_cache.py``) all depend on it and not on each other. Problems are kept as
``(line, text)`` and given the file's name only when shown (:meth:`OpsConfig.located`), so a
validated config does not depend on the folder it is looked at from (the cache relies on it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import InvalidSessionError, SessionNotFoundError, Suggest
from .models import SessionSpec

if TYPE_CHECKING:
    from .graph import Graph

Problem = tuple[int, str]  # (line in the file, text without the file's name)


def display_path(path: Path) -> str:
    """The config file as messages name it: relative to the current folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


@dataclass(frozen=True)
class OpsConfig:
    """Defaults plus the valid sessions in file order, and what was refused and why."""

    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    default_backend: str = "tmux"
    settings: Mapping[str, Any] = field(default_factory=dict)  # backends' ops keys
    sessions: Mapping[str, SessionSpec] = field(default_factory=dict)
    invalid: Mapping[str, Problem] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()
    unknown_top: tuple[Problem, ...] = ()  # top-level keys next to ops: that look like typos
    problems: tuple[Problem, ...] = ()  # every problem of every refused entry (for check)
    env_files: tuple[str, ...] = ()  # every env file read (the cache re-checks them)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sessions", MappingProxyType(dict(self.sessions)))
        object.__setattr__(self, "invalid", MappingProxyType(dict(self.invalid)))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    @property
    def shown(self) -> str | None:
        """The file as messages name it: relative to the current folder when inside it."""
        return display_path(self.path) if self.path is not None else None

    def located(self, problem: Problem) -> str:
        """``kstlib.conf.yml:12: session 'x': image: ...`` for one stored problem."""
        line, text = problem
        shown = self.shown
        if shown is None:
            return text
        return f"{shown}:{line}: {text}"

    def warning_lines(self) -> list[str]:
        return [self.located(p) for p in self.warnings]

    def setting(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def spec(self, name: str) -> SessionSpec | None:
        """The configured spec; an entry refused by validation is an error that says why."""
        if name in self.invalid:
            raise InvalidSessionError(
                self.located(self.invalid[name]),
                hint="invalid entries are skipped: fix it in the config",
            )
        return self.sessions.get(name)

    def source(self, spec: SessionSpec, shown: str | None = None) -> str | None:
        """``file:line`` of an entry, for help texts (``shown``: the file's name, when the
        caller worked it out once for many entries)."""
        shown = shown or self.shown
        if shown is None or not spec.source:
            return None
        return f"{shown}:{spec.source}"

    def groups(self) -> dict[str, list[str]]:
        """group name -> its sessions, in config order."""
        found: dict[str, list[str]] = {}
        for spec in self.sessions.values():
            for group in spec.groups:
                found.setdefault(group, []).append(spec.name)
        return found

    def graph(self) -> Graph:
        """The valid sessions' dependencies and groups (what ``up``, ``down`` and ``export``
        order by); entries with a broken dependency were refused at load, so it is whole."""
        from .graph import Graph

        return Graph({name: spec.depends_on for name, spec in self.sessions.items()},
                     groups={name: spec.groups for name, spec in self.sessions.items()})

    def targets(self, graph: Graph, targets: Sequence[str]) -> list[str]:
        """Command-line targets (sessions or groups; none: every session) to session names.

        A refused entry is its own problem; any other unknown target a did-you-mean.
        """
        from .graph import UnknownTarget

        try:
            return graph.resolve(list(targets))
        except UnknownTarget as exc:
            for target in targets:
                if target in self.invalid:
                    self.spec(target)  # raises the entry's own problem
            raise SessionNotFoundError(str(exc), hint=Suggest("list")) from None

    def names(self) -> list[str]:
        """Every name the config mentions: valid and refused entries."""
        return [*self.sessions, *(n for n in self.invalid if n not in self.sessions)]
