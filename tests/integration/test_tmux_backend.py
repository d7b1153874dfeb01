"""What only the tmux backend does, against a real tmux server (private per test through
``TMUX_TMPDIR``). The behaviour every backend shares is in ``tests/contract``.

Every wait is on a condition (``retry_until``), never a fixed sleep; processes that must be
running (or gone) are checked through /proc, not trusted from tmux alone.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kstlib_tasks import logstore
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.backends.tmux.backend import TmuxBackend
from kstlib_tasks.backends.tmux.panes import PaneInfo, socket_path
from kstlib_tasks.engine.launch import prepare
from kstlib_tasks.errors import (
    BackendNotFoundError,
    KstlibError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
    ValidationError,
)
from kstlib_tasks.models import SessionSpec, SessionStatus, State
from kstlib_tasks.runner import Runner
from tests.helpers import retry_until, run_in_terminal

pytestmark = [pytest.mark.tmux, pytest.mark.usefixtures("tmux_available")]

Names = Callable[[str], str]
PY = sys.executable


@pytest.fixture
def backend() -> TmuxBackend:
    return TmuxBackend()


def spec(name: str, *command: str, socket: str | None = None, **changes: object) -> SessionSpec:
    return SessionSpec(name, "tmux", command, options=TmuxOptions(socket_name=socket),
                       **changes)  # type: ignore[arg-type]


def start(backend: TmuxBackend, the_spec: SessionSpec) -> SessionStatus:
    """As the engine starts a session: through a Launch (the caller's env included)."""
    return backend.start(prepare(the_spec, {}))


def script(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return path


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting for tmux to reap it counts as gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def group(pgid: int) -> dict[int, list[str]]:
    """Live (not zombie) members of process group ``pgid``: pid -> argv."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            argv = cmdline(int(entry))
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            found[int(entry)] = argv
    return found


def raw_tmux(*args: str, socket: str | None = None) -> subprocess.CompletedProcess[str]:
    base = ["tmux", *(["-L", socket] if socket else [])]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)


def exited(backend: TmuxBackend, name: str) -> Callable[[], object]:
    def check() -> object:
        status = backend.status(name)
        return status if status is not None and status.state is State.EXITED else None

    return check


# --------------------------------------------------------------------------- how tmux runs it


def test_one_word_command_runs_without_a_shell(backend: TmuxBackend, unique_name: Names) -> None:
    name = unique_name("oneword")
    started = start(backend, spec(name, "cat"))  # waits on the pane's terminal forever
    pid = started.pid
    assert pid is not None
    # `env` and `sh` exec in place: the same pid soon runs cat itself, no shell in between.
    # The kernel renames the process before it fills the new argv in, so wait for the argv.
    retry_until(lambda: cmdline(pid) == ["cat"])
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "cat"
    backend.stop(name, force=True)


def test_semicolons_and_hashes_in_arguments_reach_the_process(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    """tmux reads a trailing ``;`` as a command separator and format-expands ``-c``."""
    name = unique_name("odd")
    workdir = tmp_path / "work#dir;"
    workdir.mkdir()
    out = tmp_path / "seen.json"
    bot = script(tmp_path, "odd.py", f"""
        import json, os, sys
        json.dump({{"cwd": os.getcwd(), "odd": os.environ.get("ODD"), "argv": sys.argv[1:]}},
                  open({str(out)!r}, "w"))
    """)
    args = ("ends with;", ";", "#{session_name}", "##", "{", "-x")
    start(backend, spec(name, PY, str(bot), *args, working_dir=str(workdir),
                        env={"ODD": "x; y;"}))
    retry_until(exited(backend, name))
    seen = json.loads(out.read_text())
    assert seen == {"cwd": str(workdir), "odd": "x; y;", "argv": list(args)}
    backend.stop(name)


def test_a_missing_program_is_refused_before_anything_starts(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("nocmd")
    with pytest.raises(ValidationError) as err:
        start(backend, spec(name, "no-such-cmd-xyz", "--flag"))
    assert "'no-such-cmd-xyz' not found in PATH" in str(err.value)
    assert name in str(err.value)
    assert backend.status(name) is None
    with pytest.raises(ValidationError, match="not an executable file"):
        start(backend, spec(name, "./missing.sh"))


def test_a_program_failing_at_exec_time_exits_with_the_reason_in_logs(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    name = unique_name("badexec")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/no/such/interpreter\n")
    bad.chmod(0o755)
    start(backend, spec(name, "./bad.sh", "--flag", working_dir=str(tmp_path)))
    status = retry_until(exited(backend, name))
    assert status.exit_code == 127  # type: ignore[attr-defined]
    logs = retry_until(lambda: backend.logs(name))
    assert any("./bad.sh" in line and "not found" in line for line in logs), logs
    backend.stop(name)


def test_custom_socket_is_a_separate_server(unique_name: Names, isolated_env: Path) -> None:
    name = unique_name("sock")
    default, other = TmuxBackend(), TmuxBackend("kt-other")
    started = start(other, spec(name, "sh", "-c", "echo on other; exec sleep 60",
                                socket="kt-other"))
    assert started.scope == "kt-other" and started.details["socket"] == "kt-other"
    assert default.status(name) is None and default.list() == []
    assert [s.name for s in other.list()] == [name]
    assert raw_tmux("has-session", "-t", f"={name}", socket="kt-other").returncode == 0
    assert Path(socket_path("kt-other")).is_socket()
    assert str(isolated_env) in socket_path("kt-other")
    retry_until(lambda: other.logs(name) == ["on other"])
    with pytest.raises(SessionNotRunningError):
        default.logs(name)
    other.stop(name)


def test_a_window_opened_later_does_not_change_the_status(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("windows")
    started = start(backend, spec(name, "sleep", "60"))
    assert raw_tmux("new-window", "-t", f"={name}:", "sleep 90").returncode == 0
    assert backend.status(name) == started  # still the command's pane, not the new window
    backend.stop(name)
    assert started.pid is not None and not alive(started.pid)


def test_the_log_of_a_chatty_session_stays_bounded(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSTLIB_LOG_MAX_BYTES", str(1024 * 1024))  # the floor
    name = unique_name("chatty")
    bot = script(tmp_path, "chatty.py", """
        for n in range(60000):
            print(f"line {n:05} " + "x" * 40)
    """)
    start(backend, spec(name, PY, str(bot)))
    retry_until(exited(backend, name), timeout=60)
    backend.stop(name)  # returns once the copier has written everything
    log = backend.log_path(name)
    sizes = [p.stat().st_size for p in (log, log.with_name(log.name + ".1"))]
    assert all(0 < size <= 1024 * 1024 for size in sizes), sizes
    assert backend.logs(name, lines=2) == [f"line {n:05} {'x' * 40}" for n in (59998, 59999)]
    kept = backend.logs(name)[1:]  # the first may be the end of an older line
    assert [int(line.split()[1]) for line in kept] == list(range(60000 - len(kept), 60000))


# --------------------------------------------------------------------------- stop, tmux's way


def test_stop_of_a_pane_left_in_copy_mode(backend: TmuxBackend, unique_name: Names) -> None:
    """A pane in copy mode swallows keys: the C-c must still reach the command."""
    name = unique_name("copymode")
    start(backend, spec(name, "sleep", "300"))
    assert raw_tmux("copy-mode", "-t", f"={name}:").returncode == 0
    in_mode = raw_tmux("display-message", "-p", "-t", f"={name}:", "#{pane_in_mode}")
    assert in_mode.stdout.strip() == "1"
    began = time.monotonic()
    stopped = backend.stop(name, timeout=60)
    assert time.monotonic() - began < 30  # not the timeout and a kill
    assert stopped.exit_code == 130  # died of the SIGINT (128 + 2), not of a SIGKILL
    assert backend.status(name) is None


def test_the_exit_code_of_a_zombie_tmux_did_not_reap(backend: TmuxBackend) -> None:
    """tmux 3.3a sometimes never records a dead pane's status; the zombie still has it."""
    pid = os.fork()
    if pid == 0:
        os._exit(5)
    try:
        retry_until(lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    == "Z")
        pane = PaneInfo(session="z", pane_id="%1", pid=pid, dead=True, exit_code=None,
                        in_mode=False, focus=True, managed=True, fingerprint="", created=None,
                        current_command="", command="")
        assert backend._complete(pane).exit_code == 5
        running = pane._replace(pid=os.getpid())
        assert backend._complete(running).exit_code is None  # not a zombie: unknown
    finally:
        os.waitpid(pid, 0)


# --------------------------------------------------------------------------- sessions made by hand


def test_list_is_one_call_and_includes_sessions_made_by_hand(
    backend: TmuxBackend, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = [unique_name(f"ours{i}") for i in range(3)]
    for name in ours:
        start(backend, spec(name, "sleep", "60"))
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


def test_logs_of_a_session_made_by_hand_come_from_the_screen(
    backend: TmuxBackend, unique_name: Names
) -> None:
    name = unique_name("handlogs")
    made = raw_tmux("new-session", "-d", "-s", name, "echo one; echo two; exec sleep 60")
    assert made.returncode == 0, made.stderr
    retry_until(lambda: backend.logs(name) == ["one", "two"])
    assert backend.logs(name, lines=1) == ["two"]
    assert backend.stop(name, force=True).managed is False


# --------------------------------------------------------------------------- attach, tmux binary


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
    start(backend, spec(name, "sleep", "60"))
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
    start(backend, spec(name, "sleep", "60"))
    code = (
        "from kstlib_tasks.backends.tmux.backend import TmuxBackend; "
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


# --------------------------------------------------------------------------- attacks and faults


def test_the_callers_environment_reaches_a_session_whatever_started_the_server(
    backend: TmuxBackend, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = unique_name("first"), unique_name("second")
    monkeypatch.setenv("KT_FOO1", "first")
    start(backend, spec(first, "sleep", "300"))  # this start also starts the server
    monkeypatch.delenv("KT_FOO1")
    monkeypatch.setenv("KT_FOO2", "second")
    # as if called from a pane of this very server (tmux then uses the server $TMUX names)
    monkeypatch.setenv("TMUX", f"{socket_path(None)},4242,0")
    monkeypatch.setenv("TMUX_PANE", "%4242")
    start(backend, spec(second, "env"))
    retry_until(exited(backend, second))
    lines = retry_until(lambda: backend.logs(second))
    assert "KT_FOO2=second" in lines, lines
    assert not [line for line in lines if line.startswith("KT_FOO1=")], lines
    assert not [line for line in lines if "4242" in line], lines  # TMUX, TMUX_PANE
    backend.stop(second)
    backend.stop(first, force=True)


def test_graceful_stop_leaves_no_process_of_the_group(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    """A script's background child ignores SIGINT (``cmd &`` in a non-interactive shell) and
    SIGHUP (``nohup``): the C-c and tmux's kill-session alone would leave it running."""
    name = unique_name("children")
    ready, marker = tmp_path / "ready", tmp_path / "marker"
    handler = script(tmp_path, "handler.py", f"""
        import pathlib, signal, sys, time
        def bye(signum, frame):
            pathlib.Path({str(marker)!r}).write_text("cleaned")
            sys.exit(0)
        signal.signal(signal.SIGINT, bye)
        pathlib.Path({str(ready)!r}).write_text("yes")
        while True:
            time.sleep(0.1)
    """)
    started = start(backend, spec(name, "sh", "-c", f"nohup sleep 1002 & {PY} {handler}",
                                  working_dir=str(tmp_path)))  # nohup.out goes there
    pgid = started.pid
    assert pgid is not None
    retry_until(ready.exists)
    members = retry_until(lambda: [argv for argv in group(pgid).values()
                                   if argv == ["sleep", "1002"]])
    assert members, "the background child is not in the session's process group"

    stopped = backend.stop(name, timeout=30)
    assert marker.read_text() == "cleaned"
    assert stopped.state is State.EXITED
    assert group(pgid) == {}, "a process of the session outlived its stop"
    assert backend.status(name) is None


def test_concurrent_starts_of_one_name_leave_the_winner_intact(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two starts that both see no session: one wins, the other is "already running", and the
    loser never touches the winner's files: its log (emptied for a new run), its state and its
    recorded overrides. One start is slowed as it prepares its files, so both surely overlap."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kstlib_tasks.backends.tmux import backend as module

    mine = threading.local()
    real_prepare = module.logstore.prepare

    def slow_for_b(path: Path) -> None:
        if getattr(mine, "who", None) == "b":
            time.sleep(0.3)
        real_prepare(path)

    monkeypatch.setattr(module.logstore, "prepare", slow_for_b)
    name = unique_name("race")
    body = 'echo "run-$WHO"; exec sleep 60'

    def go(who: str) -> str:
        mine.who = who
        try:
            backend.start(prepare(spec(name, "sh", "-c", body, env={"WHO": who}), {}))
        except SessionAlreadyRunningError:
            return "lost"
        return who

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(go, ["b", "a"]))
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1, outcomes
    time.sleep(0.5)  # what the winner printed has long reached its log
    assert backend.logs(name) == [f"run-{winners[0]}"], "the loser emptied the winner's log"
    status = backend.status(name)
    assert status is not None and status.state is State.RUNNING and status.pid
    backend.stop(name)


def test_a_start_during_a_stop_of_the_same_name_keeps_its_files(
    backend: TmuxBackend, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start issued once a stop has removed the session, while that stop still finishes
    (waits for the log to drain, then removes the state files): the stop ends first, so the
    new run's recorded overrides and env survive. The stop is slowed after its kill, so the
    start surely lands in that window."""
    import threading

    from kstlib_tasks.backends.tmux import backend as module

    real_drained = module.wait_drained
    stopping = threading.Event()

    def slow_drain(log: Path, *args: object) -> None:
        if stopping.is_set():
            time.sleep(0.6)
        real_drained(log, *args)

    monkeypatch.setattr(module, "wait_drained", slow_drain)
    name = unique_name("stopstart")
    start(backend, spec(name, "sleep", "60"))
    overrides = {"env": {"WHO": "b"}}

    def stop() -> None:
        stopping.set()
        backend.stop(name, force=True)

    stopper = threading.Thread(target=stop)
    stopper.start()
    retry_until(lambda: stopping.is_set() and backend.status(name) is None, interval=0.01)
    stopping.clear()
    backend.start(prepare(spec(name, "sh", "-c", 'echo "run-$WHO"; exec sleep 60',
                               env={"WHO": "b"}), overrides))
    stopper.join()
    status = backend.status(name)
    assert status is not None and status.state is State.RUNNING
    assert status.recorded is not None and status.recorded["ov"] == overrides, \
        "the stop removed the new run's state files"
    retry_until(lambda: backend.logs(name) == ["run-b"])
    backend.stop(name)


def test_stop_after_the_command_ended_still_ends_what_it_left(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path
) -> None:
    """The pane is dead when the stop begins (its command exited); a child it left in its
    process group is still ended by the stop."""
    name = unique_name("leftover")
    started = start(backend, spec(name, "sh", "-c", "nohup sleep 1003 & sleep 0.5; exit 0",
                                  working_dir=str(tmp_path)))
    pgid = started.pid
    assert pgid is not None
    retry_until(lambda: (s := backend.status(name)) is not None and s.state is State.EXITED)
    assert retry_until(lambda: [a for a in group(pgid).values() if a == ["sleep", "1003"]])
    backend.stop(name)
    assert group(pgid) == {}, "the leftover of an ended command outlived the stop"


def test_a_reused_group_id_is_never_signalled() -> None:
    """A dead pane's pid may since lead an unrelated group: a live process of exactly that
    pid is someone else's, and end_group leaves its group alone."""
    from kstlib_tasks.backends.tmux.backend import end_group

    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        end_group(other.pid, deadline=None, leader_gone=True)
        assert other.poll() is None, "an unrelated group was signalled"
        end_group(other.pid, deadline=None)  # seen alive at the stop: its own group, ended
        assert other.wait(timeout=5) == -9
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_an_unusable_working_dir_is_refused_before_anything_starts(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path, kind: str
) -> None:
    name = unique_name("workdir")
    folder = tmp_path / "not-there"
    if kind == "a file":
        folder.write_text("I am a file")
    with pytest.raises(ValidationError, match="working_dir") as err:
        start(backend, spec(name, "sh", "-c", "echo ran > ran.txt; exec sleep 60",
                            working_dir=str(folder)))
    assert str(folder) in str(err.value)
    assert backend.status(name) is None and backend.list() == []
    assert not logstore.exists(backend.log_path(name))


def test_state_files_are_private(backend: TmuxBackend, unique_name: Names) -> None:
    name = unique_name("private")
    start(backend, spec(name, "sh", "-c", "echo secret output; exec sleep 300",
                        env={"KT_TOKEN": "s3cret"}))
    log = backend.log_path(name)
    env_file = log.with_name(f"{log.stem}.env")  # the environment, secrets included
    retry_until(lambda: backend.logs(name) == ["secret output"])
    assert "s3cret" in env_file.read_text()
    for path in (log, env_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    folder = log.parent
    while folder != logstore.state_dir().parent:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent
    backend.stop(name, force=True)
    assert not env_file.exists()  # not left behind


@pytest.mark.parametrize("planted", ["NAME.log", "NAME.env"])
def test_a_planted_symlink_among_the_state_files_is_never_written_through(
    backend: TmuxBackend, unique_name: Names, tmp_path: Path, planted: str
) -> None:
    name = unique_name("planted")
    log = backend.log_path(name)
    logstore.private_dir(log.parent)
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    link = log if planted == "NAME.log" else log.with_name(f"{log.stem}.env")
    link.symlink_to(target)
    try:
        start(backend, spec(name, "sh", "-c", "echo through the link; exec sleep 300"))
    except KstlibError as refused:  # refused: one line for the user, nothing started
        assert str(link) in str(refused) or link.name in str(refused), refused
        assert backend.status(name) is None
    else:  # or the link is replaced by a private file of our own
        retry_until(lambda: backend.logs(name) == ["through the link"])
        assert not link.is_symlink()
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        backend.stop(name, force=True)
    assert target.read_text() == "precious\n"
