"""Restart policies and drift end to end, through the INSTALLED ``kstlib`` and ``inv``, every
case on tmux, podman and docker (the ``where`` fixture).

What a session does is spelled with :mod:`tests.e2e_tool`; each run of a command appends to a
file (``stamp runs``), so the number of runs is counted by the command itself, not taken from
kstlib's report. tmux restarts with supervise.sh (0.5 s, doubling), containers with the
runtime's own policy: ``max_restarts`` stays small and every wait is a ``retry_until`` with a
wide margin. "Nothing comes back" is watched for several seconds, longer than any backoff
that could still be pending.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_project import Project
from tests.helpers import BUSYBOX_IMAGE, KSTLIB, PYTHON_IMAGE, retry_until
from tests.where import Where

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")

SLOW = 90  # seconds: the bound of every wait (two runtimes and tmux share a busy machine)


def lines(project: Project, file: str) -> list[str]:
    try:
        return (project.root / file).read_text().splitlines()
    except FileNotFoundError:
        return []


def stays(check: Callable[[], Any], seconds: float) -> None:
    """``check`` holds all along ``seconds`` (what must NOT happen, watched for a while)."""
    deadline = time.monotonic() + seconds
    while True:
        assert check(), "the condition stopped holding"
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def listed(project: Project, name: str) -> dict[str, str]:
    """The row of ``name`` in ``kstlib ops list`` (the text table), by column."""
    out = project.kstlib("ops", "list").ok().out.splitlines()
    header = out[0].split()
    rows = [line.split() for line in out[1:] if line.split()[:1] == [name]]
    assert len(rows) == 1, out
    return dict(zip(header, rows[0], strict=True))


def status_when(project: Project, name: str, check: Callable[[dict[str, Any]], bool],
                timeout: float = SLOW) -> dict[str, Any]:
    """The first ``status --json`` of ``name`` for which ``check`` holds."""
    def probe() -> dict[str, Any] | None:
        status = project.status(name)
        return status if check(status) else None

    return retry_until(probe, timeout=timeout, interval=0.2)


# --------------------------------------------------------------------------- restart


def test_on_failure_restarts_bounded_counted_then_exited_and_start_counts_afresh(
        project: Project, where: Where) -> None:
    """Three runs (the first and two restarts), then ``exited`` with the last exit code, in
    ``status --json`` and in ``list``'s Restarts and Exit columns; it stays so. ``start`` of
    the session that gave up begins a fresh count: three runs more (a count carried over
    would give up after one)."""
    project.write(where.config(where.entry(
        "crash", "@tool@ stamp runs + say run failed + exit 3",
        "restart: on-failure\nmax_restarts: 2")))
    crash = project.name("crash")
    project.kstlib("ops", "start", crash).ok()
    gave_up = status_when(project, crash, lambda s: s["state"] == "exited" and s["restarts"] == 2)
    assert (gave_up["exit_code"], gave_up["pid"]) == (3, None)
    assert len(lines(project, "runs")) == 3
    row = listed(project, crash)
    assert (row["State"], row["Exit"], row["Restarts"]) == ("exited", "3", "2")
    stays(lambda: len(lines(project, "runs")) == 3 and project.state(crash) == "exited", 4)

    project.inv(f"{crash}.start").ok()
    again = status_when(project, crash, lambda s: s["state"] == "exited" and s["restarts"] == 2
                        and len(lines(project, "runs")) == 6)
    assert again["exit_code"] == 3
    stays(lambda: len(lines(project, "runs")) == 6, 3)
    assert project.logs(crash).splitlines().count("run failed") == 3  # this start's log only
    project.kstlib("ops", "stop", crash).ok()
    assert project.state(crash) == "defined"


def test_on_failure_does_not_restart_a_clean_exit(project: Project, where: Where) -> None:
    project.write(where.config(where.entry(
        "clean", "@tool@ stamp runs + say done + exit 0", "restart: on-failure\nmax_restarts: 3")))
    clean = project.name("clean")
    project.kstlib("ops", "start", clean).ok()
    done = status_when(project, clean, lambda s: s["state"] == "exited")
    assert (done["exit_code"], done["restarts"]) == (0, 0)
    stays(lambda: len(lines(project, "runs")) == 1 and project.state(clean) == "exited", 4)
    assert listed(project, clean)["Restarts"] == "0"
    project.kstlib("ops", "stop", clean).ok()


def test_always_survives_crashes_and_clean_exits_but_not_stop(project: Project,
                                                               where: Where) -> None:
    """``always`` restarts a crash and a clean exit alike; ``stop`` is final, for a command
    that was running (``long``: it exits 0 on the stop signal, which ``always`` alone would
    restart) and for those that keep ending. Nothing comes back, watched for 8 s: more than
    any restart delay pending then (tmux: 0.5 s doubling; the runtimes: shorter)."""
    always = "restart: always\nmax_restarts: 0"
    project.write(where.config(
        where.entry("crash", "@tool@ stamp crash.runs + sleep 0.3 + exit 5", always),
        where.entry("clean", "@tool@ stamp clean.runs + sleep 0.3 + exit 0", always),
        where.entry("long", "@tool@ stamp long.runs + say up + forever", always)))
    names = {key: project.name(key) for key in ("crash", "clean", "long")}
    project.kstlib("ops", "up").ok()
    for key in ("crash", "clean"):
        status_when(project, names[key], lambda s: s["restarts"] >= 2)
        retry_until(lambda key=key: len(lines(project, f"{key}.runs")) >= 3, timeout=SLOW)
    retry_until(lambda: "up" in project.logs(names["long"]), timeout=SLOW)
    assert project.status(names["long"])["restarts"] == 0

    project.kstlib("ops", "stop", names["long"]).ok()
    project.inv(f"{names['crash']}.stop").ok()
    project.kstlib("ops", "stop", names["clean"]).ok()
    counts = {key: len(lines(project, f"{key}.runs")) for key in names}
    assert counts["long"] == 1

    def nothing_back() -> bool:
        now = {key: len(lines(project, f"{key}.runs")) for key in names}
        live = set(where.raw_names()) & set(names.values())
        return now == counts and not live
    stays(nothing_back, 8)
    assert [project.state(n) for n in names.values()] == ["defined"] * 3


GRACEFUL = """\
import pathlib, signal, sys, time

def bye(signum, frame):
    time.sleep(1)  # a clean-up that takes its time
    pathlib.Path("stopped.marker").write_text(signal.Signals(signum).name)
    print("cleaned up after", signal.Signals(signum).name, flush=True)
    sys.exit(0)

signal.signal(signal.{signal}, bye)
pathlib.Path("ready.marker").write_text("ready")
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


@pytest.mark.parametrize("policy", ["on-failure", "always"])
def test_the_graceful_stop_handler_runs_under_supervision(project: Project, where: Where,
                                                          policy: str) -> None:
    """A script trapping the stop signal (tmux: SIGINT from C-c; containers: SIGTERM) cleans
    up for a second, writes a marker and exits 0: ``stop`` returns after that, the marker is
    there, and the exit 0 is not restarted (``always`` would restart it if stop were not
    final)."""
    (project.root / "graceful.py").write_text(GRACEFUL.format(signal=where.stop_signal))
    project.write(where.config(where.entry(
        "grace", "python3 -u graceful.py", f"restart: {policy}\nmax_restarts: 2")))
    grace = project.name("grace")
    project.kstlib("ops", "start", grace).ok()
    retry_until(lambda: (project.root / "ready.marker").exists(), timeout=SLOW)
    project.kstlib("ops", "stop", grace, "--timeout", "30").ok()
    assert (project.root / "stopped.marker").read_text() == where.stop_signal
    assert project.state(grace) == "defined"
    assert f"cleaned up after {where.stop_signal}" in project.logs(grace)
    (project.root / "ready.marker").unlink()
    stays(lambda: not (project.root / "ready.marker").exists(), 3)


def pid_inside(host_pid: int) -> int:
    """The pid a process has inside its container (the last field of ``NSpid``)."""
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise AssertionError(f"no NSpid for {host_pid}")


def test_the_pid_in_status_is_the_commands(project: Project, where: Where) -> None:
    """The command appends its own pid to a file at each run; the first run exits 4 and is
    restarted. tmux: the pid ``status`` reports, supervised or not, is the one the command
    wrote, and the new one after a restart. Containers without an init process: the same, as
    seen inside the container."""
    init = "init: false\n" if where.container else ""
    project.write(where.config(
        where.entry("plain", "@tool@ pid plain.pids + forever", init),
        where.entry("super", "@tool@ pid super.pids + once super.crashed 4 + forever",
                    f"{init}restart: on-failure\nmax_restarts: 2")))
    plain, sup = project.name("plain"), project.name("super")
    project.kstlib("ops", "up").ok()

    def seen(name: str) -> int:
        pid = project.status(name)["pid"]
        assert pid is not None
        return pid_inside(pid) if where.container else int(pid)

    retry_until(lambda: lines(project, "plain.pids"), timeout=SLOW)
    assert seen(plain) == int(lines(project, "plain.pids")[-1])
    status_when(project, sup, lambda s: s["restarts"] == 1 and s["state"] == "running"
                and s["pid"] is not None and len(lines(project, "super.pids")) == 2)
    first, second = (int(p) for p in lines(project, "super.pids"))
    assert seen(sup) == second
    if not where.container:
        assert second != first
    project.kstlib("ops", "down").ok()


def test_restart_no_written_unquoted(project: Project, where: Where) -> None:
    """``restart: no`` (YAML 1.1's false, refused everywhere else) means no restart: no
    warning, ``check`` clean, one run, exited with its code."""
    project.write(where.config(where.entry("once", "@tool@ stamp runs + exit 3", "restart: no")))
    once = project.name("once")
    started = project.kstlib("ops", "start", once).ok()
    assert "quote" not in started.err and "restart" not in started.err
    done = status_when(project, once, lambda s: s["state"] == "exited")
    assert (done["exit_code"], done["restarts"]) == (3, 0)
    stays(lambda: len(lines(project, "runs")) == 1, 3)
    assert project.kstlib("ops", "check").code == 0
    project.kstlib("ops", "stop", once).ok()


@pytest.mark.containers
def test_check_says_the_runtimes_always_has_no_count(project: Project, runtime: str) -> None:
    project.write(Where(runtime).config(Where(runtime).entry(
        "forever", "@tool@ forever", "restart: always\nmax_restarts: 3")))
    done = project.kstlib("ops", "check")
    assert "max_restarts: containers with restart: always restart without limit (the " \
           "runtimes' policy has no count)" in done.out, done.out
    assert done.code == 0, done.out  # a warning, not a problem


# --------------------------------------------------------------------------- drift


def test_drift_names_exactly_the_fields_edited(project: Project, where: Where) -> None:
    """Each field edited alone is the only one named (and reverting it clears the drift);
    edited together, all of them. The table marks the drifted row with ``*``, not the other;
    ``status`` names the fields. Nothing is restarted by looking."""
    template = where.config(
        where.entry("dr", "@tool@ say {word} + forever", "env:\n  KT_MODE: {mode}",
                    image="{image}"),
        where.entry("same", "@tool@ forever"))
    base = {"word": "v1", "mode": "one", "image": PYTHON_IMAGE}
    project.write(template.format(**base))
    dr, same = project.name("dr"), project.name("same")
    project.kstlib("ops", "up").ok()
    pid = project.status(dr)["pid"]
    assert (project.status(dr)["drifted"], project.status(dr)["drift"]) == (False, [])

    edits = {"env": {"mode": "two"}, "command": {"word": "v2"}}
    if where.container:
        edits["image"] = {"image": BUSYBOX_IMAGE}
    for field, change in edits.items():
        project.write(template.format(**{**base, **change}))
        status = project.status(dr)
        assert (status["drifted"], status["drift"]) == (True, [field])
        assert listed(project, dr)["State"] == "running*"
        assert listed(project, same)["State"] == "running"
        text = " ".join(project.kstlib("ops", "status", dr).ok().out.split())
        assert f"Drifted: yes: {field} changed in the config since the start" in text, text
    project.write(template.format(**base))
    assert project.status(dr)["drifted"] is False
    everything = {k: v for change in edits.values() for k, v in change.items()}
    project.write(template.format(**{**base, **everything}))
    status = project.status(dr)
    assert (status["drifted"], status["drift"]) == (True, sorted(edits))
    assert status["pid"] == pid and status["state"] == "running"
    table = project.kstlib("ops", "list").ok().out
    assert "* drifted: runs something else than the config now says" in table
    assert project.status(same)["drifted"] is False
    project.kstlib("ops", "down").ok()


def test_up_recreates_only_the_drifted_sessions(project: Project, where: Where) -> None:
    template = where.config(
        where.entry("dr", "@tool@ env KT_MODE + forever", "env:\n  KT_MODE: {mode}"),
        where.entry("kept", "@tool@ env KT_MODE + forever", "env:\n  KT_MODE: fixed"))
    project.write(template.format(mode="one"))
    dr, kept = project.name("dr"), project.name("kept")
    project.kstlib("ops", "up").ok()
    retry_until(lambda: "env: KT_MODE=one" in project.logs(dr), timeout=SLOW)
    before = {n: project.status(n) for n in (dr, kept)}
    project.write(template.format(mode="two"))

    left = project.inv("ops.up", "--no-recreate").ok()
    assert f"{dr}: already running (drifted: kept, --no-recreate)" in left.err
    status = project.status(dr)
    assert (status["pid"], status["drifted"], status["drift"]) == (before[dr]["pid"], True,
                                                                  ["env"])

    done = project.kstlib("ops", "up").ok()
    assert f"{dr}: recreating (drifted: env)" in done.err
    assert f"{kept}: already running" in done.err
    after = {n: project.status(n) for n in (dr, kept)}
    assert after[dr]["drifted"] is False and after[dr]["pid"] != before[dr]["pid"]
    assert after[kept]["pid"] == before[kept]["pid"]
    assert after[kept]["created_at"] == before[kept]["created_at"]
    retry_until(lambda: "env: KT_MODE=two" in project.logs(dr), timeout=SLOW)
    project.kstlib("ops", "down").ok()


def test_a_session_started_with_overrides_is_not_drifted(project: Project,
                                                          where: Where) -> None:
    """``start -e K=V`` (and for a container ``--image`` of another image) is compared with
    the config plus those overrides: not drifted. An edit of the config afterwards is still
    seen, and only it."""
    template = where.config(where.entry("ov", "sleep {seconds}", "env:\n  KT_MODE: config"))
    project.write(template.format(seconds=600))
    ov = project.name("ov")
    flags = ["-e", "KT_MODE=override", "-e", "KT_MORE=1"]
    if where.container:
        flags += ["--image", BUSYBOX_IMAGE]
    project.inv(f"{ov}.start", *flags).ok()
    status = project.status(ov)
    assert (status["state"], status["drifted"], status["drift"]) == ("running", False, [])
    if where.container:
        assert status["image"].endswith(BUSYBOX_IMAGE.split("/", 1)[1])
    assert listed(project, ov)["State"] == "running"
    project.write(template.format(seconds=601))
    assert (project.status(ov)["drifted"], project.status(ov)["drift"]) == (True, ["command"])
    project.kstlib("ops", "stop", ov).ok()


def test_drifted_is_null_for_a_session_not_started_by_kstlib(project: Project,
                                                              where: Where) -> None:
    """A session of a configured name made with the raw tool has no fingerprint: drifted is
    null (not false), managed false; it can be stopped by name."""
    project.write(where.config(where.entry("raw", "sleep 600")))
    raw = project.name("raw")
    where.raw_start(raw, project.root, "sleep", "600")
    status = project.status(raw)
    assert (status["state"], status["managed"], status["drifted"], status["drift"]) == (
        "running", False, None, [])
    assert listed(project, raw)["State"] == "running"
    project.kstlib("ops", "stop", raw, "--force").ok()
    assert raw not in where.raw_names()


def test_a_removed_entry_can_still_be_inspected_and_stopped(project: Project,
                                                             where: Where) -> None:
    project.write(where.config(where.entry("gone", "@tool@ say here + forever"),
                               where.entry("other", "sleep 600")))
    gone = project.name("gone")
    project.kstlib("ops", "start", gone).ok()
    retry_until(lambda: "here" in project.logs(gone), timeout=SLOW)
    project.write(where.config(where.entry("other", "sleep 600")))
    status = project.status(gone)
    assert (status["state"], status["defined"], status["managed"]) == ("running", False, True)
    assert "Defined: no" in " ".join(project.kstlib("ops", "status", gone).ok().out.split())
    assert listed(project, gone)["State"] == "running"
    assert "here" in project.logs(gone)
    project.inv("ops.stop", gone).ok()
    assert gone not in where.raw_names()
    missing = project.kstlib("ops", "status", gone)
    assert missing.code == 1 and f"no session named '{gone}'" in missing.one_line_error()


def test_drift_covers_a_value_read_from_an_env_file(project: Project, where: Where) -> None:
    (project.root / "app.env").write_text("KT_FROM_FILE=one\n")
    project.write(where.config(where.entry("envf", "@tool@ env KT_FROM_FILE + forever",
                                           "env_file: app.env")))
    envf = project.name("envf")
    project.kstlib("ops", "start", envf).ok()
    retry_until(lambda: "env: KT_FROM_FILE=one" in project.logs(envf), timeout=SLOW)
    assert project.status(envf)["drifted"] is False
    (project.root / "app.env").write_text("# edited\nKT_FROM_FILE=two\n")
    status = project.status(envf)
    assert (status["drifted"], status["drift"]) == (True, ["env"])
    assert listed(project, envf)["State"] == "running*"
    project.kstlib("ops", "up").ok()
    retry_until(lambda: "env: KT_FROM_FILE=two" in project.logs(envf), timeout=SLOW)
    assert project.status(envf)["drifted"] is False
    project.kstlib("ops", "stop", envf).ok()
