"""The tmux backend against a real tmux server (private per test through ``TMUX_TMPDIR``).

Every wait is on a condition (``retry_until``), never a fixed sleep; processes that must be
running are checked through /proc, not trusted from tmux alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kstlib_tasks.backends.base import Backend
from kstlib_tasks.backends.tmux import TmuxBackend, socket_path
from kstlib_tasks.errors import (
    BackendNotFoundError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
    ValidationError,
)
from kstlib_tasks.models import SessionSpec, State
from kstlib_tasks.runner import Runner
from tests.helpers import retry_until, run_in_terminal

pytestmark = [pytest.mark.tmux, pytest.mark.usefixtures("tmux_available")]

Names = Callable[[str], str]
PY = sys.executable


@pytest.fixture
def backend() -> TmuxBackend:
    return TmuxBackend()


def spec(name: str, *command: str, **changes: object) -> SessionSpec:
    return SessionSpec(name=name, backend="tmux", command=command, **changes)  # type: ignore[arg-type]


def script(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return path


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting for tmux to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def raw_tmux(*args: str, socket: str | None = None) -> subprocess.CompletedProcess[str]:
    base = ["tmux", *(["-L", socket] if socket else [])]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)


def exited(backend: TmuxBackend, name: str) -> Callable[[], object]:
    def check() -> object:
        status = backend.status(name)
        return status if status is not None and status.state is State.EXITED else None

    return check


def test_backend_satisfies_the_protocol(backend: TmuxBackend) -> None:
    checked: Backend = backend
    assert checked.name == "tmux"


def test_lifecycle(backend: TmuxBackend, unique_name: Names, tmp_path: Path) -> None:
    name = unique_name("life")
    bot = script(tmp_path, "bot.py", """
        import itertools, time
        for n in itertools.count():
            print(f"tick {n}", flush=True)
            time.sleep(0.05)
    """)
    started = backend.start(spec(name, PY, str(bot)))
    assert started.state is State.RUNNING
    assert started.name == name and started.backend == "tmux" and started.managed
    assert started.defined is False and started.socket is None
    assert started.created_at is not None and started.created_at.endswith("Z")
    assert started.command == f"{PY} {bot}"
    pid = started.pid
    assert pid is not None
    retry_until(lambda: cmdline(pid) == [PY, str(bot)])  # once `env` has exec'd it

    status = backend.status(name)
    assert status == started
    assert [s for s in backend.list() if s.name == name] == [started]

    retry_until(lambda: len(backend.logs(name)) >= 3)
    assert all(line.startswith("tick ") for line in backend.logs(name))

    stopped = backend.stop(name)
    assert stopped.state is State.EXITED and stopped.pid is None
    assert not alive(started.pid)
    assert backend.status(name) is None
    assert name not in [s.name for s in backend.list()]
    with pytest.raises(SessionNotRunningError, match=f"session '{name}' is not running"):
        backend.stop(name)


def test_one_word_command_runs_without_a_shell(backend: TmuxBackend, unique_name: Names) -> None:
    name = unique_name("oneword")
    started = backend.start(spec(name, "cat"))  # waits on the pane's terminal forever
    pid = started.pid
    assert pid is not None
    # `env` execs in place: the same pid soon runs cat itself, no shell in between
    retry_until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == "cat")
    assert cmdline(pid) == ["cat"]
    backend.stop(name, force=True)


def test_already_running_is_a_clear_error(backend: TmuxBackend, unique_name: Names) -> None:
    name = unique_name("twice")
    first = backend.start(spec(name, "sleep", "60"))
    with pytest.raises(SessionAlreadyRunningError) as err:
        backend.start(spec(name, "sleep", "61"))
    assert str(err.value) == f"session '{name}' is already running (tmux)"
    assert backend.status(name) == first  # untouched
    backend.stop(name, force=True)


def test_exact_names_never_touch_a_longer_name(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    short, longer = unique_name("astro"), unique_name("astro-dev")
    dev = backend.start(spec(longer, "sleep", "60"))

    assert backend.status(short) is None
    assert [s.name for s in backend.list()] == [longer]
    with pytest.raises(SessionNotRunningError):
        backend.stop(short)
    with pytest.raises(SessionNotRunningError):
        backend.logs(short)
    with pytest.raises(SessionNotRunningError):
        backend.attach(short)

    astro = backend.start(spec(short, "sleep", "61"))
    assert astro.pid != dev.pid
    backend.stop(short)
    assert backend.status(longer) == dev and dev.pid is not None and alive(dev.pid)
    backend.stop(longer, force=True)


def test_graceful_stop_lets_a_sigint_handler_finish(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("trap")
    marker = tmp_path / "cleaned"
    ready = tmp_path / "ready"
    bot = script(tmp_path, "trap.py", f"""
        import signal, sys, time
        def clean_up(signum, frame):
            time.sleep(0.5)  # a slow clean-up must not be cut short
            open({str(marker)!r}, "w").write("done")
            print("cleaned up", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGINT, clean_up)
        open({str(ready)!r}, "w").close()
        while True:
            time.sleep(1)
    """)
    backend.start(spec(name, PY, str(bot)))
    retry_until(ready.exists)

    began = time.monotonic()
    stopped = backend.stop(name, timeout=60)
    took = time.monotonic() - began

    assert marker.read_text() == "done"
    assert stopped.state is State.EXITED and stopped.exit_code == 0
    # far below the 60 s timeout: stop returned when the process was gone (margin for slow CI)
    assert took < 30, "stop must return as soon as the process is gone"
    assert backend.status(name) is None
    # The terminal echoes the C-c as "^C" (ECHOCTL), like on screen: it marks the stop.
    assert backend.logs(name)[-1] == "^Ccleaned up"


def test_stop_returns_as_soon_as_the_process_is_gone(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("quick")
    backend.start(spec(name, "sleep", "60"))
    began = time.monotonic()
    stopped = backend.stop(name, timeout=60)
    assert time.monotonic() - began < 30  # did not wait for the timeout
    assert stopped.exit_code == 130  # died of SIGINT: 128 + 2


def test_stop_kills_what_ignores_sigint_and_sighup(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("stubborn")
    ready = tmp_path / "ready"
    bot = script(tmp_path, "stubborn.py", f"""
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        open({str(ready)!r}, "w").close()
        while True:
            time.sleep(1)
    """)
    pid = backend.start(spec(name, PY, str(bot))).pid
    assert pid is not None
    retry_until(ready.exists)
    began = time.monotonic()
    stopped = backend.stop(name, timeout=0.5)
    assert 0.5 <= time.monotonic() - began < 30  # waited the timeout, then killed
    assert stopped.exit_code == 137  # SIGKILL after the timeout
    retry_until(lambda: not alive(pid))
    assert backend.status(name) is None


def test_force_stop_kills_at_once(backend: TmuxBackend, unique_name: Names, tmp_path: Path) -> None:
    name = unique_name("force")
    ready = tmp_path / "ready"
    bot = script(tmp_path, "slow.py", f"""
        import signal, time
        signal.signal(signal.SIGINT, lambda *a: time.sleep(30))
        open({str(ready)!r}, "w").close()
        time.sleep(60)
    """)
    pid = backend.start(spec(name, PY, str(bot))).pid
    assert pid is not None
    retry_until(ready.exists)
    began = time.monotonic()
    stopped = backend.stop(name, force=True, timeout=60)
    assert time.monotonic() - began < 30  # a graceful stop would wait the 60 s
    assert stopped.state is State.EXITED and stopped.exit_code == 137
    retry_until(lambda: not alive(pid))


def test_exit_code_is_kept_and_a_later_start_replaces_the_session(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("three")
    backend.start(spec(name, "sh", "-c", "echo first run; echo last words; exit 3"))
    status = retry_until(exited(backend, name))
    assert status.exit_code == 3 and status.pid is None and status.managed
    assert [s for s in backend.list() if s.name == name] == [status]
    retry_until(lambda: backend.logs(name) == ["first run", "last words"])
    assert backend.logs(name, lines=1) == ["last words"]

    again = backend.start(spec(name, "sh", "-c", "echo second run; exec sleep 60"))
    assert again.state is State.RUNNING and again.exit_code is None
    retry_until(lambda: backend.logs(name) == ["second run"])  # the log starts afresh
    backend.stop(name)


def test_a_command_exiting_at_once_keeps_status_and_output(
    backend: TmuxBackend, unique_name: Names
) -> None:
    # remain-on-exit and pipe-pane are set in the same tmux call as new-session: no race.
    names = [unique_name(f"fast{i}") for i in range(5)]
    for i, name in enumerate(names):
        backend.start(spec(name, "sh", "-c", f"echo gone {i}; exit {10 + i}"))
    for i, name in enumerate(names):
        assert retry_until(exited(backend, name)).exit_code == 10 + i
        retry_until(lambda name=name, i=i: backend.logs(name) == [f"gone {i}"])


def test_stop_of_an_exited_session_cleans_it_up(backend: TmuxBackend, unique_name: Names) -> None:
    name = unique_name("cleanup")
    backend.start(spec(name, "sh", "-c", "echo bye; exit 4"))
    retry_until(exited(backend, name))
    stopped = backend.stop(name)
    assert stopped.state is State.EXITED and stopped.exit_code == 4
    assert backend.status(name) is None
    retry_until(lambda: backend.logs(name) == ["bye"])  # kept after stop


def test_logs_lines_while_running_after_exit_and_after_stop(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("lines")
    go = tmp_path / "go"
    bot = script(tmp_path, "lines.py", f"""
        import os, time
        for n in range(1, 31):
            print(f"line {{n}}", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        print("line 31", flush=True)
    """)
    backend.start(spec(name, PY, str(bot)))
    retry_until(lambda: backend.logs(name, lines=1) == ["line 30"])
    assert backend.logs(name, lines=5) == [f"line {n}" for n in range(26, 31)]
    assert backend.logs(name, lines=0) == []
    assert backend.logs(name, lines=100) == [f"line {n}" for n in range(1, 31)]

    go.touch()
    retry_until(exited(backend, name))
    retry_until(lambda: backend.logs(name, lines=2) == ["line 30", "line 31"])

    backend.stop(name)
    assert backend.logs(name, lines=3) == ["line 29", "line 30", "line 31"]
    assert len(backend.logs(name)) == 31  # no blank screen rows


def test_the_log_of_a_chatty_session_stays_bounded(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSTLIB_LOG_MAX_BYTES", "8192")
    name = unique_name("chatty")
    bot = script(tmp_path, "chatty.py", """
        for n in range(5000):
            print(f"line {n:05} " + "x" * 40)
    """)
    backend.start(spec(name, PY, str(bot)))
    retry_until(exited(backend, name), timeout=30)
    backend.stop(name)  # returns once the copier has written everything
    log = backend.log_path(name)
    sizes = [p.stat().st_size for p in (log, log.with_name(log.name + ".1"))]
    assert all(0 < size <= 8192 for size in sizes), sizes
    assert backend.logs(name, lines=2) == [f"line {n:05} {'x' * 40}" for n in (4998, 4999)]
    kept = backend.logs(name)[1:]  # the first may be the end of an older line
    assert [int(line.split()[1]) for line in kept] == list(range(5000 - len(kept), 5000))


def test_custom_socket_is_a_separate_server(unique_name: Names, isolated_env: Path) -> None:
    name = unique_name("sock")
    default, other = TmuxBackend(), TmuxBackend(socket="kt-other")
    started = other.start(spec(name, "sh", "-c", "echo on other; exec sleep 60"))
    assert started.socket == "kt-other"
    assert default.status(name) is None and default.list() == []
    assert [s.name for s in other.list()] == [name]
    assert raw_tmux("has-session", "-t", f"={name}", socket="kt-other").returncode == 0
    assert Path(socket_path("kt-other")).is_socket()
    assert str(isolated_env) in socket_path("kt-other")
    retry_until(lambda: other.logs(name) == ["on other"])
    with pytest.raises(SessionNotRunningError):
        default.logs(name)
    other.stop(name)


def test_env_working_dir_and_odd_arguments_reach_the_process(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("env")
    workdir = tmp_path / "work#dir"
    workdir.mkdir()
    out = tmp_path / "seen.json"
    bot = script(tmp_path, "env.py", f"""
        import json, os, sys
        json.dump({{"cwd": os.getcwd(), "mode": os.environ.get("BOT_MODE"),
                   "odd": os.environ.get("ODD"), "argv": sys.argv[1:]}},
                  open({str(out)!r}, "w"))
    """)
    args = ("ends with;", "#{session_name}", "{", "-x")
    env = {"BOT_MODE": "dev", "ODD": "x; y;"}
    backend.start(spec(name, PY, str(bot), *args, working_dir=str(workdir), env=env))
    retry_until(out.exists)
    seen = retry_until(lambda: out.read_text() and json.loads(out.read_text()))
    assert seen == {"cwd": str(workdir), "mode": "dev", "odd": "x; y;", "argv": list(args)}
    retry_until(exited(backend, name))
    backend.stop(name)


def test_a_missing_program_is_refused_before_anything_starts(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("nocmd")
    with pytest.raises(ValidationError) as err:
        backend.start(spec(name, "no-such-cmd-xyz", "--flag"))
    assert "'no-such-cmd-xyz' not found in PATH" in str(err.value)
    assert name in str(err.value)
    assert backend.status(name) is None
    with pytest.raises(ValidationError, match="not an executable file"):
        backend.start(spec(name, "./missing.sh"))


def test_a_program_failing_at_exec_time_exits_with_the_reason_in_logs(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("badexec")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/no/such/interpreter\n")
    bad.chmod(0o755)
    backend.start(spec(name, "./bad.sh", "--flag", working_dir=str(tmp_path)))
    status = retry_until(exited(backend, name))
    assert status.exit_code == 127
    logs = retry_until(lambda: backend.logs(name))
    assert any("./bad.sh" in line and "No such file or directory" in line for line in logs), logs
    backend.stop(name)


def test_list_is_one_call_and_includes_sessions_made_by_hand(
    backend: TmuxBackend, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = [unique_name(f"ours{i}") for i in range(3)]
    for name in ours:
        backend.start(spec(name, "sleep", "60"))
    hand = unique_name("byhand")
    made = raw_tmux("new-session", "-d", "-s", hand, "sleep 120")
    assert made.returncode == 0, made.stderr
    hand_pid = int(raw_tmux("list-panes", "-t", f"={hand}:", "-F", "#{pane_pid}").stdout)

    calls: list[tuple[str, ...]] = []
    real_run = Runner.run

    def counting(self: Runner, *args: str, **kwargs: object) -> object:
        calls.append(args)
        return real_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Runner, "run", counting)
    listed = {s.name: s for s in backend.list()}
    assert len(calls) == 1

    assert set(listed) == {*ours, hand}
    assert all(listed[n].managed and listed[n].state is State.RUNNING for n in ours)
    assert listed[hand].managed is False and listed[hand].pid == hand_pid
    assert listed[hand].state is State.RUNNING and listed[hand].command == "sleep 120"


def test_a_window_opened_later_does_not_change_the_status(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("windows")
    started = backend.start(spec(name, "sleep", "60"))
    assert raw_tmux("new-window", "-t", f"={name}:", "sleep 90").returncode == 0
    assert backend.status(name) == started  # still the command's pane, not the new window
    backend.stop(name)
    assert started.pid is not None and not alive(started.pid)


def test_logs_of_a_session_made_by_hand_come_from_the_screen(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("handlogs")
    made = raw_tmux("new-session", "-d", "-s", name, "echo one; echo two; exec sleep 60")
    assert made.returncode == 0, made.stderr
    retry_until(lambda: backend.logs(name) == ["one", "two"])
    assert backend.logs(name, lines=1) == ["two"]
    assert backend.stop(name, force=True).managed is False


def test_a_missing_tmux_binary_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tmux anywhere
    with pytest.raises(BackendNotFoundError, match="apt-get install tmux"):
        TmuxBackend().list()
    with pytest.raises(BackendNotFoundError, match="'/opt/none/tmux' not found"):
        TmuxBackend(binary="/opt/none/tmux").status("x")


def test_attach_inside_tmux_switches_client(
    backend: TmuxBackend, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name("switch")
    backend.start(spec(name, "sleep", "60"))
    seen: list[list[str]] = []

    def fake_exec(file: str, argv: list[str]) -> None:
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvp", fake_exec)
    monkeypatch.setenv("TMUX", f"{socket_path(None)},1,0")
    with pytest.raises(SystemExit):
        backend.attach(name)
    assert seen == [["tmux", "switch-client", "-t", f"={name}"]]

    monkeypatch.delenv("TMUX")
    with pytest.raises(SystemExit):
        backend.attach(name)
    assert seen[-1] == ["tmux", "attach-session", "-t", f"={name}"]
    backend.stop(name)


def test_attach_from_a_terminal_attaches_and_detaches(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("attach")
    backend.start(spec(name, "sleep", "60"))
    code = (
        "from kstlib_tasks.backends.tmux import TmuxBackend; "
        f"TmuxBackend().attach({name!r})"
    )
    detached: list[bool] = []

    def detach_once_attached(_seen: str) -> None:
        if detached:
            return None
        clients = raw_tmux("list-clients", "-t", f"={name}", "-F", "#{client_session}")
        if clients.stdout.split() == [name]:
            detached.append(raw_tmux("detach-client", "-s", f"={name}").returncode == 0)
        return None

    # a terminal, like a user's shell; killed (and the test failed) if it never returns
    exit_code, out = run_in_terminal([PY, "-c", code], Path.cwd(), typing=detach_once_attached,
                                     timeout=30)
    assert detached == [True]
    assert exit_code == 0 and f"[detached (from session {name})]" in out, out
    assert backend.status(name) is not None  # detaching leaves the session running
    backend.stop(name)
