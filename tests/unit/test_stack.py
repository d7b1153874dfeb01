"""``up``, ``down`` and ``wait`` (engine/stack.py) on fake backends: order, concurrency, the
first failure, conditions, drift, exit codes and the JSON document.

Ordering is proven with events (a dependency's condition is held back until the test has seen
that its dependent did not start), concurrency with a barrier both starts must reach; nothing
here asserts on how long something took.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib_tasks import errors
from kstlib_tasks.backends.base import Launch
from kstlib_tasks.engine import stack
from kstlib_tasks.errors import InvalidSessionError, SessionNotFoundError
from kstlib_tasks.graph import Edge
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import SessionSpec, State
from kstlib_tasks.opsconfig import OpsConfig
from kstlib_tasks.probes import ProbeSpec
from tests.fakes import FakeBackend, FakeWorld, stand_in_programs

WAIT = 10.0  # the longest any event may take to come (a failsafe, never reached when green)


def session(name: str, *needs: str, command: tuple[str, ...] = ("sleep", "60"),
            ready: ProbeSpec | None = None, **changes) -> SessionSpec:
    """A tmux session; ``needs`` are ``"db:ready"``-style edges."""
    edges = tuple(Edge(*need.split(":")) for need in needs)
    return SessionSpec(name, "tmux", command, depends_on=edges, ready=ready, **changes)


def exec_probe(timeout: float = 30.0) -> ProbeSpec:
    return ProbeSpec("exec", ("check",), timeout=timeout, interval=0.01)


def manager(world: FakeWorld, *specs: SessionSpec, invalid=None) -> SessionManager:
    config = OpsConfig(path=Path("/x/kstlib.conf.yml"), base_dir=Path("/x"),
                       sessions={s.name: s for s in specs}, invalid=invalid or {})
    return SessionManager(config, factory=world, warn=lambda line: None)


class Run:
    """One ``up``/``down``/``wait``: its exit code and the lines it reported."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.code: int | None = None

    def report(self, line: str) -> None:
        self.lines.append(line)


def up(m: SessionManager, *targets: str, wait: bool = False, timeout: float | None = None,
       recreate: bool = True, json: bool = False, front: str = "kstlib") -> Run:
    run = Run()
    run.code = stack.up(m, list(targets), wait=wait, timeout=timeout, recreate=recreate,
                        json=json, report=run.report, front=front)
    return run


def down(m: SessionManager, *targets: str, json: bool = False) -> Run:
    run = Run()
    run.code = stack.down(m, list(targets), force=False, timeout=5.0, json=json,
                          report=run.report)
    return run


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


@pytest.fixture(autouse=True)
def podman_and_docker(tmp_path: Path) -> Iterator[None]:
    """Runtime detection looks at PATH: both runtimes 'installed', whatever this machine has."""
    old = os.environ["PATH"]
    os.environ["PATH"] = stand_in_programs(tmp_path / "bin", "podman", "docker")
    yield
    os.environ["PATH"] = old


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def tmux(world: FakeWorld) -> FakeBackend:
    return world.at("tmux")


# --------------------------------------------------------------------------- order


def test_a_dependent_starts_only_once_its_dependency_is_ready(world, tmux):
    m = manager(world, session("db", ready=exec_probe()), session("web", "db:ready"))
    db_started, db_ready = threading.Event(), threading.Event()
    tmux.before_start["db"] = lambda launch: db_started.set()
    tmux.probe_codes["db"] = lambda: 0 if db_ready.is_set() else 1
    result: list[Run] = []
    thread = in_thread(lambda: result.append(up(m)))
    assert db_started.wait(WAIT)
    # db runs but is not ready: web cannot have started, however long this takes
    assert tmux.started() == ["db"]
    db_ready.set()
    thread.join(WAIT)
    [run] = result
    assert run.code == errors.OK
    assert tmux.started() == ["db", "web"]
    verbs = [(call[0], call[1]) for call in tmux.calls if call[0] in ("start", "run_probe")]
    assert verbs.index(("start", "web")) > max(
        i for i, call in enumerate(verbs) if call == ("run_probe", "db"))
    assert "db: ready after" in " ".join(run.lines)


def test_a_chain_comes_up_in_order_and_only_what_the_target_needs(world, tmux):
    m = manager(world, session("a"), session("b", "a:started"), session("c", "b:started"),
                session("other"))
    assert up(m, "c").code == errors.OK
    assert tmux.started() == ["a", "b", "c"]


def test_independent_sessions_start_concurrently(world, tmux):
    m = manager(world, session("a"), session("b"))
    both = threading.Barrier(2, timeout=WAIT)  # each start waits for the other one to begin
    met: list[str] = []

    def meet(launch: Launch) -> None:
        both.wait()
        met.append(launch.name)

    tmux.before_start["a"] = tmux.before_start["b"] = meet
    run = up(m)
    assert sorted(met) == ["a", "b"]  # a sequential up would have broken the barrier
    assert run.code == errors.OK


def test_a_group_target_brings_its_members_and_their_dependencies(world, tmux):
    m = manager(world, session("db"), session("api", "db:started", groups=("backend",)),
                session("ui", groups=("front",)))
    assert up(m, "backend").code == errors.OK
    assert sorted(tmux.started()) == ["api", "db"]


# --------------------------------------------------------------------------- failures


def test_the_first_failure_stops_further_starts_and_leaves_the_rest_running(world, tmux):
    m = manager(world,
                session("base", ready=exec_probe()),  # never ready: still waited for
                session("bad", "base:started", command=("fail", "boom")),
                session("after-base", "base:ready"),
                session("after-bad", "bad:started"))
    tmux.probe_codes["base"] = 1
    run = up(m)
    assert run.code == errors.FAILED
    assert tmux.started() == ["base", "bad"]  # nothing started after the failure
    assert world.live() == {("tmux", None, "base"): State.RUNNING}  # left running for down
    assert "bad: could not start: fake start failed: boom" in run.lines
    assert run.lines[-1] == "up failed: bad"


def test_a_missing_backend_is_exit_3_as_for_start(world, tmux):
    """One kind of failure gives its own code: the documented 3 when the backend is missing,
    as ``start`` exits; a mix of kinds is 1."""
    from kstlib_tasks.errors import BackendNotFoundError

    def missing(launch):
        raise BackendNotFoundError("tmux not found", hint="apt-get install tmux")

    tmux.before_start["web"] = missing
    run = up(manager(world, session("web")), json=True)
    assert run.code == errors.BACKEND_MISSING


def test_what_a_failure_leaves_undone_gets_a_line_each(world, tmux, capsys):
    """A failure aborts the rest: each session not started says so on stderr, in words that
    do not blame its dependency ("another session failed"), and the JSON agrees."""
    m = manager(world, session("base"), session("bad", "base:started", command=("fail", "x")),
                session("app", "bad:started"), session("late", "base:ready"))
    run = up(m, json=True)
    assert run.code == errors.FAILED
    sessions = {s["name"]: s for s in json.loads(capsys.readouterr().out)["sessions"]}
    assert sessions["app"]["state"] == "skipped"
    assert sessions["app"]["error"] == "not started: another session failed"
    assert "app: not started: another session failed" in run.lines


def test_a_start_error_names_the_front_end_in_its_hint(world, tmux):
    world.at("container", "podman").add("web")  # runs elsewhere than its tmux entry says
    m = manager(world, session("web"))
    run = up(m, front="inv")
    assert run.code == errors.FAILED
    [line] = [line for line in run.lines if line.startswith("web: could not start")]
    assert "inv web.stop" in line and "kstlib" not in line
    assert tmux.started() == []


def test_completed_with_exit_0_lets_the_dependent_start(world, tmux):
    m = manager(world, session("migrate", command=("exit", "0")),
                session("app", "migrate:completed"))
    run = up(m, json=False)
    assert run.code == errors.OK
    assert tmux.started() == ["migrate", "app"]
    assert any(line.startswith("migrate: completed after") for line in run.lines)


def test_completed_with_a_failure_stops_the_dependent(world, tmux, capsys):
    m = manager(world, session("migrate", command=("exit", "3")),
                session("app", "migrate:completed"))
    tmux.will("migrate", exit_code=3, output=["applying 0042", "error: table exists"])
    run = up(m, json=True)
    assert run.code == errors.FAILED
    assert tmux.started() == ["migrate"]
    sessions = {s["name"]: s for s in json.loads(capsys.readouterr().out)["sessions"]}
    assert sessions["migrate"]["state"] == "failed" and sessions["migrate"]["exit_code"] == 3
    assert sessions["migrate"]["error"] == (
        "exited with code 3 while waiting for completed (exit code 0)")
    assert sessions["migrate"]["output"] == ["applying 0042", "error: table exists"]
    assert sessions["app"]["state"] == "skipped"
    assert "migrate | error: table exists" in run.lines


def test_a_session_that_dies_before_it_is_ready_fails_up(world, tmux):
    m = manager(world, session("db", command=("exit", "1"), ready=exec_probe()))
    tmux.probe_codes["db"] = 1
    run = up(m, wait=True)
    assert run.code == errors.FAILED
    assert any("exited with code 1" in line for line in run.lines)


def test_not_ready_in_time_is_exit_4(world, tmux):
    m = manager(world, session("db", ready=exec_probe(timeout=0)))
    tmux.probe_codes["db"] = 1
    run = up(m, wait=True)
    assert run.code == errors.TIMEOUT
    assert "db: not ready after 0 s (exec check)" in run.lines
    assert world.live() == {("tmux", None, "db"): State.RUNNING}


def test_without_wait_a_probe_is_not_waited_for(world, tmux):
    m = manager(world, session("db", ready=exec_probe()))
    tmux.probe_codes["db"] = 1
    assert up(m).code == errors.OK
    assert "run_probe" not in tmux.verbs()


# --------------------------------------------------------------------------- what already runs


def test_a_running_session_is_left_alone(world, tmux):
    m = manager(world, session("a"))
    m.start("a")
    run = up(m)
    assert run.code == errors.OK
    assert tmux.started() == ["a"] and "stop" not in tmux.verbs()
    assert "a: already running" in run.lines


def test_a_drifted_session_is_recreated(world, tmux):
    manager(world, session("a", env={"MODE": "one"})).start("a")
    m = manager(world, session("a", env={"MODE": "two"}))
    run = up(m)
    assert run.code == errors.OK
    assert tmux.verbs("a") [-2:] == ["stop", "start"]
    assert "a: recreating (drifted: env)" in run.lines
    launch = tmux.sessions["a"].launch
    assert launch is not None and launch.env["MODE"] == "two"


def test_no_recreate_keeps_a_drifted_session(world, tmux):
    manager(world, session("a", env={"MODE": "one"})).start("a")
    m = manager(world, session("a", env={"MODE": "two"}))
    run = up(m, recreate=False)
    assert run.code == errors.OK
    assert tmux.started() == ["a"] and "stop" not in tmux.verbs()
    assert "a: already running (drifted: kept, --no-recreate)" in run.lines


def test_an_exited_session_is_started_again(world, tmux):
    m = manager(world, session("a"))
    tmux.add("a", State.EXITED, exit_code=1, managed=True)
    assert up(m).code == errors.OK
    assert tmux.started() == ["a"] and tmux.sessions["a"].state == State.RUNNING


# --------------------------------------------------------------------------- targets


def test_an_unknown_target_is_not_found_with_a_suggestion(world):
    m = manager(world, session("database"))
    with pytest.raises(SessionNotFoundError, match=r"did you mean 'database'\?") as info:
        up(m, "databse")
    assert info.value.line("inv").endswith("(see: inv ops.list)")
    assert world.calls() == []


def test_an_invalid_target_says_why(world):
    m = manager(world, session("ok"), invalid={"bad": (7, "session 'bad': image: nope")})
    with pytest.raises(InvalidSessionError, match=r"kstlib\.conf\.yml:7"):
        up(m, "bad")


# --------------------------------------------------------------------------- down


def test_down_stops_dependents_first(world, tmux):
    m = manager(world, session("db"), session("api", "db:started"), session("web", "api:started"))
    assert up(m).code == errors.OK
    run = down(m)
    assert run.code == errors.OK
    stops = [call[1] for call in tmux.calls if call[0] == "stop"]
    assert stops == ["web", "api", "db"]
    assert world.live() == {}


@pytest.mark.parametrize(("force", "timeout"), [(False, 3.5), (True, 10.0)])
def test_down_passes_force_and_timeout_to_every_stop(world, tmux, force, timeout):
    m = manager(world, session("db"), session("api", "db:started"))
    assert up(m).code == errors.OK
    code = stack.down(m, [], force=force, timeout=timeout, json=False, report=lambda line: None)
    assert code == errors.OK
    assert sorted(call[1:] for call in tmux.calls if call[0] == "stop") == [
        ("api", timeout, force), ("db", timeout, force)]


def test_down_of_a_session_takes_what_depends_on_it(world, tmux):
    m = manager(world, session("db"), session("api", "db:started"), session("cache"))
    up(m)
    assert down(m, "db").code == errors.OK
    assert [call[1] for call in tmux.calls if call[0] == "stop"] == ["api", "db"]
    assert set(tmux.sessions) == {"cache"}


def test_down_of_a_group_takes_its_members_and_their_dependents(world, tmux):
    m = manager(world, session("db", groups=("data",)), session("api", "db:started"),
                session("ui"))
    up(m)
    assert down(m, "data").code == errors.OK
    assert [call[1] for call in tmux.calls if call[0] == "stop"] == ["api", "db"]
    assert set(tmux.sessions) == {"ui"}


def test_down_of_nothing_is_success(world, tmux):
    m = manager(world, session("a"), session("b"))
    run = down(m)
    assert run.code == errors.OK and "nothing to stop" in run.lines
    assert "stop" not in tmux.verbs()


def test_down_removes_an_exited_session_and_leaves_foreign_ones(world, tmux):
    m = manager(world, session("a"))
    tmux.add("a", State.EXITED, exit_code=2, managed=True)
    world.at("container", "podman").add("a")  # not the entry: down leaves it
    tmux.add("hand-made")
    run = down(m)
    assert run.code == errors.OK
    assert any(line.startswith("a: removed") for line in run.lines)
    assert world.live() == {("container", "podman", "a"): State.RUNNING,
                            ("tmux", None, "hand-made"): State.RUNNING}


def test_down_reports_a_failed_stop_as_exit_1(world, tmux):
    from kstlib_tasks.errors import BackendError

    class Stuck(FakeBackend):
        def stop(self, name, *, timeout=10.0, force=False):
            raise BackendError(f"tmux could not stop '{name}'")

    m = manager(world, session("a"))
    world.places[("tmux", None)] = stuck = Stuck("tmux", None)
    stuck.add("a", managed=True)
    run = down(m)
    assert run.code == errors.FAILED and run.lines[-1] == "down failed: a"


# --------------------------------------------------------------------------- wait


def test_wait_for_a_running_session_without_probe_is_at_once_ready(world, tmux):
    m = manager(world, session("a"))
    m.start("a")
    run = Run()
    assert stack.wait(m, ["a"], timeout=None, json=False, report=run.report) == errors.OK
    assert run.lines and run.lines[0].startswith("a: ready after")


def test_wait_for_a_session_that_is_not_running_fails(world):
    m = manager(world, session("a"))
    run = Run()
    assert stack.wait(m, ["a"], timeout=None, json=False, report=run.report) == errors.FAILED
    assert "a: is not running" in run.lines


def test_wait_for_an_unknown_name_names_the_front_end(world):
    m = manager(world, session("a"))
    run = Run()
    code = stack.wait(m, ["nobody"], timeout=None, json=False, report=run.report, front="inv")
    assert code == errors.FAILED
    assert any("(see: inv ops.list)" in line for line in run.lines)


# --------------------------------------------------------------------------- the JSON document


def test_the_json_document(world, tmux, capsys):
    m = manager(world, session("db", ready=exec_probe()), session("web", "db:ready"),
                session("bad", "web:started", command=("exit", "5"), ready=exec_probe()))
    tmux.probe_codes["bad"] = 1
    code = up(m, wait=True, json=True).code
    document = json.loads(capsys.readouterr().out)
    assert code == errors.FAILED
    assert set(document) == {"ok", "exit_code", "sessions"}
    assert document["ok"] is False and document["exit_code"] == errors.FAILED
    by_name = {s["name"]: s for s in document["sessions"]}
    assert [s["name"] for s in document["sessions"]] == ["db", "web", "bad"]  # up order
    for item in document["sessions"]:
        assert set(item) - {"output"} == {"name", "backend", "state", "ready", "seconds",
                                          "exit_code", "error"}
        assert item["backend"] == "tmux"
    assert (by_name["db"]["state"], by_name["db"]["ready"], by_name["db"]["error"]) == (
        "running", True, None)
    assert isinstance(by_name["db"]["seconds"], float)
    assert by_name["web"]["state"] == "running" and by_name["web"]["ready"] is True
    assert by_name["bad"]["state"] == "failed" and by_name["bad"]["exit_code"] == 5
    assert by_name["bad"]["ready"] is None
    assert by_name["bad"]["error"] == "exited with code 5 while waiting for exec check"


def test_the_json_document_of_a_success_and_of_nothing(world, capsys):
    m = manager(world, session("a"))
    assert up(m, json=True).code == errors.OK
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["exit_code"] == 0
    assert [(s["name"], s["state"]) for s in document["sessions"]] == [("a", "running")]
    assert down(manager(FakeWorld(), session("a")), json=True).code == errors.OK
    assert json.loads(capsys.readouterr().out) == {"ok": True, "exit_code": 0, "sessions": []}
