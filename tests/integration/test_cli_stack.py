"""Stacks end to end: ``up``, ``down``, ``wait`` and ``start --wait`` through the INSTALLED
``kstlib`` and ``inv`` (most tests run once per front end), on real tmux, podman and docker.

What each session does is spelled with :mod:`tests.e2e_tool`. Orders are proven by what the
sessions themselves observe, not by kstlib's report: a dependent checks its dependency's port
or file when it starts and exits 3 when it is not there; a dependency stopped by ``down`` says
whether its dependent's port was still open. Timings only ever have wide margins.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_project import Project
from tests.helpers import KSTLIB, PYTHON_IMAGE, retry_until

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


@pytest.fixture
def project(tmp_path: Path, unique_name: Callable[[str], str], tmux_available: None) -> Project:
    return Project(tmp_path / "p", unique_name)


def lines_of(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


# --------------------------------------------------------------------------- order


DB_AND_APP = """\
ops:
  sessions:
    @db@:
      command: "@tool@ sleep 1.5 + serve @port-db@"
      ready:
        tcp: @port-db@
        timeout: 60
    @app@:
      command: "@tool@ need-port @port-db@ + at-stop @port-db@ + serve @port-app@ http"
      depends_on: [@db@]
      ready:
        http: "http://127.0.0.1:@port-app@/"
        timeout: 60
      groups: [web]
    @side@:
      command: "@tool@ forever"
"""


def test_invoke_help_shows_the_dependencies_probe_and_groups(project: Project) -> None:
    project.write(DB_AND_APP)
    db, app = project.name("db"), project.name("app")
    for verb in ("start", "wait"):
        out = project.inv("--help", f"{app}.{verb}").ok().out
        assert f"Depends on: {db} (ready)." in out, out
        assert f"Ready when: http http://127.0.0.1:{project.port('app')}/." in out, out
        assert "Groups: web." in out
    out = project.inv("--help", f"{db}.start").ok().out
    assert f"Ready when: tcp 127.0.0.1:{project.port('db')}." in out, out
    assert "Depends on" not in out and "Groups" not in out


def test_up_starts_the_dependency_first_and_the_dependent_sees_it_ready(
        project: Project, front: str) -> None:
    """The dependency listens only after 1.5 s; the dependent exits 3 when its port is closed
    at its own start. ``up app`` also brings up what app needs (db), and nothing else."""
    project.write(DB_AND_APP)
    db, app, side = project.name("db"), project.name("app"), project.name("side")
    done = project.verb(front, "up", [app], "--wait").ok()
    assert f"need: port {project.port('db')} open" in project.logs(app)
    assert (project.state(db), project.state(app), project.state(side)) == (
        "running", "running", "defined")
    report = done.err.splitlines()
    assert report.index(f"{db}: starting") < report.index(f"{app}: starting")
    assert any(line.startswith(f"{db}: ready after") for line in report)
    assert any(line.startswith(f"{app}: ready after") for line in report)
    project.verb(front, "down").ok()


def test_without_depends_on_the_same_dependent_fails(project: Project) -> None:
    """The control of the test above: the dependent's check does fail when nobody waits."""
    project.write(DB_AND_APP.replace("      depends_on: [@db@]\n", ""))
    db, app = project.name("db"), project.name("app")
    done = project.kstlib("ops", "up", db, app, "--wait")
    assert done.code == 1, done.err
    assert f"need: port {project.port('db')} not open" in project.logs(app)
    assert f"{app}: exited with code 3" in done.err
    project.kstlib("ops", "down").ok()


def test_independent_sessions_start_in_parallel(project: Project, front: str) -> None:
    """Each takes 6 s to be ready: one after the other, the second would start 6 s after the
    first; in parallel they start within a moment of each other (asserted: under 3 s)."""
    body = "\n".join(f"""\
    @{key}@:
      command: "@tool@ stamp @root@/{key}.start + sleep 6 + say ready + forever"
      ready:
        log: "^ready$"
        timeout: 90""" for key in ("one", "two"))
    project.write(f"ops:\n  sessions:\n{body}\n")
    one, two = project.name("one"), project.name("two")
    project.verb(front, "up", [one, two], "--wait").ok()
    assert abs(project.stamp("one.start") - project.stamp("two.start")) < 3
    assert project.state(one) == project.state(two) == "running"
    project.verb(front, "down").ok()


def test_down_stops_dependents_first(project: Project, front: str) -> None:
    """``down db`` also stops app (it depends on db), app first: app, stopping, still finds
    db's port open; db, stopping, finds app's port closed. ``side`` is not touched."""
    project.write(DB_AND_APP.replace(
        '"@tool@ sleep 1.5 + serve @port-db@"', '"@tool@ at-stop @port-app@ + serve @port-db@"'))
    db, app, side = project.name("db"), project.name("app"), project.name("side")
    project.verb(front, "up").ok()
    retry_until(lambda: "listening" in project.logs(app), timeout=60)
    done = project.verb(front, "down", [db]).ok()
    assert f"at-stop: port {project.port('db')} open" in project.logs(app)
    assert f"at-stop: port {project.port('app')} closed" in project.logs(db)
    report = done.err.splitlines()
    assert report.index(f"{app}: stopping") < report.index(f"{db}: stopping")
    assert (project.state(db), project.state(app), project.state(side)) == (
        "defined", "defined", "running")
    project.verb(front, "down").ok()
    assert project.state(side) == "defined"


def test_up_and_down_are_idempotent(project: Project, front: str) -> None:
    project.write(DB_AND_APP)
    names = [project.name(k) for k in ("db", "app", "side")]
    project.verb(front, "up", [], "--wait").ok()
    pids = [project.status(n)["pid"] for n in names]
    again = project.verb(front, "up", [], "--wait").ok()
    assert [project.status(n)["pid"] for n in names] == pids
    for name in names:
        assert f"{name}: already running" in again.err
        assert f"{name}: starting" not in again.err
    project.verb(front, "down").ok()
    assert [project.state(n) for n in names] == ["defined"] * 3
    twice = project.verb(front, "down").ok()
    assert "nothing to stop" in twice.err


def test_groups(project: Project, front: str) -> None:
    """``up web`` starts the group's members and what they need (db, outside the group);
    ``down web`` stops the members and leaves db running."""
    project.write(DB_AND_APP)
    db, app, side = project.name("db"), project.name("app"), project.name("side")
    project.verb(front, "up", ["web"], "--wait").ok()
    assert (project.state(db), project.state(app), project.state(side)) == (
        "running", "running", "defined")
    project.verb(front, "down", ["web"]).ok()
    assert (project.state(db), project.state(app)) == ("running", "defined")
    project.verb(front, "down").ok()


def test_start_wait_and_wait(project: Project, front: str) -> None:
    """``start --wait`` and ``wait`` (``inv NAME.start --wait``, ``inv NAME.wait``)."""
    project.write(DB_AND_APP)
    db = project.name("db")
    started = project.verb(front, "start", [db], "--wait").ok()
    assert started.out.startswith(f"started {db} (tmux")
    assert lines_of(started.err, f"{db}: ready after")
    # it listens now: the caller can rely on it
    assert f"listening {project.port('db')}" in project.logs(db)
    waited = project.verb(front, "wait", [db]).ok()
    assert lines_of(waited.err, f"{db}: ready after")
    project.verb(front, "stop", [db]).ok()
    gone = project.verb(front, "wait", [db])
    assert gone.code == 1 and f"{db}: is not running" in gone.err


def test_up_recreates_a_session_that_drifted_unless_told_not_to(project: Project,
                                                                  front: str) -> None:
    body = """\
ops:
  sessions:
    @dr@:
      command: "@tool@ say {version} + forever"
"""
    project.write(body.format(version="v1"))
    dr = project.name("dr")
    project.verb(front, "up", [], "--wait").ok()
    pid = project.status(dr)["pid"]
    project.write(body.format(version="v2"))
    assert project.status(dr)["drifted"] is True
    kept = project.verb(front, "up", [], "--no-recreate").ok()
    assert f"{dr}: already running (drifted: kept, --no-recreate)" in kept.err
    assert project.status(dr)["pid"] == pid
    recreated = project.verb(front, "up", [], "--wait").ok()
    assert f"{dr}: recreating (drifted: command)" in recreated.err
    status = project.status(dr)
    assert status["pid"] != pid and status["drifted"] is False
    retry_until(lambda: "v2" in project.logs(dr), timeout=30)
    project.verb(front, "down").ok()


# --------------------------------------------------------------------------- probes


PROBES_PASSING = """\
ops:
  sessions:
    @tcp@:
      command: "@tool@ sleep 1 + serve @port-tcp@"
      ready:
        tcp: "127.0.0.1:@port-tcp@"
    @http@:
      command: "@tool@ sleep 1 + serve @port-http@ http"
      ready:
        http: "http://127.0.0.1:@port-http@/health"
    @log@:
      command: "@tool@ sleep 1 + say database system is ready + forever"
      ready:
        log: "system is ready$"
    @exec@:
      command: "@tool@ sleep 1 + touch exec.marker + forever"
      ready:
        exec: "python3 e2e_tool.py need-file exec.marker"
    @delay@:
      command: "@tool@ forever"
      ready:
        delay: 1.5
"""
KINDS = ("tcp", "http", "log", "exec", "delay")


def test_every_probe_kind_passes(project: Project, front: str) -> None:
    project.write(PROBES_PASSING)
    names = [project.name(k) for k in KINDS]
    done = project.verb(front, "up", names, "--wait", "--json").ok()
    results = {r["name"]: r for r in json.loads(done.out)["sessions"]}
    assert [results[n]["ready"] for n in names] == [True] * 5, done.err
    assert [results[n]["state"] for n in names] == ["running"] * 5
    # each probe really waited for its condition (tcp/http/log/exec after 1 s, delay 1.5 s)
    assert all(results[n]["seconds"] >= 0.9 for n in names), results
    assert results[project.name("delay")]["seconds"] >= 1.4
    again = project.verb(front, "wait", names).ok()  # ready already: at once
    assert len(lines_of(again.err, "kt")) == 5
    project.verb(front, "down").ok()


PROBES_TIMING_OUT = """\
ops:
  sessions:
    @tcp@:
      command: "@tool@ forever"
      ready:
        tcp: @port-nobody@
        timeout: 2
    @http@:
      command: "@tool@ serve @port-raw@"
      ready:
        http: "http://127.0.0.1:@port-raw@/"
        timeout: 2
    @log@:
      command: "@tool@ say still booting + forever"
      ready:
        log: "^ready$"
        timeout: 2
    @exec@:
      command: "@tool@ forever"
      ready:
        exec: ["python3", "e2e_tool.py", "need-file", "never.marker"]
        timeout: 2
    @delay@:
      command: "@tool@ forever"
      ready:
        delay: 30
"""


def test_every_probe_kind_times_out(project: Project, front: str) -> None:
    """Each probe's own timeout (2 s), and for delay the overall --timeout: exit code 4, one
    line per session naming the probe; the http one reaches a port that answers no HTTP."""
    project.write(PROBES_TIMING_OUT)
    names = dict(zip(KINDS, (project.name(k) for k in KINDS), strict=True))
    project.verb(front, "up").ok()
    retry_until(lambda: "listening" in project.logs(names["http"]), timeout=30)
    begun = time.monotonic()
    done = project.verb(front, "wait", list(names.values()), "--timeout", "6")
    assert done.code == 4, done.err
    assert time.monotonic() - begun < 60
    expected = {
        "tcp": f"not ready after 2 s (tcp 127.0.0.1:{project.port('nobody')})",
        "http": f"not ready after 2 s (http http://127.0.0.1:{project.port('raw')}/)",
        "log": "not ready after 2 s (log /^ready$/)",
        "exec": "not ready after 2 s (exec python3 e2e_tool.py need-file never.marker)",
        "delay": "(delay 30s)",
    }
    for kind, name in names.items():
        assert len(lines_of(done.err, f"{name}: not ready after")) == 1, done.err
        assert expected[kind] in lines_of(done.err, f"{name}: ")[0]
    assert lines_of(done.err, "wait failed: ")
    project.verb(front, "down").ok()


def test_a_crash_before_ready_is_noticed_at_once(project: Project, front: str) -> None:
    """The probe would wait 120 s; the session dies after 1 s: up fails within seconds
    (asserted: well under the probe's timeout), exit 1, with the exit code and last lines."""
    project.write("""\
ops:
  sessions:
    @crash@:
      command: "@tool@ say booting + sleep 1 + say fatal: no config file + exit 5"
      ready:
        tcp: @port-crash@
        timeout: 120
""")
    crash = project.name("crash")
    begun = time.monotonic()
    done = project.verb(front, "up", [], "--wait")
    assert time.monotonic() - begun < 40
    assert done.code == 1, done.err
    assert (f"{crash}: exited with code 5 while waiting for tcp 127.0.0.1:"
            f"{project.port('crash')}") in done.err
    assert f"{crash} | fatal: no config file" in done.err
    assert f"up failed: {crash}" in done.err
    begun = time.monotonic()
    started = project.verb(front, "start", [crash], "--wait")
    assert time.monotonic() - begun < 40
    assert started.code == 1 and f"{crash}: exited with code 5" in started.err
    project.verb(front, "down").ok()


# --------------------------------------------------------------------------- completed


MIGRATION = """\
ops:
  sessions:
    @migrate@:
      command: "@tool@ say migrating + sleep 1 + {migration}"
    @app@:
      command: "@tool@ need-file @root@/migrated + say app up + forever"
      depends_on:
        @migrate@: completed
      ready:
        log: "^app up$"
"""


def test_completed_dependency_that_succeeds(project: Project, front: str) -> None:
    project.write(MIGRATION.format(migration="touch @root@/migrated + say done + exit 0"))
    migrate, app = project.name("migrate"), project.name("app")
    done = project.verb(front, "up", [app], "--wait", "--json").ok()
    results = {r["name"]: r for r in json.loads(done.out)["sessions"]}
    assert (results[migrate]["state"], results[migrate]["exit_code"]) == ("completed", 0)
    assert results[app]["ready"] is True
    assert f"need: {project.root}/migrated present" in project.logs(app)
    status = project.status(migrate)
    assert (status["state"], status["exit_code"]) == ("exited", 0)
    project.verb(front, "down").ok()


def test_completed_dependency_that_fails(project: Project, front: str) -> None:
    """The dependent never starts; the report names the failed one, its exit code and its
    last lines; ``--json`` says the same."""
    project.write(MIGRATION.format(migration="say step 2: boom, table locked + exit 3"))
    migrate, app = project.name("migrate"), project.name("app")
    done = project.verb(front, "up")
    assert done.code == 1, done.err
    assert f"{migrate}: exited with code 3 while waiting for completed (exit code 0)" in done.err
    assert f"{migrate} | step 2: boom, table locked" in done.err
    assert f"up failed: {migrate}" in done.err and f"{app}: starting" not in done.err
    assert project.state(app) == "defined"
    assert not (project.root / "migrated").exists()
    as_json = project.verb(front, "up", [], "--json")
    assert as_json.code == 1
    data = json.loads(as_json.out)
    results = {r["name"]: r for r in data["sessions"]}
    assert (data["ok"], data["exit_code"]) == (False, 1)
    assert (results[migrate]["state"], results[migrate]["exit_code"]) == ("failed", 3)
    assert "step 2: boom, table locked" in results[migrate]["output"]
    assert results[app]["state"] == "skipped"
    project.verb(front, "down").ok()


# --------------------------------------------------------------------------- refused graphs


def test_cycle_and_unknown_dependency_are_refused_and_never_run(project: Project,
                                                                 front: str) -> None:
    project.write("""\
ops:
  sessions:
    @a@:
      command: "@tool@ touch ran-a + forever"
      depends_on: [@b@]
    @b@:
      command: "@tool@ touch ran-b + forever"
      depends_on: [@a@]
    @c@:
      command: "@tool@ touch ran-c + forever"
      depends_on: [@nope@]
    @d@:
      command: "@tool@ touch ran-d + forever"
""")
    a, b, c, d = (project.name(k) for k in "abcd")
    done = project.verb(front, "up", [], "--wait").ok()
    warnings = lines_of(done.err, "warning: ")
    assert any(f"session '{a}': depends_on: cycle {a} -> {b} -> {a}" in w for w in warnings)
    assert any(f"session '{b}': depends_on: cycle {b} -> {a} -> {b}" in w for w in warnings)
    assert any(f"session '{c}': depends_on: unknown session '{project.name('nope')}'" in w
               for w in warnings)
    assert all(w.startswith("warning: kstlib.conf.yml:") for w in warnings)
    assert project.state(d) == "running"
    refused = project.verb(front, "up", [a])
    assert refused.code == 2 and f"cycle {a} -> {b} -> {a}" in refused.err
    listed = json.loads(project.kstlib("ops", "list", "--json").ok().out)
    assert not [row for row in listed if row["name"] in (a, b, c)]
    assert sorted(p.name for p in project.root.glob("ran-*")) == ["ran-d"]
    project.verb(front, "down").ok()


# --------------------------------------------------------------------------- exit codes, JSON


def test_exit_codes(project: Project, front: str) -> None:
    """0 fine, 1 a session failed, 4 not ready in time, 2 a usage error; 1 for a name that is
    neither a session nor a group (with a did-you-mean)."""
    project.write(DB_AND_APP + """\
    @slow@:
      command: "@tool@ forever"
      ready:
        tcp: @port-never@
        timeout: 2
    @fails@:
      command: "@tool@ exit 1"
      ready:
        log: "never printed"
""")
    db = project.name("db")
    assert project.verb(front, "up", [db], "--wait").code == 0
    timed_out = project.verb(front, "up", [project.name("slow")], "--wait")
    assert timed_out.code == 4, timed_out.err
    assert f"{project.name('slow')}: not ready after 2 s" in timed_out.err
    failed = project.verb(front, "up", [project.name("fails")], "--wait")
    assert failed.code == 1, failed.err
    usage = project.verb(front, "up", [db], "--timeout", "soon")
    assert usage.code == 2 and "timeout" in usage.one_line_error()
    unknown = project.verb(front, "up", [db[:-1]])
    assert unknown.code == 1
    assert f"no session or group named '{db[:-1]}' (did you mean '{db}'?)" in unknown.err
    if front == "kstlib":
        bogus = project.kstlib("ops", "up", "--bogus")
        assert bogus.code == 2
        assert bogus.one_line_error() == "kstlib: unknown option '--bogus' (see: kstlib ops up " \
                                         "--help)"
        assert project.kstlib("ops", "wait").code == 2  # needs a NAME
    project.verb(front, "down").ok()


def test_json_is_pure_json_on_stdout(project: Project, front: str) -> None:
    project.write(DB_AND_APP)
    db, app = project.name("db"), project.name("app")
    up = project.verb(front, "up", [app], "--wait", "--json").ok()
    data = json.loads(up.out)
    assert (data["ok"], data["exit_code"]) == (True, 0)
    assert [r["name"] for r in data["sessions"]] == [db, app]
    assert all(set(r) >= {"name", "backend", "state", "ready", "seconds", "exit_code", "error"}
               for r in data["sessions"])
    assert f"{db}: starting" in up.err  # progress on stderr
    waited = json.loads(project.verb(front, "wait", [db, app], "--json").ok().out)
    assert [r["ready"] for r in waited["sessions"]] == [True, True]
    down = project.verb(front, "down", [], "--json").ok()
    stopped = {r["name"]: r["state"] for r in json.loads(down.out)["sessions"]}
    assert stopped == {db: "stopped", app: "stopped"}
    nothing = json.loads(project.verb(front, "down", [], "--json").ok().out)
    assert nothing == {"ok": True, "exit_code": 0, "sessions": []}


@pytest.mark.containers
def test_a_log_probe_sees_its_line_however_much_follows_it(project: Project,
                                                          runtime: str) -> None:
    """The ready line comes with 5000 more lines in the same write: every line since the
    start is looked at, not only the last ones at each attempt (tmux and a container)."""
    project.write(f"""\
ops:
  sessions:
    @chatty@:
      command: "@tool@ sleep 0.5 + flood 5000 server ready + forever"
      ready:
        log: "^server ready$"
        timeout: 20
    @cchatty@:
      backend: container
      runtime: {runtime}
      image: "{PYTHON_IMAGE}"
      command: "python3 -u /t/e2e_tool.py sleep 0.5 + flood 5000 server ready + forever"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
      ready:
        log: "^server ready$"
        timeout: 20
""")
    names = [project.name("chatty"), project.name("cchatty")]
    done = project.kstlib("ops", "up", *names, "--wait", "--json")
    assert done.code == 0, done.err
    results = {r["name"]: r for r in json.loads(done.out)["sessions"]}
    assert [results[n]["ready"] for n in names] == [True, True], done.err
    assert all(results[n]["seconds"] < 15 for n in names), results
    project.kstlib("ops", "down").ok()


def test_down_stops_a_session_whose_entry_broke_while_it_ran(project: Project,
                                                            front: str) -> None:
    """A typo made in a running session's entry refuses the entry, but what runs under its
    name is still brought down: by ``down`` of everything and by ``down NAME``."""
    config = ("ops:\n  sessions:\n    @a@:\n      command: \"@tool@ forever\"\n"
              "    @b@:\n      command: \"@tool@ forever\"\n")
    a, b = project.name("a"), project.name("b")
    for targets in ([], [a]):
        project.write(config)
        project.kstlib("ops", "up", a, b).ok()
        project.write(config.replace("command: \"@tool@ forever\"\n    @b@", "comand: x\n"
                                     "    @b@", 1))
        done = project.verb(front, "down", targets)
        assert done.code == 0, done.err
        assert f"{a}: stopped" in done.err, done.err
        rows = {r["name"]: r for r in json.loads(project.kstlib("ops", "list", "--json").out)}
        assert a not in rows or rows[a]["state"] not in ("running", "exited"), rows.get(a)
        project.write(config)
        assert project.state(a) == "defined"
        assert project.state(b) == ("defined" if not targets else "running")
        project.kstlib("ops", "down").ok()


def test_restart_wait_returns_once_ready(project: Project, front: str) -> None:
    project.write('ops:\n  sessions:\n    @slow@:\n      command: "@tool@ sleep 1 + say up '
                  '+ forever"\n      ready:\n        log: "^up$"\n')
    slow = project.name("slow")
    project.kstlib("ops", "start", slow).ok()
    done = project.verb(front, "restart", [slow], "--wait")
    assert done.code == 0, done.err
    assert f"{slow}: ready after" in done.err
    assert "up" in project.logs(slow).splitlines()
    project.kstlib("ops", "stop", slow, "--force").ok()


# --------------------------------------------------------------------------- containers


@pytest.mark.containers
def test_a_tmux_session_depending_on_a_container(project: Project, runtime: str) -> None:
    """The container (published on 127.0.0.1 only) serves HTTP after a second; the tmux
    session GETs it at its own start (docker's proxy accepts a TCP connection before the
    program listens: only an HTTP answer proves it). A second container is ready by an exec
    probe run inside it (its /tmp/ready exists nowhere else). Up with kstlib, down with inv."""
    project.write(f"""\
ops:
  sessions:
    @cdb@:
      backend: container
      runtime: {runtime}
      image: "{PYTHON_IMAGE}"
      command: "python3 -u /t/e2e_tool.py sleep 1 + serve @port-cdb@ http any"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
      ports: ["127.0.0.1:@port-cdb@:@port-cdb@"]
      ready:
        log: "^listening"
        timeout: 90
    @cbox@:
      backend: container
      runtime: {runtime}
      image: "{PYTHON_IMAGE}"
      command: "python3 -u /t/e2e_tool.py sleep 1 + touch /tmp/ready + forever"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
      ready:
        exec: "python3 /t/e2e_tool.py need-file /tmp/ready"
        timeout: 90
    @capp@:
      command: "@tool@ need-http http://127.0.0.1:@port-cdb@/ + say app up + forever"
      depends_on: [@cdb@, @cbox@]
      ready:
        log: "^app up$"
""")
    cdb, capp = project.name("cdb"), project.name("capp")
    project.kstlib("ops", "up", "--wait").ok()
    assert f"need: http://127.0.0.1:{project.port('cdb')}/ answered" in project.logs(capp)
    status = project.status(cdb)
    assert (status["backend"], status["state"], status["runtime"]) == (
        "container", "running", runtime)
    done = project.inv("ops.down").ok()
    report = done.err.splitlines()
    assert report.index(f"{capp}: stopping") < report.index(f"{cdb}: stopping")
    assert report.index(f"{capp}: stopping") < report.index(f"{project.name('cbox')}: stopping")
    assert project.state(cdb) == project.state(capp) == "defined"
