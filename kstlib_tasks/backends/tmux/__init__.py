"""tmux, for development: what the rest of the package knows about it (no tmux call here)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import logstore
from ...flags import Flag
from ...models import Options, SessionSpec
from ..base import Backend, BackendType, Validator, unique

if TYPE_CHECKING:
    from ...opsconfig import OpsConfig


@dataclass(frozen=True)
class TmuxOptions(Options):
    socket_name: str | None = None  # tmux -L; None: the default server


class TmuxType(BackendType):
    name = "tmux"
    options_class = TmuxOptions
    inherits_environment = True

    def session_keys(self) -> Mapping[str, Validator]:
        from ... import validation

        return {"socket_name": validation.socket_name}

    def ops_keys(self) -> Mapping[str, tuple[Validator, Any]]:
        from ... import validation

        return {"tmux_binary": (validation.tmux_binary, "tmux")}

    def options(self, clean: Mapping[str, Any], settings: Mapping[str, Any],
                base_dir: Path) -> Options:
        return TmuxOptions(socket_name=clean.get("socket_name"))

    def default_workdir(self, base_dir: Path) -> str | None:
        # A tmux session runs in the project (the config's folder), wherever inv was called.
        return str(base_dir)

    def flags(self) -> tuple[Flag, ...]:
        return (Flag("socket", "L", help="tmux server socket name, as tmux -L (default: the "
                     "config's socket_name, else the default server)", field="socket_name"),)

    def override(self, options: Options, values: Mapping[str, Any], *, session: str,
                 base_dir: Path) -> Options:
        current = options if isinstance(options, TmuxOptions) else TmuxOptions()
        socket = values.get("socket")
        if socket is None:
            return current
        from ... import validation

        return TmuxOptions(validation.check("socket_name", socket, session=session))

    def configured_scope(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        options = spec.options
        return options.socket_name if isinstance(options, TmuxOptions) else None

    def scopes(self, config: OpsConfig) -> list[str | None]:
        """The default server, the configured sockets, and every server this tool started
        something on whose socket still exists (no tmux call for a server that is gone)."""
        from .panes import socket_path

        found: list[str | None] = [None]
        here = os.path.dirname(socket_path(None))  # $TMUX_TMPDIR/tmux-UID
        paths = {socket_path(None)}
        configured = [self.configured_scope(s, config) for s in config.sessions.values()
                      if s.backend == self.name]
        for scope in [*configured, *logstore.scopes_used(self.name)]:
            path = socket_path(scope)
            if path in paths or (scope not in configured and not os.path.exists(path)):
                continue
            paths.add(path)
            # a server of this TMUX_TMPDIR is named as -L names it; others by their path
            if scope is not None and os.path.dirname(path) == here:
                scope = os.path.basename(path)
            found.append(scope)
        return unique(found)

    def same_scope(self, a: str | None, b: str | None) -> bool:
        from .panes import socket_path

        return a == b or socket_path(a) == socket_path(b)

    def remember(self, scope: str | None) -> None:
        from .panes import socket_path

        # by path: a server of another TMUX_TMPDIR is still found (with tmux -S)
        logstore.remember_scope(self.name, socket_path(scope))

    def create(self, scope: str | None, config: OpsConfig) -> Backend:
        from .backend import TmuxBackend

        return TmuxBackend(scope, binary=config.setting("tmux_binary", "tmux"))

    def summary(self, spec: SessionSpec) -> str:
        text = f"tmux: {spec.command_text or ' '.join(spec.command) or 'default shell'}"
        socket = spec.options.socket_name if isinstance(spec.options, TmuxOptions) else None
        return f"{text}, socket {socket}" if socket else text

    def scope_details(self, scope: str | None) -> dict[str, Any]:
        return {"socket": scope}

    def machine_problems(self, spec: SessionSpec, config: OpsConfig) -> list[str]:
        from ... import validation
        from ..base import folder_problem, program_problem

        problems = []
        binary = config.setting("tmux_binary", "tmux")
        if validation.executable(binary) is None:
            problems.append(f"tmux binary {binary!r} not found (apt-get install tmux, or fix "
                            "ops.tmux_binary)")
        workdir = spec.working_dir
        unusable = folder_problem(workdir) if workdir else None
        if unusable:
            problems.append(f"working_dir: {unusable}")
        if spec.command and "$" not in spec.command[0]:
            path = spec.env.get("PATH") or os.environ.get("PATH", os.defpath)
            problem = program_problem(spec.command, path, workdir)
            if problem:
                problems.append(f"command: {problem}")
        return problems

    def machine_summary(self, config: OpsConfig) -> str | None:
        from ... import validation

        binary = config.setting("tmux_binary", "tmux")
        found = validation.executable(binary)
        return f"tmux: {found}" if found else f"tmux: {binary!r} not found"

    def fingerprint_fields(self, spec: SessionSpec) -> dict[str, Any]:
        return {}  # the socket is where it runs, not what runs


TYPE = TmuxType()
