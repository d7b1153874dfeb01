"""What every backend is and does: a descriptor (:class:`BackendType`) and an object
(:class:`Backend`) per place the backend reaches (a tmux server, a container runtime...).

The descriptor is what the config loader, the engine and the front ends know about a backend
without importing its implementation: the session keys it owns, its ops-level keys, its start
flags, where a spec runs (its *scope*), which scopes to list. The object does the work; the base
class holds what every backend shares: the log path and its fallback after the session is gone,
the "already running" / "not running" errors, a deadline loop for graceful stops, timestamps,
the "call unless gone" pattern, and a default parallel ``stop_many``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn, TypeVar

from .. import logstore
from ..errors import KstlibError, SessionAlreadyRunningError, SessionNotRunningError, Suggest
from ..models import Options, SessionSpec, SessionStatus, State

if TYPE_CHECKING:
    from ..flags import Flag
    from ..opsconfig import OpsConfig
    from ..runner import Result

T = TypeVar("T")
Validator = Callable[[Any], Any]
# Output lines; a name of its own because, in a class with a `list` method, `list[str]` in an
# annotation would name the method.
Lines = list[str]


_NOTHING: Mapping[str, Any] = MappingProxyType({})


class Launch(NamedTuple):
    """Everything a backend needs to start one session, resolved by the engine.

    ``argv`` is the command after ``$VAR`` expansion (empty: the backend's default, a shell or
    the image's CMD); ``env`` the environment to give the command (for tmux the caller's plus
    the config's plus ``--env``; for containers only the config's plus ``--env``).
    ``fingerprint`` (field -> digest) and ``overrides`` are stored on the live object so that
    ``status`` can tell later whether the config still says the same thing.
    """

    spec: SessionSpec
    argv: tuple[str, ...]
    env: Mapping[str, str]
    fingerprint: Mapping[str, str] = _NOTHING
    overrides: Mapping[str, Any] = _NOTHING
    # The engine has just listed this place and seen nothing of that name (``up``): the
    # backend may skip its own lookup and report a plain "running" status without asking.
    fresh: bool = False

    @property
    def name(self) -> str:
        return self.spec.name


class BackendType(ABC):
    """A backend as the rest of the package sees it. Subclasses are singletons (``TYPE``)."""

    name: ClassVar[str]
    options_class: ClassVar[type[Options]] = Options
    # Does the command get the caller's environment (under the config's)? tmux: yes, as a
    # program started from the caller's shell; containers: no, as the runtimes do.
    inherits_environment: ClassVar[bool] = False

    # ---------------------------------------------------------------- config

    def session_keys(self) -> Mapping[str, Validator]:
        """Session keys owned by this backend -> validator (called only when parsing)."""
        return {}

    def ops_keys(self) -> Mapping[str, tuple[Validator, Any]]:
        """``ops:`` keys owned by this backend -> (validator, default)."""
        return {}

    def options(self, clean: Mapping[str, Any], settings: Mapping[str, Any],
                base_dir: Path) -> Options:
        """The options object of one entry from its validated backend keys."""
        return self.options_class()

    def option_problems(self, clean: Mapping[str, Any],
                        base_dir: Path) -> list[tuple[list[Any], str]]:
        """(path, reason) of each validated value this backend's policy refuses (the mount
        policy of containers): reported with the entry's other problems."""
        return []

    def options_from_dict(self, data: Mapping[str, Any]) -> Options:
        """Rebuild options stored by :meth:`Options.as_dict` (the config cache)."""
        kinds = {f.name: f.type for f in fields(self.options_class)}
        values = {k: tuple(v) if isinstance(v, list) and "tuple" in str(kinds.get(k)) else v
                  for k, v in data.items()}
        return self.options_class(**values)

    def complete(self, spec: SessionSpec) -> None:  # noqa: B027 - most backends have none
        """Cross-field rules of a whole spec (a container needs an image); ValidationError."""

    def default_workdir(self, base_dir: Path) -> str | None:
        """Where a session runs when the entry names no ``working_dir``."""
        return None

    # ---------------------------------------------------------------- overrides

    def flags(self) -> tuple[Flag, ...]:
        """``start`` flags that override this backend's options (``--image``, ``--socket``)."""
        return ()

    def override(self, options: Options, values: Mapping[str, Any], *, session: str,
                 base_dir: Path) -> Options:
        """Options with the given flag values (dest -> value, None = not given) applied."""
        return options

    # ---------------------------------------------------------------- places

    def configured_scope(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        """The scope the config names for ``spec``, without probing the machine."""
        return None

    def home(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        """The scope where ``spec`` runs (may look at the machine: runtime detection)."""
        return self.configured_scope(spec, config)

    def scopes(self, config: OpsConfig) -> list[str | None]:
        """Every scope ``list`` must look at: configured, defaults, and those used before."""
        return [None]

    def same_scope(self, a: str | None, b: str | None) -> bool:
        return a == b

    def remember(self, scope: str | None) -> None:
        """Note that this tool started something at ``scope`` (found later, config or not)."""
        logstore.remember_scope(self.name, scope)

    @abstractmethod
    def create(self, scope: str | None, config: OpsConfig) -> Backend:
        """The backend object for one scope (cheap: runs nothing)."""

    # ---------------------------------------------------------------- presentation

    def summary(self, spec: SessionSpec) -> str:
        """What the session runs, for help texts (``tmux: python -m bot``)."""
        return f"{self.name}: {spec.command_text or 'default command'}"

    def scope_details(self, scope: str | None) -> dict[str, Any]:
        """Extra JSON fields that name the scope in this backend's words."""
        return {}

    def defined_status(self, spec: SessionSpec, config: OpsConfig) -> SessionStatus:
        """What a config entry looks like when nothing of it is live."""
        scope = self.configured_scope(spec, config)
        return SessionStatus(
            name=spec.name, backend=self.name, state=State.DEFINED, scope=scope,
            image=spec.image, defined=True, command=spec.command_text,
            details=self.scope_details(scope),
        )

    # ---------------------------------------------------------------- check

    def machine_problems(self, spec: SessionSpec, config: OpsConfig) -> list[str]:
        """What on this machine keeps ``spec`` from starting (for ``check``)."""
        return []

    def machine_summary(self, config: OpsConfig) -> str | None:
        """What this backend uses here, for ``check`` to show (``tmux: /usr/bin/tmux``)."""
        return None

    def warnings(self, spec: SessionSpec) -> list[str]:
        """What ``check`` points out about ``spec`` without calling it a problem."""
        return []

    def fingerprint_fields(self, spec: SessionSpec) -> dict[str, Any]:
        """The option values drift is computed on (name -> JSON-able value)."""
        return {k: v for k, v in spec.options.as_dict().items()}


class Backend(ABC):
    """Start, inspect, read, attach and stop sessions by exact name at one scope.

    Methods raise :mod:`kstlib_tasks.errors` exceptions (never sh's or subprocess's) so that
    the front ends can turn them into one line.
    """

    kind: ClassVar[str]

    def __init__(self, scope: str | None):
        self.scope = scope

    # ---------------------------------------------------------------- the contract

    @abstractmethod
    def start(self, launch: Launch) -> SessionStatus:
        """Start; an exited leftover of that name (ours) is replaced, a running one is
        SessionAlreadyRunningError. Returns once launched, whatever the command does next."""

    @abstractmethod
    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop gracefully (or at once with ``force``), keep the last output, remove the
        object. Returns the status just before removal. SessionNotRunningError when nothing
        of that name is live."""

    @abstractmethod
    def status(self, name: str) -> SessionStatus | None:
        """The live status, or None when nothing of that exact name exists."""

    @abstractmethod
    def list(self) -> list[SessionStatus]:
        """Every live session of this scope (also those not started by kstlib), batched."""

    @abstractmethod
    def attach(self, name: str) -> NoReturn:
        """Replace the current process with the backend's attach command."""

    @abstractmethod
    def live_logs(self, name: str, lines: int | None) -> Lines | None:
        """Output of the live object of that name; None when there is none."""

    # ---------------------------------------------------------------- shared behaviour

    @property
    def log_key(self) -> str | None:
        """The part of the log path that names the scope."""
        return self.scope

    def log_path(self, name: str) -> Path:
        """The file keeping the output of ``name`` at this scope, after it is gone too."""
        return logstore.log_path(self.kind, self.log_key, name)

    def logs(self, name: str, lines: int | None = None) -> Lines:
        """The last ``lines`` lines (all when None): live, else the copy kept by ``stop``."""
        output = self.live_logs(name, lines)
        if output is None:
            path = self.log_path(name)
            if not logstore.exists(path):
                raise self.not_running(name, "and has no saved output")
            output = logstore.tail(path, lines)
        return last_lines(output, lines)

    def follow(self, name: str, lines: int | None = None, *,
               stopped: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """The last ``lines`` lines, then every new line as it comes, until the session has
        ended (or ``stopped()``). This default follows the kept log file, which the tmux
        backend writes as the session prints; it notices rotation."""
        path = self.log_path(name)
        reader = logstore.Follower(path)
        yield from last_lines(reader.read_lines(final=False), lines)
        check_every = 0.5
        next_check = time.monotonic() + check_every
        while not stopped():
            new = reader.read_lines(final=False)
            yield from new
            now = time.monotonic()
            if now >= next_check:
                next_check = now + check_every
                status = self.status(name)
                if status is None or status.state != State.RUNNING:
                    time.sleep(0.2)  # let the copier write the last bytes
                    yield from reader.read_lines(final=True)
                    return
            if not new:
                time.sleep(0.1)

    def run_probe(self, name: str, argv: Sequence[str], *, env: Mapping[str, str],
                  cwd: str | None, timeout: float) -> int:
        """Run an ``exec`` readiness probe where the session lives (default: on this host)."""
        try:
            done = subprocess.run(list(argv), env=dict(env), cwd=cwd, timeout=timeout,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return 127
        return done.returncode

    def stop_many(self, names: Sequence[str], *, timeout: float = 10.0,
                  force: bool = False) -> dict[str, SessionStatus | KstlibError]:
        """Stop several sessions of this scope; each result is a status or the error."""
        def one(name: str) -> SessionStatus | KstlibError:
            try:
                return self.stop(name, timeout=timeout, force=force)
            except KstlibError as exc:
                return exc

        if len(names) == 1:
            return {names[0]: one(names[0])}
        with ThreadPoolExecutor(max_workers=min(16, len(names) or 1)) as pool:
            return dict(zip(names, pool.map(one, names), strict=True))

    def where(self) -> str:
        """The scope in words, for messages (``tmux``, ``podman``)."""
        return self.kind if self.scope is None else f"{self.kind} {self.scope}"

    def already_running(self, name: str) -> SessionAlreadyRunningError:
        return SessionAlreadyRunningError(
            f"session '{name}' is already running ({self.where()})", session=name,
            hint=_stop_first(name),
        )

    def not_running(self, name: str, detail: str = "") -> SessionNotRunningError:
        suffix = f" {detail}" if detail else ""
        return SessionNotRunningError(
            f"session '{name}' is not running{suffix} ({self.where()})", session=name)

    @staticmethod
    def unless_gone(result: Result, gone: Callable[[str], bool],
                    failure: Callable[[Result], KstlibError]) -> Result | None:
        """The rule for a call on a named target: a session can end between two calls, so a
        target its tool says is gone (``gone(stderr)``) is None, not an error; any other
        failure raises ``failure(result)``."""
        if result.ok:
            return result
        if gone(result.stderr):
            return None
        raise failure(result)


def _stop_first(name: str) -> Callable[[str], str]:
    return lambda front: f"stop it first: {Suggest('stop', name).spell(front)}"


# --------------------------------------------------------------------------- helpers


def last_lines(lines: list[str], count: int | None) -> list[str]:
    """The last ``count`` lines (all when None, none for 0)."""
    if count is None:
        return lines
    return lines[-count:] if count > 0 else []


def iso_utc(epoch: float | int | str | None) -> str | None:
    """``2026-11-25T14:06:11Z`` from a Unix time; None for nothing or a non-positive time."""
    try:
        value = float(epoch) if epoch is not None else 0.0
    except ValueError:
        return None
    if value <= 0:
        return None
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(check: Callable[[], T | None], timeout: float, *, first: float = 0.01,
               longest: float = 0.1, sleep: Callable[[float], None] = time.sleep) -> T | None:
    """Poll ``check`` until it returns something (not None) or ``timeout`` passes.

    Intervals grow from ``first`` to ``longest``, so a quick change is noticed quickly and a
    slow one costs few calls. The last reading is returned either way (None: still nothing).
    """
    deadline = time.monotonic() + max(0.0, timeout)
    interval = first
    while True:
        value = check()
        if value is not None:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sleep(min(interval, remaining))
        interval = min(interval * 1.5, longest)


def folder_problem(path: str) -> str | None:
    """Why ``path`` cannot be a working folder (None when it can): the same words for start
    and for check."""
    if os.path.isdir(path):
        return None
    return f"{path} {'is not a folder' if os.path.exists(path) else 'does not exist'}"


def program_problem(argv: Sequence[str], path: str, cwd: str | None) -> str | None:
    """Why ``argv[0]`` cannot be executed here (None when it can), as ``env`` would look."""
    import shutil

    program = argv[0]
    if "/" in program:
        candidate = os.path.join(cwd or os.getcwd(), program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return None
        return f"'{program}' is not an executable file (in {cwd or os.getcwd()})"
    if shutil.which(program, path=path) is not None:
        return None
    return f"'{program}' not found in PATH"


def env_arguments(env: Mapping[str, str], folder: str) -> list[str]:
    """``--env-file`` arguments for the docker and podman clients, the file written into
    ``folder`` (a private temporary folder): an ``--env K=V`` argument would show every value
    to every local user in ``/proc/PID/cmdline`` while the client runs. Both clients read the
    file's values literally to the end of the line, so a value holding a newline cannot be
    written there: it alone goes as ``--env``."""
    lines = [f"{key}={value}\n" for key, value in env.items() if "\n" not in value
             and "\r" not in value]
    args: list[str] = []
    if lines:
        path = os.path.join(folder, "env")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, "".join(lines).encode("utf-8", errors="surrogateescape"))
        finally:
            os.close(fd)
        args += ["--env-file", path]
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            args += ["--env", f"{key}={value}"]
    return args


def follow_process(argv: Sequence[str], ended: Callable[[threading.Event], bool]) -> Iterator[str]:
    """The lines of a ``logs --follow`` client as it prints them.

    The client may never end by itself (docker's service logs), so a watcher thread asks
    ``ended(done)`` every 0.2 s and ends the client when it says so (the reader asked to stop,
    the session is gone; ``done`` lets it wait without outliving the reader). A reader that
    leaves early (``| head``) ends the client too.
    """
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if ended(done):
                break
        if process.poll() is None:
            process.terminate()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            yield raw.decode("utf-8", errors="replace").rstrip("\n").replace("\r", "")
    finally:
        done.set()
        if process.poll() is None:
            process.terminate()
        process.wait()


def unique(items: Iterable[T]) -> list[T]:
    """Items in order, without repeats."""
    seen: list[T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
