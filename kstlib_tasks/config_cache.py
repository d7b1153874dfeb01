"""The last validated form of each config file, so that unchanged files are not parsed again.

``inv --list`` and ``kstlib ops list`` run often and the file rarely changes: parsing it means
importing PyYAML and voluptuous and validating every entry, which was a third of the start-up
cost of a project with 50 sessions. A cached result is used only when everything it was derived
from is the same: the file's path and a SHA-256 of its exact bytes (never its mtime, nor a
checksum an edit could match), the bytes of every env file it read, the kstlib version and the
code that validated it.

The cache decides what runs, so it is never trusted more than the file itself: it lives in a
folder only the user can write (0700, owned by the user, not a symlink), and every entry is
signed with HMAC-SHA256 under a per-user secret kept in the private state folder. A hand-edited
or foreign entry fails the signature and is simply a miss: the file is parsed again.

Files live under ``$XDG_CACHE_HOME/kstlib-tasks/configs/`` (default ``~/.cache``); failing to
read or write one is never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__, backends, logstore, trust
from .models import Edge, ProbeSpec, SessionSpec
from .opsconfig import OpsConfig

_FORMAT = 3


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kstlib-tasks" / "configs"


def _private(folder: Path, create: bool) -> bool:
    """True when ``folder`` is a real folder of ours that nobody else may write."""
    try:
        if create:
            # $XDG_CACHE_HOME (~/.cache) may not exist yet: made as any XDG folder is
            folder.parent.parent.mkdir(parents=True, exist_ok=True)
            for part in (folder.parent, folder):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700)
        info = os.lstat(folder)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _secret(create: bool) -> bytes | None:
    path = logstore.state_dir() / "cache.key"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            if info.st_uid != os.getuid() or info.st_mode & 0o077:
                return None
            return os.read(fd, 64) or None
        finally:
            os.close(fd)
    except OSError:
        if not create:
            return None
    try:
        logstore.private_dir(path.parent)
        secret = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, secret)
        finally:
            os.close(fd)
        return secret
    except OSError:
        return None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _code_stamp() -> list[int]:
    """The modification times of every module of the package: any of them may take part in
    validating a config (a backend's own keys are validated by its package)."""
    stamps: list[int] = []
    folders = [str(Path(__file__).parent)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    stamps.append(entry.stat().st_mtime_ns)
    return stamps


def _env_stamp(files: list[str]) -> list[list[Any]]:
    """What an entry's env files were: their bytes, and their owner and mode (an env file is
    held to the trust rules, so a chmod changes the verdict as an edit does)."""
    stamp: list[list[Any]] = []
    for name in files:
        try:
            with open(name, "rb") as fh:
                info = os.fstat(fh.fileno())
                stamp.append([name, _digest(fh.read()), info.st_uid, info.st_mode])
        except OSError:
            stamp.append([name, "", -1, -1])
    return stamp


def _key(path: Path, data: bytes) -> list[Any]:
    # the caller's trust opt-in changes which env files are accepted
    trusted = os.environ.get(trust.TRUST_VAR, "")
    return [_FORMAT, __version__, str(path), _digest(data), _code_stamp(), trusted]


def _file(path: Path) -> Path:
    return cache_dir() / f"{_digest(str(path).encode())[:16]}.json"


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


def load(path: Path, data: bytes) -> OpsConfig | None:
    """The cached OpsConfig for these exact bytes, or None."""
    folder = cache_dir()
    if not _private(folder, create=False):
        return None
    secret = _secret(create=False)
    if secret is None:
        return None
    try:
        fd = os.open(_file(path), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as fh:
            entry = json.load(fh)
        body = entry["body"]
        if not hmac.compare_digest(_sign(secret, body), entry["mac"]):
            return None
        content = json.loads(body)
        if content["key"] != _key(path, data):
            return None
        config = content["config"]
        if _env_stamp(config["env_files"]) != content["env"]:
            return None
        return _config_from(config)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: Path, data: bytes, config: OpsConfig) -> None:
    """Keep ``config`` as the validated form of ``data``; silently skipped when not possible."""
    folder = cache_dir()
    if not _private(folder, create=True):
        return
    secret = _secret(create=True)
    if secret is None:
        return
    serial = _config_to(config)
    body = json.dumps({"key": _key(path, data), "env": _env_stamp(serial["env_files"]),
                       "config": serial}, sort_keys=True)
    entry = json.dumps({"body": body, "mac": _sign(secret, body)})
    target = _file(path)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(entry)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- (de)serializing


def spec_to_dict(spec: SessionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "backend": spec.backend,
        "command": list(spec.command),
        "command_text": spec.command_text,
        "working_dir": spec.working_dir,
        "env": dict(spec.env),
        "description": spec.description,
        "ready": _probe_to(spec.ready) if spec.ready else None,
        "depends_on": [[e.name, e.condition] for e in spec.depends_on],
        "groups": list(spec.groups),
        "restart": spec.restart,
        "max_restarts": spec.max_restarts,
        "options": spec.options.as_dict(),
        "env_files": list(spec.env_files),
        "source": spec.source,
    }


def spec_from_dict(data: Mapping[str, Any]) -> SessionSpec:
    kind = backends.get(data["backend"])
    return SessionSpec(
        name=data["name"],
        backend=data["backend"],
        command=tuple(data["command"]),
        command_text=data["command_text"],
        working_dir=data["working_dir"],
        env=data["env"],
        description=data["description"],
        ready=_probe_from(data["ready"]) if data["ready"] else None,
        depends_on=tuple(Edge(n, c) for n, c in data["depends_on"]),
        groups=tuple(data["groups"]),
        restart=data["restart"],
        max_restarts=data["max_restarts"],
        options=kind.options_from_dict(data["options"]),
        env_files=tuple(data["env_files"]),
        source=data["source"],
    )


def _probe_to(probe: ProbeSpec) -> dict[str, Any]:
    target = list(probe.target) if isinstance(probe.target, tuple) else probe.target
    return {"kind": probe.kind, "target": target, "timeout": probe.timeout,
            "interval": probe.interval}


def _probe_from(data: Mapping[str, Any]) -> ProbeSpec:
    target = data["target"]
    return ProbeSpec(data["kind"], tuple(target) if isinstance(target, list) else target,
                     float(data["timeout"]), float(data["interval"]))


def _config_to(config: OpsConfig) -> dict[str, Any]:
    return {
        "path": str(config.path),
        "base_dir": str(config.base_dir),
        "default_backend": config.default_backend,
        "settings": dict(config.settings),
        "sessions": [spec_to_dict(spec) for spec in config.sessions.values()],
        "invalid": {name: list(problem) for name, problem in config.invalid.items()},
        "warnings": [list(p) for p in config.warnings],
        "unknown_top": [list(p) for p in config.unknown_top],
        "problems": [list(p) for p in config.problems],
        "env_files": list(config.env_files),
    }


def _config_from(data: Mapping[str, Any]) -> OpsConfig:
    return OpsConfig(
        path=Path(data["path"]),
        base_dir=Path(data["base_dir"]),
        default_backend=data["default_backend"],
        settings=data["settings"],
        sessions={spec["name"]: spec_from_dict(spec) for spec in data["sessions"]},
        invalid={name: (int(p[0]), str(p[1])) for name, p in data["invalid"].items()},
        warnings=tuple((int(p[0]), str(p[1])) for p in data["warnings"]),
        unknown_top=tuple((int(p[0]), str(p[1])) for p in data["unknown_top"]),
        problems=tuple((int(p[0]), str(p[1])) for p in data["problems"]),
        env_files=tuple(data["env_files"]),
    )
