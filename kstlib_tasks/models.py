"""Frozen, typed data passed between the layers: what to run (spec) and what runs (status).

Both are plain values so that the config loader, the engine, the backends and the renderers can
share them without sharing behaviour. A spec has the fields every backend understands (command,
env, readiness, dependencies, restart policy...) plus an ``options`` object that belongs to its
backend (image and volumes for a container, the socket for tmux): code outside a backend never
needs to know which fields a backend has. Every backend reports with the same state vocabulary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["Edge", "Options", "ProbeSpec", "SessionSpec", "SessionStatus", "State"]

CONDITIONS = ("started", "ready", "completed")
DEFAULT_TIMEOUT = 60.0
DEFAULT_INTERVAL = 0.1


def seconds_text(value: float) -> str:
    """``2.0`` -> ``2``, ``0.5`` -> ``0.5``: the number as a person would write it."""
    return f"{float(value):g}"


class ProbeSpec(NamedTuple):
    """What "ready" means for one session (how to wait for it: :mod:`kstlib_tasks.probes`).

    ``target`` by kind: tcp ``(host, port)`` (an IPv6 host without brackets), http the URL,
    log the regular expression, exec the argv tuple, delay the seconds as a float. A named
    tuple rather than a dataclass: this module is imported by every command.
    """

    kind: str
    target: Any
    timeout: float = DEFAULT_TIMEOUT
    interval: float = DEFAULT_INTERVAL

    def describe(self) -> str:
        """The probe in a message: ``tcp 127.0.0.1:8080``, ``log /ready/``, ``delay 2s``..."""
        if self.kind == "tcp":
            host, port = self.target
            return f"tcp [{host}]:{port}" if ":" in host else f"tcp {host}:{port}"
        if self.kind == "log":
            return f"log /{self.target}/"
        if self.kind == "exec":
            import shlex

            return f"exec {shlex.join(self.target)}"
        if self.kind == "delay":
            return f"delay {seconds_text(self.target)}s"
        return f"{self.kind} {self.target}"

    def bound(self) -> float:
        """How long one attempt may take: long enough for a busy server, short enough to
        notice a crash between attempts."""
        return min(max(self.interval, 0.5), 3.0)


class _Edge(NamedTuple):
    name: str
    condition: str = "ready"


class Edge(_Edge):
    """``name`` must reach ``condition`` (started|ready|completed) before the session that
    lists it may start (ordering: :mod:`kstlib_tasks.graph`)."""

    __slots__ = ()

    def __new__(cls, name: str, condition: str = "ready") -> Edge:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r} (expected one of {CONDITIONS})")
        return super().__new__(cls, name, condition)


class State(enum.StrEnum):
    """One vocabulary for every backend, so `list` can merge them in one table."""

    DEFINED = "defined"  # only in the config, nothing live
    RUNNING = "running"
    EXITED = "exited"  # the command ended by itself (or gave up restarting); exit code known
    STOPPED = "stopped"  # live object that is not running and did not exit (created, paused)
    UNKNOWN = "unknown"  # a backend reported a state we do not know, or did not answer




def frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Options:
    """Base of the backend-owned part of a spec (frozen; subclassed by each backend)."""

    @property
    def image(self) -> str | None:
        return None

    def mount_problems(self) -> list[tuple[int, str]]:
        """(index, why) of each stored volume the mount policy refuses now. ``start``,
        ``check`` and ``export`` ask again: a folder may have become a symlink since the config
        (cached by its bytes) was validated. A backend without volumes has none."""
        return []

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True)
class SessionSpec:
    """A validated session: everything the engine and a backend need, nothing to re-check.

    ``command`` is an argv (split with shlex by the validators, ``$VAR`` not yet expanded);
    ``command_text`` keeps the text as written, for help texts and messages. ``env`` is the
    config's environment (``ops.env_file``, then the session's ``env_file``, then ``env``);
    the caller's environment and ``--env`` are added at start. ``working_dir`` is absolute.
    """

    name: str
    backend: str = "tmux"
    command: tuple[str, ...] = ()
    command_text: str | None = None
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    ready: ProbeSpec | None = None
    depends_on: tuple[Edge, ...] = ()
    groups: tuple[str, ...] = ()
    restart: str = "no"
    max_restarts: int = 5
    options: Options = field(default_factory=Options)
    env_files: tuple[str, ...] = ()  # where parts of ``env`` came from (for check and drift)
    source: str | None = None  # the entry's line in the config file, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", frozen_mapping(self.env))
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "groups", tuple(self.groups))

    @property
    def image(self) -> str | None:
        return self.options.image

    def with_changes(self, **changes: Any) -> SessionSpec:
        """A copy with some fields replaced (used to apply CLI overrides)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class SessionStatus:
    """What is (or is not) live for one session name at one place (backend and scope).

    ``scope`` says where on its backend: the tmux socket name, the container runtime, the swarm
    engine; ``list``, ``status`` and ``stop`` use it to agree on where a session lives.
    ``details`` holds what only one backend knows (replicas, nodes, the socket path...).
    ``recorded`` is the fingerprint stored on the live object at start (None when not started
    by this tool); ``drifted``/``drift`` compare it with the config (filled by the engine).
    """

    name: str
    backend: str
    state: State
    scope: str | None = None
    pid: int | None = None
    image: str | None = None
    exit_code: int | None = None
    created_at: str | None = None  # ISO 8601, UTC
    defined: bool = False  # the live object is the config entry's (same name and place)
    managed: bool = False  # started by kstlib
    command: str | None = None
    restarts: int | None = None
    recorded: Mapping[str, Any] | None = None
    drifted: bool | None = None
    drift: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None  # something the user should know (log capture stopped...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", frozen_mapping(self.details))

    def with_changes(self, **changes: Any) -> SessionStatus:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["state"] = self.state.value
        data["drift"] = list(self.drift)
        data["details"] = dict(self.details)
        data.pop("recorded")
        return data
