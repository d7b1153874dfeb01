"""One facade over the config and the backends: start, stop, inspect sessions by name.

The front ends (the ``kstlib`` command and the invoke tasks) only ever talk to
:class:`SessionManager`, so they cannot drift apart. The manager decides which backend serves a
session (tmux with the spec's binary and socket, or a container runtime), applies one-off
overrides through the shared validation module, and merges the config with what is live.

It is lazy on purpose: building a manager costs nothing, a backend is built (and its module
imported) the first time it is needed, and a session whose configured backend answers is never
looked up elsewhere. ``list`` makes one listing call per tmux server and per container runtime
involved, whatever the number of sessions.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import (
    BackendNotFoundError,
    KstlibError,
    SessionAlreadyRunningError,
    SessionNotFoundError,
    SessionNotRunningError,
    ValidationError,
)
from .models import SessionSpec, SessionStatus, State

if TYPE_CHECKING:
    from .backends.base import Backend
    from .config import OpsConfig

LIST_HINT = "see: kstlib ops list"
# Names of live objects we may look up but not create: the container-name grammar of docker and
# podman, bounded. Only ever passed as one argv word (or tmux's exact "=name" target).
LIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)

# (backend, scope): scope is the tmux socket name (None: default server) or the runtime name.
Location = tuple[str, str | None]


def _warn_stderr(line: str) -> None:
    print(line, file=sys.stderr)


class SessionManager:
    """Start/stop/restart/status/logs/attach/list sessions by name.

    Collaborators are injectable so unit tests can use tiny fakes; the defaults are the real
    backends, imported only when first used.
    """

    def __init__(
        self,
        config: OpsConfig,
        *,
        tmux_factory: Callable[..., Backend] | None = None,
        container_factory: Callable[[str], Backend] | None = None,
        detect: Callable[[str | None], str] | None = None,
        warn: Callable[[str], None] = _warn_stderr,
    ):
        self.config = config
        self._tmux_factory = tmux_factory
        self._container_factory = container_factory
        self._detect = detect
        self._warn = warn
        self._backends: dict[tuple[str, ...], Backend] = {}
        self._runtime: str | None = None

    # ------------------------------------------------------------------ backends

    def tmux(self, socket: str | None = None, binary: str | None = None) -> Backend:
        """The tmux backend for one server (socket); cached per (binary, socket)."""
        binary = binary or self.config.tmux_binary
        key = ("tmux", binary, socket or "")
        if key not in self._backends:
            factory = self._tmux_factory
            if factory is None:
                from .backends.tmux import TmuxBackend

                factory = TmuxBackend
            self._backends[key] = factory(binary=binary, socket=socket)
        return self._backends[key]

    def container(self, runtime: str | None = None) -> Backend:
        """The container backend for ``runtime`` (default: the config's, else auto-detected)."""
        runtime = runtime or self.default_runtime()
        key = ("container", runtime)
        if key not in self._backends:
            factory = self._container_factory
            if factory is None:
                from .backends.container import ContainerBackend

                factory = ContainerBackend
            self._backends[key] = factory(runtime)
        return self._backends[key]

    def default_runtime(self) -> str:
        """``ops.container_runtime``, else podman/docker as found in PATH (detected once)."""
        if self.config.container_runtime:
            return self.config.container_runtime
        if self._runtime is None:
            detect = self._detect
            if detect is None:
                from .backends.container import detect_runtime

                detect = detect_runtime
            self._runtime = detect(None)
        return self._runtime

    def backend_for(self, spec: SessionSpec) -> Backend:
        if spec.backend == "container":
            return self.container(spec.runtime)
        return self.tmux(spec.socket_name, spec.tmux_binary or None)

    def _at(self, location: Location) -> Backend:
        backend, scope = location
        if backend == "container":
            return self.container(scope)
        return self.tmux(scope)

    # ------------------------------------------------------------------ lookups

    def spec(self, name: str) -> SessionSpec | None:
        """The configured spec (InvalidSessionError for a refused entry), or None.

        A name that breaks the session-name rule can still be LOOKED UP when it is a valid
        container name (``happy_turing``, made by docker): ``list`` shows every container, so
        each must be reachable by name. Such a name can never be started (the overrides check
        it with the strict rule).
        """
        from .validation import check

        try:
            check("name", name)
        except ValidationError:
            if not LIVE_NAME.fullmatch(name):
                raise
            return None
        return self.config.spec(name)

    def _candidates(self, name: str, spec: SessionSpec | None) -> list[Location]:
        """Where a session of that name may live, most likely first.

        The configured backend comes first; the other one second, because a session may have
        been started with ``--backend`` (live state wins over the config). Names not in the
        config are looked for on the default tmux server, every configured socket, and the
        container runtime.
        """
        if spec is None:
            return [*(("tmux", s) for s in self._tmux_servers()), ("container", None)]
        tmux: Location = ("tmux", spec.socket_name)
        container: Location = ("container", spec.runtime)
        places = [container, tmux] if spec.backend == "container" else [tmux, container]
        # started with another -L than the configured socket
        places += [("tmux", s) for s in _started_sockets() if s != spec.socket_name]
        return places

    def _find_live(
        self, name: str, spec: SessionSpec | None
    ) -> tuple[Location, SessionStatus] | None:
        """The live session of that name: the configured backend if it answers, else elsewhere.

        A missing secondary backend (no podman on a tmux-only machine) is not an error here:
        the session simply is not there. A missing PRIMARY backend is reported.
        """
        found: list[tuple[Location, SessionStatus]] = []
        candidates = self._candidates(name, spec)
        missing: list[BackendNotFoundError] = []
        for index, place in enumerate(candidates):
            try:
                status = self._at(place).status(name)
            except BackendNotFoundError as exc:
                if index == 0 and spec is not None:
                    raise
                missing.append(exc)
                continue
            if status is None:
                continue
            if status.state == State.RUNNING:
                return place, status
            found.append((place, status))
        if found:
            return found[0]
        if missing and len(missing) == len(candidates):
            raise missing[0]
        return None

    def _decorate(self, status: SessionStatus, spec: SessionSpec | None) -> SessionStatus:
        """Fill ``defined``: the status belongs to the config entry (same name and backend)."""
        defined = spec is not None and _matches(spec, status)
        if defined != status.defined:
            status = status.with_changes(defined=defined)
        return status

    def _not_found(self, name: str) -> SessionNotFoundError:
        where = f" in {self.config.path.name}" if self.config.path else " (no kstlib.conf.yml)"
        return SessionNotFoundError(
            f"no session named '{name}': not defined{where} and not running", hint=LIST_HINT
        )

    def _nothing_live(self, name: str, spec: SessionSpec | None, what: str | None = None,
                      hint: str | None = None) -> KstlibError:
        """Nothing of that name to act on: an unknown name, or a config entry not running."""
        if spec is None:
            return self._not_found(name)
        return SessionNotRunningError(
            f"session '{name}' {what or f'is not running ({spec.backend})'}", hint=hint)

    # ------------------------------------------------------------------ verbs

    def status(self, name: str) -> SessionStatus:
        """The live state when there is one (whatever backend), else ``defined``."""
        spec = self.spec(name)
        live = self._find_live(name, spec)
        if live is not None:
            return self._decorate(live[1], spec)
        if spec is None:
            raise self._not_found(name)
        return defined_status(spec)

    def start(self, name: str, **overrides: Any) -> SessionStatus:
        """Start ``name`` from its config entry, with one-off ``overrides`` (validated).

        Overrides are those of :func:`kstlib_tasks.validation.apply_overrides`. A name not in
        the config can be started when the overrides say what to run (``command`` or
        ``image``): containers and scripts do not need a config entry.
        """
        from .validation import apply_overrides

        spec = self.spec(name)
        configured = spec
        if spec is None:
            if not (overrides.get("command") or overrides.get("image")):
                raise SessionNotFoundError(
                    f"no session named '{name}' in the config",
                    hint="define it in kstlib.conf.yml or give --command/--image",
                )
            spec = self.config.adhoc_spec(name, overrides.get("backend"))
        new_backend = overrides.get("backend")
        if new_backend and new_backend != spec.backend:
            spec = _moved(spec, overrides)
        overrides.setdefault("base_dir", Path.cwd())
        spec = apply_overrides(spec, **overrides)
        self._refuse_if_running_elsewhere(spec, configured)
        backend = self.backend_for(spec)
        status = backend.start(spec)
        if status.state == State.EXITED and status.exit_code:
            raise _exited_at_once(status, backend)
        return self._decorate(status.with_changes(managed=True), configured)

    def _refuse_if_running_elsewhere(self, spec: SessionSpec,
                                     configured: SessionSpec | None) -> None:
        """One name, one running session: starting astro-dev in tmux while it runs as a
        container (or the reverse) would make ``status``/``stop`` ambiguous. The target backend
        refuses its own duplicates; this looks at the other places, ignoring a backend that is
        not installed."""
        target: Location = (spec.backend, spec.socket_name if spec.backend == "tmux"
                            else spec.runtime)
        for place in self._candidates(spec.name, configured):
            if place == target or (place[0] == "container" == spec.backend):
                continue
            try:
                current = self._at(place).status(spec.name)
            except BackendNotFoundError:
                continue
            if current is not None and current.state == State.RUNNING:
                raise SessionAlreadyRunningError(
                    f"session '{spec.name}' is already running ({current.backend})",
                    hint=f"stop it first: kstlib ops stop {spec.name}",
                )

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop the live session of that name; the result is the status after stopping."""
        spec = self.spec(name)
        live = self._find_live(name, spec)
        if live is None:
            raise self._nothing_live(name, spec)
        place, _ = live
        last = self._at(place).stop(name, timeout=timeout, force=force)
        if spec is not None and _matches(spec, last):
            return defined_status(spec)
        return last.with_changes(state=State.STOPPED, pid=None)

    def restart(self, name: str, *, timeout: float = 10.0, force: bool = False,
                **overrides: Any) -> SessionStatus:
        """Stop when live (wherever it runs), then start with the config and overrides."""
        spec = self.spec(name)
        live = self._find_live(name, spec)
        if live is not None:
            self._at(live[0]).stop(name, timeout=timeout, force=force)
        elif spec is None and not (overrides.get("command") or overrides.get("image")):
            raise self._not_found(name)
        return self.start(name, **overrides)

    def logs(self, name: str, lines: int | None = None) -> list[str]:
        """The last output: of the live session, else of the last run (kept after stop)."""
        spec = self.spec(name)
        live = self._find_live(name, spec)
        if live is not None:
            return self._at(live[0]).logs(name, lines)
        place = self._last_log(name, spec)
        if place is None:
            raise self._nothing_live(name, spec, "has no output yet (never started)",
                                     hint=f"kstlib ops start {name}")
        return self._at(place).logs(name, lines)

    def _last_log(self, name: str, spec: SessionSpec | None) -> Location | None:
        """Where the most recent kept output of a session that is gone lives (no backend call)."""
        from . import logstore

        places: list[Location] = []
        known = [("tmux", s) for s in _started_sockets(live_only=False)]
        for backend, scope in [*self._candidates(name, spec), *known]:
            if backend == "container" and scope is None:
                scopes: Iterable[str | None] = [self.config.container_runtime or "podman",
                                                "podman", "docker"]
            else:
                scopes = [scope]
            for item in scopes:
                if (backend, item) not in places:
                    places.append((backend, item))
        best: tuple[float, Location] | None = None
        for backend, scope in places:
            path = logstore.log_path(backend, scope, name)
            for candidate in (path, logstore.rotated(path)):
                try:
                    mtime = candidate.stat().st_mtime
                except OSError:
                    continue
                if best is None or mtime > best[0]:
                    best = (mtime, (backend, scope))
        return best[1] if best else None

    def attach(self, name: str) -> NoReturn:
        """Replace this process with the backend's attach (tmux attach / runtime attach)."""
        spec = self.spec(name)
        live = self._find_live(name, spec)
        if live is None:
            raise self._nothing_live(name, spec, hint=f"kstlib ops start {name}")
        place, status = live
        if status.state != State.RUNNING:
            raise SessionNotRunningError(
                f"session '{name}' is not running ({status.state.value}"
                + (f", exit code {status.exit_code}" if status.exit_code is not None else "")
                + ")",
                hint=f"kstlib ops logs {name}",
            )
        sys.stdout.flush()
        sys.stderr.flush()
        self._at(place).attach(name)

    def list(self, backend: str | None = None) -> list[SessionStatus]:
        """Config entries (``defined``) merged with everything live.

        One listing call per tmux server involved (see :meth:`_tmux_servers`) and per
        container runtime involved (the default one + any a session names). A live session
        replaces its config entry when name and backend match (on the configured tmux socket
        first, see :func:`merge`); others are appended, sorted. A missing backend is at most a
        warning (only when the config uses it).
        """
        if backend is not None:
            from .validation import check

            backend = check("backend", backend)
        specs = [s for s in self.config.sessions.values() if backend in (None, s.backend)]
        live: list[SessionStatus] = []
        if backend in (None, "tmux"):
            for socket in self._tmux_servers():
                live.extend(self._listing("tmux", lambda s=socket: self.tmux(s)))
        if backend in (None, "container"):
            for runtime in self._runtimes():
                live.extend(self._listing("container", lambda r=runtime: self.container(r)))
        return merge(specs, live)

    def _tmux_servers(self) -> list[str | None]:
        """The default server, the configured sockets, and those given to ``start -L``."""
        servers: list[str | None] = [None]
        configured = [s.socket_name for s in self.config.sessions.values() if s.backend == "tmux"]
        for socket in [*configured, *_started_sockets()]:
            if socket not in servers:
                servers.append(socket)
        return servers

    def _runtimes(self) -> list[str | None]:
        """The default runtime (``None``: detect lazily) plus any runtime a session names."""
        runtimes: list[str | None] = [None]
        for spec in self.config.sessions.values():
            if spec.runtime and spec.runtime not in runtimes:
                runtimes.append(spec.runtime)
        if len(runtimes) > 1:
            try:
                default = self.default_runtime()
            except BackendNotFoundError:
                default = None
            runtimes = [r for r in runtimes if r is not None and r != default]
            runtimes.insert(0, default)
        return runtimes

    def _listing(self, kind: str, get: Callable[[], Backend]) -> list[SessionStatus]:
        """One backend's listing; a missing backend is only worth a warning when the config
        uses it (no podman is fine for a tmux-only project)."""
        try:
            return get().list()
        except BackendNotFoundError as exc:
            if any(s.backend == kind for s in self.config.sessions.values()):
                self._warn(f"warning: {exc}")
            return []


def _moved(spec: SessionSpec, overrides: dict[str, Any]) -> SessionSpec:
    """The spec for another backend than the configured one (``start --backend``).

    A tmux command and working_dir are host things, a container's are things inside its
    image: neither means anything on the other backend (``python -m astro.bot`` is not in the
    astro-bot image, whose own CMD runs the bot; podman refuses a missing workdir). So they are
    dropped unless given again with ``--command`` / ``--workdir``; the env is kept.
    """
    changes: dict[str, Any] = {}
    if not overrides.get("working_dir"):
        changes["working_dir"] = None
    if not overrides.get("command"):
        changes.update(command=(), command_text=None)
    return spec.with_changes(**changes) if changes else spec


def _exited_at_once(status: SessionStatus, backend: Backend) -> SessionNotRunningError:
    """A start whose command failed before we even looked: an error, not "started".

    The last line of its output usually says why (command not found in the image...).
    """
    try:
        lines = [line for line in backend.logs(status.name, 5) if line.strip()]
    except KstlibError:
        lines = []
    why = f": {lines[-1].strip()}" if lines else ""
    return SessionNotRunningError(
        f"session '{status.name}' exited at once with code {status.exit_code}{why}",
        hint=f"see: kstlib ops logs {status.name}",
    )


def _started_sockets(live_only: bool = True) -> list[str]:
    """tmux sockets that kstlib started sessions on (by default: whose server is still there).

    ``kstlib ops start x -L mysock`` puts x on a server the config does not name; without
    this, ``status``/``stop``/``list`` would never look there. Every tmux start keeps its
    output under the log store, one folder per socket: those folders name the sockets, and
    a server whose socket file is gone is skipped without calling tmux (``logs`` after a stop
    still wants those: ``live_only=False``).
    """
    from . import logstore
    from .backends.tmux import socket_path

    try:
        folders = sorted(p.name for p in (logstore.state_dir() / "logs" / "tmux").iterdir())
    except OSError:
        return []
    return [name for name in folders
            if name != "default" and (not live_only or os.path.exists(socket_path(name)))]


def _matches(spec: SessionSpec, status: SessionStatus, exact: bool = False) -> bool:
    """The live session is this config entry: same name and backend.

    ``exact`` also wants the configured tmux socket; without it a session started with another
    ``-L`` still belongs to its entry (``merge`` tries the exact match first).
    """
    if spec.name != status.name or spec.backend != status.backend:
        return False
    if exact and spec.backend == "tmux":
        return (spec.socket_name or None) == (status.socket or None)
    return True


def defined_status(spec: SessionSpec) -> SessionStatus:
    """What a config entry looks like when nothing of it is live."""
    return SessionStatus(
        name=spec.name,
        backend=spec.backend,
        state=State.DEFINED,
        image=spec.image if spec.backend == "container" else None,
        defined=True,
        command=spec.command_text,
        socket=spec.socket_name if spec.backend == "tmux" else None,
        runtime=spec.runtime if spec.backend == "container" else None,
    )


def merge(specs: Iterable[SessionSpec], live: Iterable[SessionStatus]) -> list[SessionStatus]:
    """Config order first (each entry live or ``defined``), then unconfigured live sessions.

    A config entry takes the live session on its own tmux socket first, else one of the same
    name and backend elsewhere (started with ``-L``); any other live session is a row of its own.
    """
    rows: list[SessionStatus] = []
    slot: dict[tuple[str, str], tuple[int, SessionSpec]] = {}
    for spec in specs:
        slot[(spec.name, spec.backend)] = (len(rows), spec)
        rows.append(defined_status(spec))
    pending: list[SessionStatus] = []
    seen: set[tuple[str, str, str | None, str | None]] = set()
    for status in live:
        key = (status.name, status.backend, status.socket, status.runtime)
        if key not in seen:
            seen.add(key)
            pending.append(status)
    for exact in (True, False):
        unplaced: list[SessionStatus] = []
        for status in pending:
            position, spec = slot.get((status.name, status.backend), (-1, None))
            if (spec is not None and rows[position].state == State.DEFINED
                    and _matches(spec, status, exact=exact)):
                rows[position] = status.with_changes(defined=True)
            else:
                unplaced.append(status)
        pending = unplaced
    extra = [status.with_changes(defined=False) for status in pending]
    extra.sort(key=lambda s: (s.backend, s.name, s.socket or "", s.runtime or ""))
    return rows + extra
