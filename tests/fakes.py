"""A fake backend: a real :class:`~kstlib_tasks.backends.base.Backend` that runs nothing.

:class:`FakeBackend` keeps its sessions in a dict and records every call, so the engine (the
manager, ``up``/``down``/``wait``, the front ends) can be tested without tmux or a container
runtime, and the backend contract suite can run over it as over the real backends. It inherits
the shared behaviour of the base class (``logs`` falling back to the kept file, ``follow``,
``stop_many``, the "already running"/"not running" errors) instead of imitating it.

:class:`FakeWorld` is the ``factory(backend, scope, config)`` a
:class:`~kstlib_tasks.manager.SessionManager` takes: one fake per place, two scopes the
registry calls the same (``side`` and its socket path) being one place, as they are one tmux
server.

What a command does is decided without running it: by :meth:`FakeBackend.will` (set by the
test for the next start of a name), else by a tiny convention on the argv: ``exit N`` ends at
once with code N, ``echo WORDS`` prints its words and ends with 0, ``fail WHY`` makes the start
itself fail (BackendError), anything else (the empty command too) runs until stopped.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kstlib_tasks import backends, logstore
from kstlib_tasks.backends.base import Backend, Launch, iso_utc, last_lines
from kstlib_tasks.errors import BackendError, KstlibError
from kstlib_tasks.models import SessionStatus, State

_pids = itertools.count(1000)


class Attached(Exception):
    """What ``attach`` does instead of replacing the process."""

    def __init__(self, backend: str, scope: str | None, name: str):
        super().__init__(f"attached to {name} ({backend} {scope})")
        self.backend = backend
        self.scope = scope
        self.name = name


@dataclass
class Plan:
    """What the next start of a name does."""

    exit_code: int | None = None  # None: runs until stopped; a number: ends at once
    output: list[str] = field(default_factory=list)
    error: KstlibError | None = None  # the start itself fails (nothing is left live)


@dataclass
class FakeSession:
    """One live object; mutable, changed only under the backend's lock."""

    name: str
    state: State = State.RUNNING
    pid: int | None = None
    exit_code: int | None = None
    image: str | None = None
    command: str | None = None
    managed: bool = False
    recorded: Mapping[str, Any] | None = None
    created_at: str | None = None
    restarts: int | None = None
    output: list[str] = field(default_factory=list)
    launch: Launch | None = None


def plan_of(argv: tuple[str, ...]) -> Plan:
    """The argv convention (see the module docstring)."""
    if argv[:1] == ("exit",) and len(argv) == 2 and argv[1].lstrip("-").isdigit():
        return Plan(exit_code=int(argv[1]))
    if argv[:1] == ("echo",):
        return Plan(exit_code=0, output=[" ".join(argv[1:])])
    if argv[:1] == ("fail",):
        return Plan(error=BackendError(f"fake start failed: {' '.join(argv[1:]) or 'no reason'}"))
    return Plan()


class FakeBackend(Backend):
    """Sessions by exact name in a dict, at one place (backend ``kind``, ``scope``)."""

    kind = "fake"
    # The contract suite (tests/contract) checks this fake too, on the scenarios that do not
    # need a command to really run: names, listing, refusals, stop and replace.
    CONTRACT_UNSUPPORTED = ("processes", "signals", "probe", "lookalikes")

    def __init__(self, kind: str = "fake", scope: str | None = None):
        super().__init__(scope)
        self.kind = kind  # type: ignore[misc]  # one class for every backend: the instance says
        self.sessions: dict[str, FakeSession] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.plans: dict[str, Plan] = {}
        self.failure: KstlibError | None = None  # raised by every call while set
        self.before_start: dict[str, Callable[[Launch], None]] = {}  # name -> hook
        self.probe_codes: dict[str, Callable[[], int] | int] = {}  # name -> exec probe result
        self.stop_codes: dict[str, int] = {}  # name -> exit code a stop gives
        self.lock = threading.RLock()

    # ---------------------------------------------------------------- test controls

    def will(self, name: str, *, exit_code: int | None = None, output: Iterable[str] = (),
             error: KstlibError | None = None) -> None:
        """What the next start of ``name`` does (ends at once with ``exit_code``...)."""
        self.plans[name] = Plan(exit_code, list(output), error)

    def add(self, name: str, state: State = State.RUNNING, *, exit_code: int | None = None,
            output: Iterable[str] = (), managed: bool = False,
            recorded: Mapping[str, Any] | None = None, image: str | None = None,
            command: str | None = None) -> FakeSession:
        """A live object made behind the tool's back (by hand, or by an earlier run)."""
        with self.lock:
            session = FakeSession(
                name=name, state=state, pid=next(_pids) if state == State.RUNNING else None,
                exit_code=exit_code, image=image, command=command, managed=managed,
                recorded=recorded, created_at=iso_utc(time.time()), output=list(output))
            self.sessions[name] = session
            return session

    def print(self, name: str, *lines: str) -> None:
        """The session prints ``lines`` (kept in its log file as they come, as tmux does, so
        that the shared ``follow`` sees them)."""
        with self.lock:
            self.sessions[name].output.extend(lines)
            self._append_log(name, lines)

    def _append_log(self, name: str, lines: Iterable[str]) -> None:
        import os

        path = self.log_path(name)
        logstore.private_dir(path.parent)
        fd = logstore.open_private(path, append=True)
        try:
            os.write(fd, "".join(f"{line}\n" for line in lines).encode())
        finally:
            os.close(fd)

    def finish(self, name: str, exit_code: int = 0) -> None:
        """The session's command ends by itself."""
        with self.lock:
            session = self.sessions[name]
            session.state, session.exit_code, session.pid = State.EXITED, exit_code, None

    def fail(self, error: KstlibError | None) -> None:
        """Every call raises ``error`` from now on (None: answer again)."""
        self.failure = error

    def started(self) -> list[str]:
        """The names started, in order."""
        return [call[1] for call in self.calls if call[0] == "start"]

    def verbs(self, name: str | None = None) -> list[str]:
        """The calls made (for ``name`` only when given), as verb names."""
        return [call[0] for call in self.calls if name is None or call[1:2] == (name,)]

    # ---------------------------------------------------------------- the contract

    def _call(self, *call: Any) -> None:
        with self.lock:
            self.calls.append(call)
        if self.failure is not None:
            raise self.failure

    def _status(self, session: FakeSession) -> SessionStatus:
        details: dict[str, Any] = {}
        if self.kind in backends.names():
            details = backends.get(self.kind).scope_details(self.scope)
        return SessionStatus(
            name=session.name, backend=self.kind, state=session.state, scope=self.scope,
            pid=session.pid, image=session.image, exit_code=session.exit_code,
            created_at=session.created_at, managed=session.managed, command=session.command,
            restarts=session.restarts, recorded=session.recorded, details=details)

    def start(self, launch: Launch) -> SessionStatus:
        name = launch.name
        self._call("start", name)
        hook = self.before_start.get(name)
        if hook is not None:
            hook(launch)
        with self.lock:
            current = self.sessions.get(name)
            if current is not None and current.state == State.RUNNING:
                raise self.already_running(name)
            plan = self.plans.pop(name, None) or plan_of(launch.argv)
            if plan.error is not None:
                raise plan.error
            logstore.reset(self.log_path(name))  # a new run, a new log
            self._append_log(name, plan.output)
            ended = plan.exit_code is not None
            session = FakeSession(
                name=name, state=State.EXITED if ended else State.RUNNING,
                pid=None if ended else next(_pids), exit_code=plan.exit_code,
                image=launch.spec.image, command=" ".join(launch.argv) or None, managed=True,
                recorded={"fp": dict(launch.fingerprint), "ov": dict(launch.overrides)},
                created_at=iso_utc(time.time()), output=list(plan.output), launch=launch)
            self.sessions[name] = session
            return self._status(session)

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        self._call("stop", name, timeout, force)
        with self.lock:
            session = self.sessions.get(name)
            if session is None:
                raise self.not_running(name)
            if session.state == State.RUNNING:
                session.exit_code = self.stop_codes.get(name, 137 if force else 143)
            session.state, session.pid = State.EXITED, None
            last = self._status(session)
            del self.sessions[name]
            output = list(session.output)
        logstore.save_lines(self.log_path(name), output)  # logs still answers after stop
        return last

    def status(self, name: str) -> SessionStatus | None:
        self._call("status", name)
        with self.lock:
            session = self.sessions.get(name)
            return self._status(session) if session is not None else None

    def attach(self, name: str) -> NoReturn:
        self._call("attach", name)
        with self.lock:
            session = self.sessions.get(name)
            if session is None or session.state != State.RUNNING:
                raise self.not_running(name)
        raise Attached(self.kind, self.scope, name)

    def live_logs(self, name: str, lines: int | None) -> list[str] | None:
        self._call("live_logs", name)
        with self.lock:
            session = self.sessions.get(name)
            return None if session is None else last_lines(list(session.output), lines)

    def run_probe(self, name: str, argv: Any, *, env: Mapping[str, str], cwd: str | None,
                  timeout: float) -> int:
        self._call("run_probe", name, tuple(argv))
        code = self.probe_codes.get(name, 0)
        return code() if callable(code) else code

    # last: inside the class body, `list` names this method from here on
    def list(self) -> list[SessionStatus]:
        self._call("list")
        with self.lock:
            return [self._status(s) for s in self.sessions.values()]


class FakeWorld:
    """The fakes of every place, built on demand: pass it as a manager's ``factory``."""

    def __init__(self) -> None:
        self.places: dict[tuple[str, str | None], FakeBackend] = {}
        self.built: list[tuple[str, str | None]] = []  # every factory call, in order
        self.lock = threading.Lock()

    def __call__(self, backend: str, scope: str | None, config: Any = None) -> FakeBackend:
        with self.lock:
            self.built.append((backend, scope))
        return self.at(backend, scope)

    def at(self, backend: str, scope: str | None = None) -> FakeBackend:
        """The fake of one place (made when first asked for)."""
        with self.lock:
            for (name, known), fake in self.places.items():
                if name == backend and _same_scope(backend, known, scope):
                    return fake
            fake = self.places[(backend, scope)] = FakeBackend(backend, scope)
            return fake

    def calls(self) -> list[tuple[Any, ...]]:
        """Every call to every fake: (backend, scope, verb, args...)."""
        return [(b, s, *call) for (b, s), fake in self.places.items() for call in fake.calls]

    def live(self) -> dict[tuple[str, str | None, str], State]:
        """(backend, scope, name) -> state of everything live."""
        return {(b, s, n): session.state for (b, s), fake in self.places.items()
                for n, session in fake.sessions.items()}


def stand_in_programs(folder: Path, *names: str) -> str:
    """``folder`` holding programs ``names`` that do nothing, as a PATH value.

    Runtime detection looks at PATH (podman, else docker): a test that needs one, both or
    neither "installed" sets PATH to this (and only this), whatever the machine has.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        program = folder / name
        program.write_text("#!/bin/sh\nexit 1\n")
        program.chmod(0o755)
    return str(folder)


def _same_scope(backend: str, a: str | None, b: str | None) -> bool:
    if backend in backends.names():
        return backends.get(backend).same_scope(a, b)
    return a == b
