"""The last validated form of each config file, so that unchanged files are not parsed again.

``inv --list`` and ``kstlib ops list`` run often and the file rarely changes: parsing it means
importing PyYAML and voluptuous and validating every entry, which was a third of the start-up
cost of a project with 50 sessions. A cached result is used only when EVERYTHING it was derived
from is the same: the file's path and exact text (a CRC of the content, not its mtime, so an edit
made within the same clock tick is never missed), the current folder (warnings show paths
relative to it), the kstlib version and the code that validated it (the modification times of
the parsing and validation modules). Anything unreadable or different is simply a miss.

Files live under ``$XDG_CACHE_HOME/kstlib-tasks/configs/`` (default ``~/.cache``); failing to
write one is never an error.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

from . import __version__
from .config import OpsConfig
from .models import SessionSpec

_FORMAT = 1
_CODE = ("config.py", "config_parser.py", "validation.py", "models.py")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kstlib-tasks" / "configs"


def _key(path: Path, text: str) -> list[Any]:
    here = Path(__file__).parent
    code = [os.stat(here / name).st_mtime_ns for name in _CODE]
    data = text.encode("utf-8")
    return [_FORMAT, __version__, str(path), os.getcwd(), len(data), zlib.crc32(data), code]


def _file(path: Path) -> Path:
    return cache_dir() / f"{zlib.crc32(str(path).encode()):08x}.json"


def load(path: Path, text: str) -> OpsConfig | None:
    """The cached OpsConfig for this exact file text, or None."""
    try:
        entry = json.loads(_file(path).read_text(encoding="utf-8"))
        if entry.get("key") != _key(path, text):
            return None
        data = entry["config"]
        return OpsConfig(
            path=Path(data["path"]),
            base_dir=Path(data["base_dir"]),
            default_backend=data["default_backend"],
            tmux_binary=data["tmux_binary"],
            container_runtime=data["container_runtime"],
            sessions={spec["name"]: SessionSpec(**spec) for spec in data["sessions"]},
            invalid=data["invalid"],
            warnings=tuple(data["warnings"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: Path, text: str, config: OpsConfig) -> None:
    """Keep ``config`` as the validated form of ``text``; silently skipped when not writable."""
    entry = {
        "key": _key(path, text),
        "config": {
            "path": str(config.path),
            "base_dir": str(config.base_dir),
            "default_backend": config.default_backend,
            "tmux_binary": config.tmux_binary,
            "container_runtime": config.container_runtime,
            "sessions": [spec.as_dict() for spec in config.sessions.values()],
            "invalid": dict(config.invalid),
            "warnings": list(config.warnings),
        },
    }
    target = _file(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass
