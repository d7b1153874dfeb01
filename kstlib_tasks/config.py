"""Find ``kstlib.conf.yml``, check that it may be trusted, and load it (:class:`OpsConfig`).

Parsing and validation live in :mod:`kstlib_tasks.config_parser`; a config already validated
with these very bytes and this very code is read back from :mod:`kstlib_tasks.config_cache`
instead, so ``inv --list`` and ``kstlib ops list`` do not import PyYAML and voluptuous nor
validate 50 entries on every call. Loading never calls tmux or a container runtime.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from . import trust
from .errors import ConfigError
from .opsconfig import OpsConfig

CONFIG_NAME = "kstlib.conf.yml"
ENV_VAR = "KSTLIB_CONFIG"

__all__ = ["CONFIG_NAME", "ENV_VAR", "OpsConfig", "find_config", "load_config", "parse_config"]


def find_config(
    explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None
) -> Path | None:
    """explicit path > $KSTLIB_CONFIG > nearest kstlib.conf.yml from ``cwd`` upward > None."""
    named = os.fspath(explicit) if explicit is not None else os.environ.get(ENV_VAR) or None
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "" if explicit is not None else f" (from ${ENV_VAR})"
            what = "is not a file" if path.exists() else "does not exist"
            raise ConfigError(f"config file '{named}'{source} {what}", hint="check the path")
        trust.check(path)  # as named: a symlink is judged at its own folder too
        return path.resolve()
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(
    config: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    warn: bool | Callable[[str], None] = True,
) -> OpsConfig:
    """Find, trust, parse and validate; warnings (skipped entries) go to stderr unless
    ``warn`` is off (or a callable receiving each line)."""
    path = find_config(config, cwd=cwd)
    if path is None:
        return OpsConfig(base_dir=(cwd or Path.cwd()).resolve())
    trust.check(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from None
    from . import config_cache

    result = config_cache.load(path, data)
    if result is None:
        result = parse_config(text, path)
        config_cache.store(path, data, result)
    emit = warn if callable(warn) else (_print_warning if warn else None)
    if emit:
        for line in result.warning_lines():
            emit(line)
    return result


def _print_warning(line: str) -> None:
    from .render import printable

    print(f"warning: {printable(line)}", file=sys.stderr)


def parse_config(text: str, path: Path) -> OpsConfig:
    """Validate the text of a config file found at ``path`` (its folder anchors relative paths).

    ConfigError when the file cannot be used at all; invalid entries are in ``.invalid``.
    """
    from .config_parser import parse_config as parse

    return parse(text, path)
