"""Frozen, typed data passed between the layers: what to run (spec) and what runs (status).

Both are plain values so that the config loader, the manager, the backends and the renderers can
share them without sharing behaviour; every backend reports with the same state vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Literal

BackendName = Literal["tmux", "container"]
BACKENDS: tuple[BackendName, ...] = ("tmux", "container")
RUNTIMES: tuple[str, ...] = ("podman", "docker")


class State(enum.StrEnum):
    """One vocabulary for every backend, so `list` can merge them in one table."""

    DEFINED = "defined"  # only in the config, nothing live
    RUNNING = "running"
    EXITED = "exited"  # the command ended by itself; exit code known
    STOPPED = "stopped"  # live object that is not running and did not exit (created, paused)
    UNKNOWN = "unknown"


def _frozen_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class SessionSpec:
    """A validated session: everything a backend needs to start it, nothing it must re-check.

    `command` is already an argv (split with shlex by the validators); `command_text` keeps the
    text as written, for help texts and messages. `working_dir` is absolute once loaded.
    """

    name: str
    backend: BackendName = "tmux"
    command: tuple[str, ...] = ()
    command_text: str | None = None
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    volumes: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    runtime: str | None = None  # podman | docker | None (auto-detect)
    init: bool = True  # container: run an init process as PID 1 so signals reach the command
    socket_name: str | None = None  # tmux -L
    tmux_binary: str = "tmux"
    description: str | None = None  # one line for help texts
    source: str | None = None  # "file:line" of the entry, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", _frozen_mapping(self.env))
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "volumes", tuple(self.volumes))
        object.__setattr__(self, "ports", tuple(self.ports))

    def with_changes(self, **changes: Any) -> SessionSpec:
        """A copy with some fields replaced (used to apply CLI overrides)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies the env MappingProxyType, which cannot be copied.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["env"] = dict(self.env)
        data["command"] = list(self.command)
        data["volumes"] = list(self.volumes)
        data["ports"] = list(self.ports)
        return data

    def fingerprint(self) -> str:
        """A short stable hash of what gets run; stored as a container label to spot drift."""
        data = self.as_dict()
        for informational in ("source", "description", "command_text"):
            data.pop(informational, None)
        import hashlib  # only container starts need these: keep `inv --list` imports small
        import json

        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionStatus:
    """What is (or is not) live for one session name on one backend."""

    name: str
    backend: BackendName
    state: State
    pid: int | None = None
    image: str | None = None
    exit_code: int | None = None
    created_at: str | None = None  # ISO 8601, UTC
    defined: bool = False  # present (and valid) in the config
    managed: bool = False  # started by kstlib
    command: str | None = None
    socket: str | None = None  # tmux socket name (None: default server)
    runtime: str | None = None  # podman | docker for container sessions

    def with_changes(self, **changes: Any) -> SessionStatus:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data
