"""``up``: a probe that raises a KstlibError (an exec probe the backend cannot run where the
session lives) fails that session with one line; it never kills the thread with a traceback
and a success exit code."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import pytest

from kstlib_tasks import errors
from kstlib_tasks.backends.base import Backend, Launch, Lines
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.engine import stack
from kstlib_tasks.errors import BackendError
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import SessionSpec, SessionStatus, State
from kstlib_tasks.opsconfig import OpsConfig
from kstlib_tasks.probes import ProbeSpec


class Unreachable(Backend):
    kind = "tmux"

    def __init__(self) -> None:
        super().__init__(None)
        self.live: dict[str, SessionStatus] = {}

    def start(self, launch: Launch) -> SessionStatus:
        status = SessionStatus(launch.name, "tmux", State.RUNNING, managed=True)
        self.live[launch.name] = status
        return status

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        return self.live.pop(name)

    def status(self, name: str) -> SessionStatus | None:
        return self.live.get(name)

    def list(self) -> list[SessionStatus]:
        return list(self.live.values())

    def attach(self, name: str) -> NoReturn:
        raise NotImplementedError

    def live_logs(self, name: str, lines: int | None) -> Lines | None:
        return [] if name in self.live else None

    def run_probe(self, name: str, argv: Sequence[str], *, env: Mapping[str, str],
                  cwd: str | None, timeout: float) -> int:
        raise BackendError(f"exec probe of '{name}': its task runs where kstlib cannot reach")


def test_a_probe_error_fails_the_session_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Unreachable()
    spec = SessionSpec("svc", "tmux", ("sleep", "9"), options=TmuxOptions(),
                       ready=ProbeSpec("exec", ("true",), timeout=5))
    config = OpsConfig(sessions={"svc": spec})
    manager = SessionManager(config, factory=lambda name, scope, cfg: backend)
    crashed: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    lines: list[str] = []
    code = stack.up(manager, ["svc"], wait=True, timeout=10, recreate=True, json=False,
                    report=lines.append)
    assert crashed == []
    assert code == errors.FAILED
    assert any("cannot reach" in line for line in lines), lines
    assert lines[-1] == "up failed: svc"


def test_the_probe_error_is_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Unreachable()
    spec = SessionSpec("svc", "tmux", ("sleep", "9"), options=TmuxOptions(),
                       ready=ProbeSpec("exec", ("true",), timeout=5))
    manager = SessionManager(OpsConfig(sessions={"svc": spec}),
                             factory=lambda name, scope, cfg: backend)
    run = stack.Up(manager, ["svc"], ["svc"], wait=True, deadline=None, recreate=True,
                   report=lambda line: None)
    run.run()
    result: Any = run.results["svc"]
    assert result.state == "failed" and "cannot reach" in (result.error or "")
