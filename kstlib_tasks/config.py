"""Find ``kstlib.conf.yml`` and load it into validated session specs (:class:`OpsConfig`).

Parsing and validation live in :mod:`kstlib_tasks.config_parser`; a config already validated
with this very text and this very code is read back from :mod:`kstlib_tasks.config_cache`
instead, so ``inv --list`` and ``kstlib ops list`` do not import PyYAML and voluptuous nor
validate 50 entries on every call. Loading never calls tmux or a container runtime.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import ConfigError, InvalidSessionError
from .models import SessionSpec

CONFIG_NAME = "kstlib.conf.yml"
ENV_VAR = "KSTLIB_CONFIG"


# --------------------------------------------------------------------------- lookup


def find_config(
    explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None
) -> Path | None:
    """explicit path > $KSTLIB_CONFIG > nearest kstlib.conf.yml from ``cwd`` upward > None."""
    named = os.fspath(explicit) if explicit is not None else os.environ.get(ENV_VAR) or None
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "" if explicit is not None else f" (from ${ENV_VAR})"
            raise ConfigError(
                f"config file '{named}'{source} does not exist", hint="check the path"
            )
        return path.resolve()
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class OpsConfig:
    """The ``ops:`` section after validation: defaults plus the valid sessions in file order."""

    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    default_backend: str = "tmux"
    tmux_binary: str = "tmux"
    container_runtime: str | None = None
    sessions: Mapping[str, SessionSpec] = field(default_factory=dict)
    invalid: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sessions", MappingProxyType(dict(self.sessions)))
        object.__setattr__(self, "invalid", MappingProxyType(dict(self.invalid)))

    def spec(self, name: str) -> SessionSpec | None:
        """The configured spec; an entry refused by validation is an error that says why."""
        if name in self.invalid:
            # The stored line already says file:line, the session, the field and the reason.
            raise InvalidSessionError(
                self.invalid[name], hint="invalid entries are skipped: fix it in the config"
            )
        return self.sessions.get(name)

    def adhoc_spec(self, name: str, backend: str | None = None) -> SessionSpec:
        """A spec with the config's defaults for a name the config does not define."""
        from . import validation

        clean = validation.check("name", name, session=None)
        return SessionSpec(
            name=clean,
            backend=validation.check("backend", backend or self.default_backend, session=clean),
            tmux_binary=self.tmux_binary,
            runtime=self.container_runtime,
        )


# --------------------------------------------------------------------------- loading


def load_config(
    config: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    warn: bool | Callable[[str], None] = True,
) -> OpsConfig:
    """Find, parse and validate; warnings (skipped entries) go to stderr unless ``warn`` is off."""
    path = find_config(config, cwd=cwd)
    if path is None:
        return OpsConfig(base_dir=(cwd or Path.cwd()).resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from None
    from . import config_cache

    result = config_cache.load(path, text)
    if result is None:
        result = parse_config(text, path)
        config_cache.store(path, text, result)
    emit = warn if callable(warn) else (_print_warning if warn else None)
    if emit:
        for line in result.warnings:
            emit(line)
    return result


def _print_warning(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def parse_config(text: str, path: Path) -> OpsConfig:
    """Validate the text of a config file found at ``path`` (its folder anchors relative paths).

    ConfigError when the file cannot be used at all; invalid entries are in ``.invalid``.
    """
    from .config_parser import parse_config as parse

    return parse(text, path)
