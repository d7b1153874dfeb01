"""The verbs for one session by name: start, stop, restart, status, logs, attach, list.

The front ends (the ``kstlib`` command and the invoke tasks) and scripts talk to
:class:`SessionManager`; it finds where a name lives (:mod:`.engine.places`), applies one-off
overrides (:mod:`.engine.overrides`), resolves what to run (:mod:`.engine.launch`) and hands the
work to the backend. It is lazy on purpose: building a manager costs nothing, a backend object
is built (and its module imported) the first time it is needed, and a session found where its
config entry says is never looked for elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from . import backends
from .engine import drift, launch, merge, overrides
from .engine.places import Factory, Place, Places, each
from .errors import (
    InvalidSessionError,
    KstlibError,
    SessionAlreadyRunningError,
    SessionNotFoundError,
    SessionNotRunningError,
    Suggest,
    ValidationError,
)
from .models import SessionSpec, SessionStatus, State

if TYPE_CHECKING:
    from .opsconfig import OpsConfig

# Names of live objects we may look up but not create: the container-name grammar of docker and
# podman, bounded. Only ever passed as one argv word (or tmux's exact "=name" target).
LIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)


@contextlib.contextmanager
def about(name: str) -> Iterator[None]:
    """Errors met while working on session ``name`` name it (a backend's own errors may not:
    an engine that does not answer knows nothing of the session it was asked about)."""
    try:
        yield
    except KstlibError as exc:
        if exc.session is None:
            exc.session = name
        raise


F = TypeVar("F", bound=Callable[..., Any])


def naming(method: F) -> F:
    """A verb's errors name the session it was asked about (see :func:`about`)."""
    @functools.wraps(method)
    def verb(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        with about(name):
            return method(self, name, *args, **kwargs)

    return cast(F, verb)


def _warn_stderr(line: str) -> None:
    from .render import printable

    print(printable(line), file=sys.stderr)


class SessionManager:
    """Start/stop/restart/status/logs/attach/list sessions by name.

    ``factory(backend, scope, config)`` builds backend objects (tests pass tiny fakes); the
    default asks the registry. ``warn`` receives each warning line (default: stderr).
    """

    def __init__(self, config: OpsConfig, *, factory: Factory | None = None,
                 warn: Callable[[str], None] = _warn_stderr):
        self.config = config
        self.places = Places(config, factory=factory)
        self.warn = warn

    # ------------------------------------------------------------------ lookups

    def spec(self, name: str) -> SessionSpec | None:
        """The configured spec (InvalidSessionError for a refused entry), or None.

        A name that breaks the session-name rule can still be LOOKED UP when it is a valid
        container name (``happy_turing``, made by docker): ``list`` shows every container, so
        each must be reachable by name. Such a name can never be started.
        """
        if name in self.config.sessions or name in self.config.invalid:
            return self.config.spec(name)  # a config key: valid by construction (no import)
        from .validation import check

        try:
            check("name", name)
        except ValidationError:
            if not LIVE_NAME.fullmatch(name):
                raise
            return None
        return None

    def find(self, name: str) -> tuple[SessionSpec | None, Place | None, SessionStatus | None]:
        """The spec, and where (and how) the session of that name lives, if anywhere.

        A refused config entry has no spec, but what runs under its name (started before the
        entry was broken) can still be inspected, read and stopped: it is looked for as a name
        the config does not define; nothing live, and the entry's own problem is the answer.
        """
        try:
            spec = self.spec(name)
        except InvalidSessionError:
            found = self.places.find(name, None)
            if found is None:
                raise
            place, status = found
            return None, place, status.with_changes(defined=False)
        found = self.places.find(name, spec)
        if found is None:
            return spec, None, None
        place, status = found
        return spec, place, self._decorate(spec, place, status)

    def _decorate(self, spec: SessionSpec | None, place: Place,
                  status: SessionStatus) -> SessionStatus:
        """``defined`` (it is the config entry's: same name and place) and drift."""
        defined = spec is not None and spec.backend == status.backend and self.places.same(
            place, self.places.home_or_configured(spec))
        status = status.with_changes(defined=defined)
        if defined and spec is not None:
            status = drift.compare(spec, status, self.config)
        return status

    def not_found(self, name: str) -> SessionNotFoundError:
        from .suggest import did_you_mean

        where = f" in {self.config.path.name}" if self.config.path else " (no kstlib.conf.yml)"
        # the closest of the defined AND the live names: a defined name that is merely close
        # must not hide the live one that was meant
        hint = did_you_mean(name, [*self.config.names(), *self._live_names()])
        return SessionNotFoundError(
            f"no session named '{name}'{hint}: not defined{where} and not running",
            hint=Suggest("list"))

    def _live_names(self) -> list[str]:
        """The live names (one listing per place: only on this error path)."""
        live: list[str] = []
        for result in each(self.places.known(), self.places.listing):
            if isinstance(result, list):
                live += [s.name for s in result]
        return live

    def _nothing_live(self, name: str, spec: SessionSpec | None, what: str | None = None,
                      hint: Any = None) -> KstlibError:
        if spec is None:
            return self.not_found(name)
        return SessionNotRunningError(
            f"session '{name}' {what or f'is not running ({spec.backend})'}", hint=hint)

    # ------------------------------------------------------------------ verbs

    @naming
    def status(self, name: str) -> SessionStatus:
        """The live state when there is one (whatever backend), else ``defined``."""
        spec, _, status = self.find(name)
        if status is not None:
            return status
        if spec is None:
            raise self.not_found(name)
        return backends.get(spec.backend).defined_status(spec, self.config)

    def resolve(self, name: str, flags: dict[str, Any]) -> tuple[SessionSpec, SessionSpec | None]:
        """The spec to start (config entry plus flags) and the config entry itself."""
        spec = self.spec(name)
        configured = spec
        if spec is None:
            if not (flags.get("command") or flags.get("image")):
                raise self._unknown_to_start(name)
            spec = self.adhoc_spec(name, flags.get("backend"))
        return overrides.apply(spec, self.config, flags), configured

    def _unknown_to_start(self, name: str) -> SessionNotFoundError:
        from .suggest import did_you_mean

        return SessionNotFoundError(
            f"no session named '{name}' in the config{did_you_mean(name, self.config.names())}",
            hint="define it in kstlib.conf.yml or give --command/--image")

    def adhoc_spec(self, name: str, backend: str | None = None) -> SessionSpec:
        """A spec with the config's defaults for a name the config does not define."""
        from .validation import check

        clean = check("name", name)
        kind = backends.get(check("backend", backend or self.config.default_backend,
                                  session=clean))
        return SessionSpec(name=clean, backend=kind.name, options=kind.options_class(),
                           working_dir=kind.default_workdir(self.config.base_dir))

    @naming
    def start(self, name: str, **flags: Any) -> SessionStatus:
        """Start ``name`` from its config entry, with one-off ``flags`` (validated).

        A name not in the config can be started when the flags say what to run (``command``
        or ``image``): containers and scripts do not need a config entry. Returns once the
        session was launched, whatever its command does a moment later; when it is already
        seen dead by then, a warning says so with its exit code and last output line.
        """
        spec, configured = self.resolve(name, flags)
        home = self.places.home(spec)
        self._refuse_if_running_elsewhere(spec, home)
        status = self.launch(spec, home, overrides.record(flags))
        return self._decorate(configured, home, status)

    def launch(self, spec: SessionSpec, home: Place, recorded: dict[str, Any]) -> SessionStatus:
        """Start a resolved spec at ``home`` (no lookup elsewhere); warn when it died at once."""
        backend = self.places.backend(home)
        status = backend.start(launch.prepare(spec, recorded))
        self.places.kind(home[0]).remember(home[1])
        if status.state == State.EXITED:
            self.warn(f"warning: {self._exited_at_once(status, backend)}")
        return status.with_changes(managed=True)

    @staticmethod
    def _exited_at_once(status: SessionStatus, backend: Any) -> str:
        try:
            lines = [line for line in backend.logs(status.name, 5) if line.strip()]
        except KstlibError:
            lines = []
        why = f": {lines[-1].strip()}" if lines else ""
        return f"session '{status.name}' already exited with code {status.exit_code}{why}"

    def _refuse_if_running_elsewhere(self, spec: SessionSpec, home: Place) -> None:
        """One name, one running session: starting astro-dev in tmux while it runs as a
        container (or the reverse) would make ``status``/``stop`` ambiguous. The target place
        refuses its own duplicates; this looks at the other places, ignoring any that does
        not answer (another backend's trouble never blocks this start)."""
        others = [p for p in self.places.known() if not self.places.same(p, home)]
        for place, result in zip(others, each(others, lambda p: self.places.backend(p).status(
                spec.name)), strict=True):
            if isinstance(result, SessionStatus) and result.state == State.RUNNING:
                raise SessionAlreadyRunningError(
                    f"session '{spec.name}' is already running ({_where(place)})",
                    hint=lambda front: f"stop it first: {Suggest('stop', spec.name).spell(front)}",
                )

    @naming
    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop the live session of that name; the result is the status after stopping."""
        spec, place, status = self.find(name)
        if place is None or status is None:
            raise self._nothing_live(name, spec)
        last = self.places.backend(place).stop(name, timeout=timeout, force=force)
        if last.note:
            self.warn(f"warning: session '{name}': {last.note}")
        if status.defined and spec is not None:
            return backends.get(spec.backend).defined_status(spec, self.config)
        return last.with_changes(state=State.STOPPED, pid=None)

    @naming
    def restart(self, name: str, *, timeout: float = 10.0, force: bool = False,
                **flags: Any) -> SessionStatus:
        """Stop when live (wherever it runs), then start with the config and flags."""
        spec, place, _ = self.find(name)
        if place is not None:
            self.places.backend(place).stop(name, timeout=timeout, force=force)
        elif spec is None and not (flags.get("command") or flags.get("image")):
            raise self.not_found(name)
        return self.start(name, **flags)

    @naming
    def logs(self, name: str, lines: int | None = None) -> list[str]:
        """The last output: of the live session, else of the last run (kept after stop)."""
        spec, place, _ = self.find(name)
        if place is None:
            place = self._last_log(name, spec)
        if place is None:
            raise self._nothing_live(name, spec, "has no output yet (never started)",
                                     hint=Suggest("start", name))
        backend = self.places.backend(place)
        output = backend.logs(name, lines)
        from . import logstore

        problem = logstore.capture_error(backend.log_path(name))
        if problem:
            self.warn(f"warning: session '{name}': {problem}: the output stops there")
        return output

    def _last_log(self, name: str, spec: SessionSpec | None) -> Place | None:
        """Where the most recent kept output of a session that is gone lives (no backend call)."""
        from . import logstore

        places: list[Place] = []
        if spec is not None:
            places.append(self.places.home_or_configured(spec))
        places += [p for p in self.places.known() if p not in places]
        best: tuple[float, Place] | None = None
        for place in places:
            path = self.places.backend(place).log_path(name)
            for candidate in (path, logstore.rotated(path)):
                try:
                    mtime = candidate.stat().st_mtime
                except OSError:
                    continue
                if best is None or mtime > best[0]:
                    best = (mtime, place)
        return best[1] if best else None

    @naming
    def attach(self, name: str) -> NoReturn:
        """Replace this process with the backend's attach (tmux attach / runtime attach)."""
        spec, place, status = self.find(name)
        if place is None or status is None:
            raise self._nothing_live(name, spec, hint=Suggest("start", name))
        if status.state != State.RUNNING:
            code = f", exit code {status.exit_code}" if status.exit_code is not None else ""
            raise SessionNotRunningError(
                f"session '{name}' is not running ({status.state.value}{code})",
                hint=Suggest("logs", name))
        sys.stdout.flush()
        sys.stderr.flush()
        self.places.backend(place).attach(name)

    def list(self, backend: str | None = None) -> list[SessionStatus]:
        """Config entries (``defined``) merged with everything live (one listing per place)."""
        kinds: Iterable[str] | None = None
        if backend is not None:
            from .validation import check

            kinds = [check("backend", backend)]
        specs = [s for s in self.config.sessions.values() if kinds is None or s.backend in kinds]
        return merge.table(self.places, specs, kinds, self.warn)


def _where(place: Place) -> str:
    name, scope = place
    return name if scope is None else f"{name} {scope}"
