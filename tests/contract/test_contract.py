"""The contract every backend keeps (``kstlib_tasks.backends.base.Backend``), on real backends.

Each test runs on every case of ``conftest.CASES``: tmux, podman, docker, swarm and the fake.
Waits are on conditions (``retry_until``) with wide bounds; durations are only checked against a
timeout far larger than the expected time, never tightly.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kstlib_tasks.errors import SessionAlreadyRunningError, SessionNotRunningError
from kstlib_tasks.models import SessionStatus, State
from tests.contract.conftest import Case
from tests.helpers import retry_until

Names = Callable[[str], str]
SLEEPER = ("sh", "-c", "echo started; exec sleep 300")


def exited(case: Case, name: str) -> Callable[[], SessionStatus | None]:
    def check() -> SessionStatus | None:
        status = case.backend.status(name)
        return status if status is not None and status.state is State.EXITED else None

    return check


def logs_say(case: Case, name: str, lines: list[str]) -> Callable[[], bool]:
    return lambda: case.backend.logs(name) == lines


def listed(case: Case, name: str) -> list[SessionStatus]:
    return [s for s in case.backend.list() if s.name == name]


# A script that says it is ready, then waits; its signal handlers are set by the caller.
HANDLER = """
    import pathlib, signal, sys, time
    folder = pathlib.Path(sys.argv[1])
    WANTED = int(sys.argv[2])
    def clean_up(signum, frame):
        time.sleep(0.5)  # a slow clean-up must not be cut short
        (folder / "marker").write_text(f"handled {signum}")
        print("cleaned up", flush=True)
        sys.exit(0)
    signal.signal(WANTED, clean_up)
    (folder / "ready").write_text("yes")
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
"""

STUBBORN = """
    import pathlib, signal, sys, time
    folder = pathlib.Path(sys.argv[1])
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    (folder / "ready").write_text("yes")
    while True:
        time.sleep(0.1)
"""

SLOW_HANDLER = """
    import pathlib, signal, sys, time
    folder = pathlib.Path(sys.argv[1])
    def slow(signum, frame):
        time.sleep(120)
        (folder / "marker").write_text("too late")
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, slow)
    (folder / "ready").write_text("yes")
    while True:
        time.sleep(0.1)
"""


# --------------------------------------------------------------------------- start, status, list


def test_start_status_and_one_listing(case: Case, unique_name: Names) -> None:
    name = unique_name("life")
    started = case.start(name, *SLEEPER)
    assert started.name == name and started.backend == case.backend_name
    assert started.state is State.RUNNING and started.managed
    if case.has_pid:
        assert started.pid is not None and started.pid > 0
    else:
        assert started.pid is None
    assert case.run_id(started)
    assert started.scope == case.backend.scope
    assert started.created_at is not None and started.created_at.endswith("Z")

    status = case.backend.status(name)
    assert status is not None and status.state is State.RUNNING
    assert status.pid == started.pid and status.scope == started.scope
    assert case.run_id(status) == case.run_id(started)

    rows = listed(case, name)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row.state is State.RUNNING and row.managed and row.scope == case.backend.scope
    assert row.created_at == started.created_at
    if case.list_has_pid:
        assert row.pid == started.pid

    stopped = case.backend.stop(name, timeout=5)
    assert stopped.state is State.EXITED and stopped.pid is None
    assert case.backend.status(name) is None
    assert listed(case, name) == []


def test_exact_names(case: Case, unique_name: Names) -> None:
    bot, bot2 = unique_name("bot"), unique_name("bot-2")
    other = case.start(bot2, *SLEEPER)

    assert case.backend.status(bot) is None
    assert [s.name for s in case.backend.list() if s.name.startswith(bot)] == [bot2]
    with pytest.raises(SessionNotRunningError):
        case.backend.stop(bot, force=True)
    with pytest.raises(SessionNotRunningError):
        case.backend.logs(bot)

    mine = case.start(bot, *SLEEPER)
    assert case.run_id(mine) != case.run_id(other)
    case.backend.stop(bot, force=True)
    still = case.backend.status(bot2)
    assert still is not None and still.state is State.RUNNING
    assert case.run_id(still) == case.run_id(other)
    case.backend.stop(bot2, force=True)


def test_something_named_like_the_session_is_not_the_session(
    case: Case, unique_name: Names
) -> None:
    case.require("lookalikes")
    assert case.lookalike is not None
    name = unique_name("alike")
    with case.lookalike(name):
        assert case.backend.status(name) is None
        assert name not in {s.name for s in case.backend.list()}
        with pytest.raises(SessionNotRunningError):
            case.backend.stop(name, force=True)
        with pytest.raises(SessionNotRunningError):
            case.backend.logs(name)
        # and the name is still free for a real session
        assert case.start(name, *SLEEPER).state is State.RUNNING
        case.backend.stop(name, force=True)


def test_already_running_start_is_refused(case: Case, unique_name: Names) -> None:
    name = unique_name("twice")
    first = case.start(name, *SLEEPER)
    with pytest.raises(SessionAlreadyRunningError, match=f"'{name}' is already running"):
        case.start(name, "sh", "-c", "echo other; exec sleep 300")
    status = case.backend.status(name)
    assert status is not None and status.state is State.RUNNING
    assert case.run_id(status) == case.run_id(first)
    case.backend.stop(name, force=True)


def test_stop_of_nothing_is_refused(case: Case, unique_name: Names) -> None:
    name = unique_name("nothing")
    with pytest.raises(SessionNotRunningError, match=f"'{name}' is not running"):
        case.backend.stop(name)
    with pytest.raises(SessionNotRunningError):
        case.backend.logs(name)


def test_start_returns_once_launched_even_if_the_command_dies_at_once(
    case: Case, unique_name: Names
) -> None:
    case.require("processes")
    name = unique_name("dies")
    started = case.start(name, "sh", "-c", "echo bye; exit 5")
    assert started.name == name and started.state in (State.RUNNING, State.EXITED)
    done = retry_until(exited(case, name), timeout=case.wait)
    assert done.exit_code == 5 and done.pid is None
    retry_until(logs_say(case, name, ["bye"]), timeout=case.wait)
    case.backend.stop(name)


# --------------------------------------------------------------------------- exit codes, logs


def test_exit_code_is_kept(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("three")
    case.start(name, "sh", "-c", "exit 3")
    done = retry_until(exited(case, name), timeout=case.wait)
    assert done.exit_code == 3 and done.pid is None and done.managed
    rows = listed(case, name)
    assert len(rows) == 1 and rows[0].state is State.EXITED and rows[0].exit_code == 3
    stopped = case.backend.stop(name)
    assert stopped.state is State.EXITED and stopped.exit_code == 3
    assert case.backend.status(name) is None


def test_logs_while_running_after_exit_and_after_stop(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("logs")
    argv = case.python("lines.py", """
        import os, sys, time
        for n in range(1, 31):
            print(f"line {n}", flush=True)
        while not os.path.exists(os.path.join(sys.argv[1], "go")):
            time.sleep(0.05)
        print("line 31", flush=True)
    """)
    case.start(name, *argv, python=True)
    retry_until(lambda: case.backend.logs(name, lines=1) == ["line 30"], timeout=case.wait)
    assert case.backend.logs(name, lines=5) == [f"line {n}" for n in range(26, 31)]
    assert case.backend.logs(name, lines=0) == []
    assert case.backend.logs(name, lines=100) == [f"line {n}" for n in range(1, 31)]
    assert case.backend.status(name).state is State.RUNNING  # type: ignore[union-attr]

    (case.shared / "go").touch()
    assert retry_until(exited(case, name), timeout=case.wait).exit_code == 0
    retry_until(lambda: case.backend.logs(name, lines=2) == ["line 30", "line 31"],
                timeout=case.wait)

    case.backend.stop(name)
    assert case.backend.status(name) is None
    assert case.backend.logs(name, lines=3) == ["line 29", "line 30", "line 31"]
    assert case.backend.logs(name) == [f"line {n}" for n in range(1, 32)]


def test_start_replaces_an_exited_leftover(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("again")
    case.start(name, "sh", "-c", "echo first run; exit 4")
    assert retry_until(exited(case, name), timeout=case.wait).exit_code == 4
    retry_until(logs_say(case, name, ["first run"]), timeout=case.wait)

    again = case.start(name, "sh", "-c", "echo second run; exec sleep 300")
    assert again.state is State.RUNNING and again.exit_code is None
    retry_until(logs_say(case, name, ["second run"]), timeout=case.wait)  # a new log
    assert len(listed(case, name)) == 1
    case.backend.stop(name, force=True)


# --------------------------------------------------------------------------- stop


def test_graceful_stop_reaches_the_handler(case: Case, unique_name: Names) -> None:
    case.require("processes", "signals")
    name = unique_name("grace")
    case.start(name, *case.python("handler.py", HANDLER, str(case.stop_signal)), python=True)
    retry_until((case.shared / "ready").exists, timeout=case.wait)

    began = time.monotonic()
    stopped = case.backend.stop(name, timeout=60)
    took = time.monotonic() - began

    assert (case.shared / "marker").read_text() == f"handled {case.stop_signal}"
    assert stopped.state is State.EXITED and stopped.exit_code == 0
    assert took < 40, "stop waited for its timeout: the handler's exit was not seen"
    assert case.backend.status(name) is None
    assert case.backend.logs(name)[-1].endswith("cleaned up")  # tmux echoes ^C before it


def test_force_stop_kills_at_once(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("force")
    case.start(name, *case.python("slow.py", SLOW_HANDLER), python=True)
    retry_until((case.shared / "ready").exists, timeout=case.wait)
    began = time.monotonic()
    stopped = case.backend.stop(name, force=True, timeout=120)
    assert time.monotonic() - began < 60  # a graceful stop would wait the 120 s handler
    assert stopped.state is State.EXITED and stopped.exit_code == case.kill_code
    assert not (case.shared / "marker").exists()
    assert case.backend.status(name) is None


def test_stop_kills_what_ignores_the_signal_after_the_timeout(
    case: Case, unique_name: Names
) -> None:
    case.require("processes", "signals")
    name = unique_name("stubborn")
    case.start(name, *case.python("stubborn.py", STUBBORN), python=True)
    retry_until((case.shared / "ready").exists, timeout=case.wait)
    began = time.monotonic()
    stopped = case.backend.stop(name, timeout=1)
    took = time.monotonic() - began
    assert 1 <= took < 60, took  # waited the timeout, then killed
    assert stopped.state is State.EXITED and stopped.exit_code == case.kill_code
    assert case.backend.status(name) is None


# --------------------------------------------------------------------------- what the command gets


def test_env_reaches_the_command(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("env")
    value = "two words, 'single' and \"double\" quotes\nand a second line"
    # one line: through the runtimes' env file, which must keep it literally
    literal = "  #not a comment 'q' \"d\" $HOME ${X} \\n =tail  "
    env = {"KT_VALUE": value, "KT_PLAIN": "x", "KT_LITERAL": literal, "KT_EMPTY": ""}
    argv = case.python("env.py", """
        import os, pathlib, sys  # python3-minimal in the image: no json
        keys = ("KT_VALUE", "KT_PLAIN", "KT_LITERAL", "KT_EMPTY")
        seen = {k: os.environ.get(k) for k in keys}
        pathlib.Path(sys.argv[1], "env.txt").write_text(repr(seen))
    """)
    case.start(name, *argv, python=True, env=env)
    assert retry_until(exited(case, name), timeout=case.wait).exit_code == 0
    seen = ast.literal_eval((case.shared / "env.txt").read_text())
    assert seen == env
    case.backend.stop(name)


def test_working_dir(case: Case, unique_name: Names) -> None:
    case.require("processes")
    name = unique_name("cwd")
    folder = case.shared / "work dir #1"
    folder.mkdir()
    inside = f"{case.inside}/work dir #1"
    case.start(name, "pwd", working_dir=inside)
    assert retry_until(exited(case, name), timeout=case.wait).exit_code == 0
    retry_until(logs_say(case, name, [inside]), timeout=case.wait)
    case.backend.stop(name)


def test_run_probe_runs_where_the_session_lives(case: Case, unique_name: Names) -> None:
    case.require("processes", "probe")
    name = unique_name("probe")
    # a file only the session's side can see: a host file for tmux, one inside the container
    where = (f"{case.inside}/made-by-the-session" if case.inside == str(case.shared)
             else f"/made-by-{name}")
    case.start(name, "sh", "-c", f"touch '{where}'; exec sleep 300")

    def probe(*argv: str) -> int:
        return case.backend.run_probe(name, argv, env={"PATH": "/usr/bin:/bin"}, cwd=None,
                                      timeout=30)

    retry_until(lambda: probe("test", "-e", where) == 0, timeout=case.wait)
    assert probe("test", "-e", f"{where}.missing") != 0
    assert probe("sh", "-c", "exit 7") == 7
    assert Path(where).exists() == (case.inside == str(case.shared))
    case.backend.stop(name, force=True)


# --------------------------------------------------------------------------- follow


def test_follow_yields_new_lines_and_ends_with_the_session(
    case: Case, unique_name: Names
) -> None:
    case.require("processes")
    name = unique_name("follow")
    argv = case.python("follow.py", """
        import os, sys, time
        print("one", flush=True)
        while not os.path.exists(os.path.join(sys.argv[1], "go")):
            time.sleep(0.05)
        print("two", flush=True)
        time.sleep(0.5)
        print("three", flush=True)
    """)
    case.start(name, *argv, python=True)
    retry_until(lambda: "one" in case.backend.logs(name), timeout=case.wait)

    seen: list[str] = []
    ended = threading.Event()
    failure: list[BaseException] = []

    def reader() -> None:
        try:
            for line in case.backend.follow(name):
                seen.append(line)
                if line == "one":
                    (case.shared / "go").touch()
        except BaseException as exc:  # reported by the test below
            failure.append(exc)
        finally:
            ended.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert ended.wait(case.wait * 2), f"follow never ended; lines so far: {seen}"
    assert not failure, failure
    assert seen == ["one", "two", "three"]
    assert retry_until(exited(case, name), timeout=case.wait).exit_code == 0
    case.backend.stop(name)
