"""capture.sh and supervise.sh (backends/tmux/) driven by a REAL tmux, raw tmux commands only.

No kstlib code: these check the two POSIX sh helpers exactly as tmux runs them (pipe-pane runs its
argument through ``sh -c``, new-session runs the supervisor as the pane's program). Every test
has its own server (``TMUX_TMPDIR`` from the autouse ``isolated_env`` fixture) and kills it at
the end; every wait is on a condition (``retry_until``), never a fixed sleep.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import retry_until

pytestmark = [pytest.mark.tmux, pytest.mark.usefixtures("tmux_available")]

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURE = REPO / "kstlib_tasks" / "backends" / "tmux" / "capture.sh"
SUPERVISE = REPO / "kstlib_tasks" / "backends" / "tmux" / "supervise.sh"
PY = sys.executable


class Tmux:
    """Raw tmux calls on the private server of this test (TMUX_TMPDIR is set per test)."""

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {shlex.join(args)}: {done.stderr.strip()}")
        return done

    def fmt(self, target: str, text: str) -> str | None:
        """``display-message -p`` of ``text`` for an exact pane target, None once it is gone."""
        done = self("display-message", "-p", "-t", target, text, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def server_pid(self) -> int:
        return int(self("display-message", "-p", "#{pid}").stdout)

    def kill_server(self) -> None:
        self("kill-server", check=False)


@pytest.fixture
def tmux(isolated_env: Path) -> Iterator[Tmux]:
    server = Tmux()
    yield server
    server.kill_server()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """A 0700 folder, as kstlib's state folder is."""
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o700)
    return folder


def pipe_command(log: Path, max_bytes: int, marker: Path) -> str:
    """What the integration passes to pipe-pane (which runs it with ``sh -c``)."""
    return "exec /bin/sh " + shlex.join([str(CAPTURE), str(log), str(max_bytes), str(marker)])


def start_captured(tmux: Tmux, name: str, log: Path, max_bytes: int, *command: str,
                   remain: bool = False) -> Path:
    """new-session + pipe-pane in ONE client message, as kstlib does: no output is missed."""
    marker = log.with_name(log.name + ".pipe-test")
    marker.touch()
    args = ["new-session", "-d", "-s", name, "-x", "80", "-y", "24", "--", *command]
    if remain:
        args += [";", "set-option", "-p", "-t", f"={name}:", "remain-on-exit", "on"]
    args += [";", "pipe-pane", "-t", f"={name}:", pipe_command(log, max_bytes, marker)]
    tmux(*args)
    return marker


def pane_output(data: bytes) -> bytes:
    """What a program's output looks like through the pane's terminal (onlcr: \\n -> \\r\\n)."""
    return data.replace(b"\n", b"\r\n")


def joined(log: Path) -> bytes:
    """LOG.1 + LOG, as the reader concatenates them."""
    rotated = log.with_name(log.name + ".1")
    return (rotated.read_bytes() if rotated.exists() else b"") + log.read_bytes()


def contents(path: Path) -> bytes | None:
    """The bytes of ``path``, None while it does not exist yet."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def capture_processes() -> list[int]:
    """Pids of the capture.sh copiers still running (any server: the tests run one at a time)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(CAPTURE).encode() in argv:
            pids.append(int(entry.name))
    return pids


# ---------------------------------------------------------------------------------------------
# capture.sh


def test_capture_copies_a_pane_exactly_and_removes_the_marker_last(
    tmux: Tmux, logdir: Path
) -> None:
    log = logdir / "seq.log"
    expected = pane_output(subprocess.run(["seq", "1", "2000000"], capture_output=True,
                                          check=True).stdout)
    marker = start_captured(tmux, "seq", log, 64 * 1024 * 1024, "seq", "1", "2000000")

    # the marker goes only once everything is written: the log is complete at that very moment
    retry_until(lambda: not marker.exists(), timeout=60, interval=0.005)
    size_when_marker_went = log.stat().st_size
    assert size_when_marker_went == len(expected)
    assert log.read_bytes() == expected
    assert not log.with_name("seq.log.1").exists()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_capture_rotates_within_the_bound(tmux: Tmux, logdir: Path) -> None:
    log = logdir / "rot.log"
    limit = 65536
    expected = pane_output(subprocess.run(["seq", "1", "200000"], capture_output=True,
                                          check=True).stdout)
    marker = start_captured(tmux, "rot", log, limit, "seq", "1", "200000")
    retry_until(lambda: not marker.exists(), timeout=60)

    rotated = log.with_name("rot.log.1")
    assert rotated.stat().st_size == limit
    assert 0 < log.stat().st_size <= limit
    kept = joined(log)
    assert kept == expected[-len(kept):]
    assert stat.S_IMODE(rotated.stat().st_mode) == 0o600


def test_capture_keeps_any_bytes_and_never_exceeds_the_bound(logdir: Path) -> None:
    """Binary input straight into the script (a terminal would translate some bytes)."""
    log = logdir / "bin.log"
    marker = logdir / "bin.log.pipe-x"
    marker.touch()
    data = os.urandom(300_001) + b"\0\0no newline at the end"
    limit = 4096 * 3 + 1
    subprocess.run(["/bin/sh", str(CAPTURE), str(log), str(limit), str(marker)], input=data,
                   check=True, timeout=60)
    assert log.with_name("bin.log.1").stat().st_size == limit
    assert log.stat().st_size <= limit
    kept = joined(log)
    assert kept == data[-len(kept):]
    assert len(kept) == limit + len(data) % limit
    assert not marker.exists()


def test_capture_writes_a_partial_line_at_once_and_at_the_end(tmux: Tmux, logdir: Path) -> None:
    live = logdir / "live.log"
    start_captured(tmux, "live", live, 1024 * 1024,
                   "sh", "-c", "printf 'no newline'; exec sleep 60")
    # while the pane runs: nothing may wait in a buffer (a quiet program's last line must show)
    retry_until(lambda: contents(live) == b"no newline")

    last = logdir / "last.log"
    marker = start_captured(tmux, "last", last, 1024 * 1024, "printf", "%s", "end, no newline")
    retry_until(lambda: not marker.exists())
    assert last.read_bytes() == b"end, no newline"


def test_capture_refuses_a_symlink_and_tmux_stops_piping(tmux: Tmux, logdir: Path,
                                                         tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    log = logdir / "link.log"
    log.symlink_to(target)
    marker = start_captured(tmux, "link", log, 1024 * 1024,
                            "sh", "-c", "while :; do echo tick; sleep 0.05; done")
    retry_until(lambda: not marker.exists())
    assert not target.exists()
    assert (logdir / "link.log.error").read_text() == (
        f"log capture stopped: {log} is a symbolic link, refused\n")
    # the reader is gone: tmux's next write fails and it stops piping that pane by itself
    retry_until(lambda: tmux.fmt("=link:", "#{pane_pipe}") == "0")
    assert tmux.fmt("=link:", "#{pane_dead}") == "0"  # the program itself runs on
    assert capture_processes() == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only), unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_capture_on_a_full_disk_says_why_and_stops(tmux: Tmux, tiny_disk: Path) -> None:
    log = tiny_disk / "full.log"
    marker = start_captured(tmux, "full", log, 1024 * 1024,
                            "sh", "-c", "while :; do seq 1 2000; sleep 0.02; done")
    retry_until(lambda: not marker.exists(), timeout=30)
    assert (tiny_disk / "full.log.error").read_text() == (
        "log capture stopped: No space left on device\n")
    assert 0 < log.stat().st_size <= 64 * 1024
    retry_until(lambda: tmux.fmt("=full:", "#{pane_pipe}") == "0")
    assert tmux.fmt("=full:", "#{pane_dead}") == "0"
    assert capture_processes() == []


# ---------------------------------------------------------------------------------------------
# supervise.sh


def write_envfile(path: Path, env: dict[str, str]) -> Path:
    """ENVFILE as kstlib writes it: ``export NAME='value'``, ``'`` as ``'\\''``, mode 0600."""
    lines = [f"export {k}='" + v.replace("'", "'\\''") + "'\n" for k, v in env.items()]
    path.write_text("".join(lines))
    path.chmod(0o600)
    return path


class Supervised:
    """One supervised session: its files and the raw facts tmux and /proc give about it."""

    def __init__(self, tmux: Tmux, name: str, folder: Path) -> None:
        self.tmux, self.name, self.pane = tmux, name, f"={name}:"
        self.state = folder / f"{name}.state"
        self.stopfile = folder / f"{name}.stop"
        self.envfile = folder / f"{name}.env"

    def start(self, policy: str, max_restarts: int, *argv: str,
              env: dict[str, str] | None = None) -> Supervised:
        write_envfile(self.envfile, env if env is not None else {"PATH": os.environ["PATH"]})
        self.tmux(
            "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", "--",
            "/bin/sh", str(SUPERVISE), str(self.state), str(self.stopfile), policy,
            str(max_restarts), str(self.envfile), "--", *argv,
            ";", "set-option", "-p", "-t", self.pane, "remain-on-exit", "on",
        )
        return self

    def read_state(self) -> dict[str, str] | None:
        text = contents(self.state)
        if text is None:
            return None
        assert text.endswith(b"\n") and text.count(b"\n") == 1, text
        return dict(field.split("=", 1) for field in text.decode().split())

    def state_is(self, **expected: str) -> dict[str, str] | None:
        state = self.read_state()
        return state if state is not None and all(state.get(k) == v
                                                  for k, v in expected.items()) else None

    def dead_status(self) -> str | None:
        """The exit code the pane's process left, once the pane is dead: pane_dead_status.

        tmux 3.3a sometimes misses the SIGCHLD (pitfalls.md): the pane is dead without a status
        and the process stays a zombie of the server, whose wait status is in /proc/PID/stat
        (field 52), as kstlib reads it.
        """
        value = self.tmux.fmt(self.pane, "#{pane_dead} #{pane_pid} #{pane_dead_status}")
        if not value or not value.startswith("1 "):
            return None
        _, pid, *status = value.split()
        if status:
            return status[0]
        fields = (contents(Path(f"/proc/{pid}/stat")) or b")").rsplit(b")", 1)[1].split()
        if len(fields) < 50 or fields[0] != b"Z":
            return None
        return str(os.waitstatus_to_exitcode(int(fields[49])))

    def pane_pid(self) -> int:
        return int(self.tmux.fmt(self.pane, "#{pane_pid}") or 0)


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except FileNotFoundError:
        return []


def script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def counting(folder: Path, code: int) -> tuple[list[str], Path]:
    """A command that appends a monotonic timestamp per run to a file, then exits ``code``."""
    runs = folder / "runs"
    body = f"""
        import sys, time
        with open({str(runs)!r}, "a") as f:
            f.write(f"{{time.monotonic()}}\\n")
        sys.exit({code})
    """
    return [PY, script(folder, "count.py", body)], runs


def run_times(runs: Path) -> list[float]:
    return [float(x) for x in runs.read_text().split()]


def test_supervise_no_policy_makes_the_command_the_pane_process(tmux: Tmux, tmp_path: Path) -> None:
    sup = Supervised(tmux, "plain", tmp_path)
    argv = [PY, "-c", "import time; time.sleep(60)"]
    sup.start("no", 0, *argv)
    pid = sup.pane_pid()
    retry_until(lambda: cmdline(pid) == argv)  # the same process, once exec'd
    assert sup.read_state() == {"runs": "1", "restarts": "0", "exit": "", "pid": str(pid),
                                "phase": "running"}
    os.kill(pid, signal.SIGKILL)
    retry_until(lambda: not alive(pid))


def test_supervise_on_failure_restarts_are_bounded_counted_and_backed_off(
    tmux: Tmux, tmp_path: Path
) -> None:
    argv, runs = counting(tmp_path, 3)
    sup = Supervised(tmux, "fails", tmp_path).start("on-failure", 2, *argv)
    state = retry_until(lambda: sup.state_is(phase="gaveup"), timeout=30)
    assert state == {"runs": "3", "restarts": "2", "exit": "3", "pid": "", "phase": "gaveup"}
    assert retry_until(sup.dead_status) == "3"
    times = run_times(runs)
    assert len(times) == 3
    # 0.5 s then 1 s before the restarts (lower bounds only: a loaded machine may be slower)
    assert times[1] - times[0] >= 0.5
    assert times[2] - times[1] >= 1.0


def test_supervise_on_failure_leaves_a_clean_exit_alone(tmux: Tmux, tmp_path: Path) -> None:
    argv, runs = counting(tmp_path, 0)
    sup = Supervised(tmux, "clean", tmp_path).start("on-failure", 5, *argv)
    assert retry_until(sup.dead_status) == "0"
    assert sup.read_state() == {"runs": "1", "restarts": "0", "exit": "0", "pid": "",
                                "phase": "done"}
    assert len(run_times(runs)) == 1


def test_supervise_always_restarts_a_clean_exit(tmux: Tmux, tmp_path: Path) -> None:
    argv, runs = counting(tmp_path, 0)
    sup = Supervised(tmux, "again", tmp_path).start("always", 1, *argv)
    assert retry_until(sup.dead_status) == "0"
    assert sup.read_state() == {"runs": "2", "restarts": "1", "exit": "0", "pid": "",
                                "phase": "gaveup"}
    assert len(run_times(runs)) == 2


@pytest.mark.parametrize("stopfile", [True, False], ids=["stopfile-and-C-c", "C-c-alone"])
def test_supervise_stop_is_final_and_the_command_handles_its_sigint(
    tmux: Tmux, tmp_path: Path, stopfile: bool
) -> None:
    ready, cleaned = tmp_path / "ready", tmp_path / "cleaned"
    body = f"""
        import os, signal, sys, time
        def clean_up(signum, frame):
            time.sleep(0.5)  # a slow clean-up must not be cut short
            open({str(cleaned)!r}, "a").write("done\\n")
            sys.exit(0)
        signal.signal(signal.SIGINT, clean_up)
        open({str(ready)!r}, "w").write(os.ttyname(0))
        while True:
            time.sleep(1)
    """
    argv = [PY, script(tmp_path, "trap.py", body)]
    # always + unlimited: only the stop may end it, a clean exit would otherwise restart it
    sup = Supervised(tmux, "stopme", tmp_path).start("always", 0, *argv)
    state = retry_until(lambda: ready.exists() and sup.state_is(phase="running"))
    pid = int(state["pid"])
    assert cmdline(pid) == argv and pid != sup.pane_pid()
    # the command reads the pane's own terminal (an attached user can type to it)
    assert ready.read_text() == tmux.fmt(sup.pane, "#{pane_tty}")

    if stopfile:
        sup.stopfile.touch()
    tmux("send-keys", "-t", sup.pane, "C-c")
    assert retry_until(sup.dead_status, timeout=30) == "0"
    assert cleaned.read_text() == "done\n"
    assert sup.read_state() == {"runs": "1", "restarts": "0", "exit": "0", "pid": "",
                                "phase": "done"}


def test_supervise_stopfile_alone_prevents_the_next_restart(tmux: Tmux, tmp_path: Path) -> None:
    go = tmp_path / "go"
    argv = [PY, "-c", f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)"]
    sup = Supervised(tmux, "nomore", tmp_path).start("always", 0, *argv)
    retry_until(lambda: sup.state_is(phase="running"))
    sup.stopfile.touch()
    go.touch()  # the command ends by itself: it must not come back
    assert retry_until(sup.dead_status) == "0"
    assert sup.state_is(runs="1", phase="done")


@pytest.mark.parametrize("policy", ["no", "on-failure"])
def test_supervise_environment_is_exactly_the_envfile(tmux: Tmux, tmp_path: Path,
                                                      policy: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "QUOTED": "it's \"quoted\", $HOME `x` \\ and\na newline",
        "EMPTY": "",
        "SPACES": "  a  b  ",
    }
    # /proc/PID/environ of the running command: what it was given, before any runtime
    # (Python, for one, adds LC_CTYPE to its own environment in the C locale)
    sup = Supervised(tmux, "env", tmp_path).start(policy, 0, "sleep", "60", env=env)
    pid = int(retry_until(lambda: sup.state_is(phase="running"))["pid"])
    retry_until(lambda: cmdline(pid) == ["sleep", "60"])
    given = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")[:-1]
    assert dict(item.decode().split("=", 1) for item in given) == env  # no TMUX, PWD, ...
    os.kill(pid, signal.SIGKILL)


def test_supervise_a_signal_reads_128_plus_n(tmux: Tmux, tmp_path: Path) -> None:
    argv = [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"]
    sup = Supervised(tmux, "killed", tmp_path).start("on-failure", 1, *argv)
    assert retry_until(sup.dead_status, timeout=30) == str(128 + signal.SIGTERM)
    assert sup.read_state() == {"runs": "2", "restarts": "1", "exit": "143", "pid": "",
                                "phase": "gaveup"}


def test_supervise_passes_sigterm_on_and_stops(tmux: Tmux, tmp_path: Path) -> None:
    argv = [PY, "-c", "import time; time.sleep(60)"]
    sup = Supervised(tmux, "term", tmp_path).start("always", 0, *argv)
    pid = int(retry_until(lambda: sup.state_is(phase="running"))["pid"])
    os.kill(sup.pane_pid(), signal.SIGTERM)  # the supervisor only, as `kill PANE_PID` does
    assert retry_until(sup.dead_status) == "143"
    assert not alive(pid)
    assert sup.state_is(runs="1", exit="143", phase="done")


def test_supervise_killed_pane_leaves_no_command_behind(tmux: Tmux, tmp_path: Path) -> None:
    argv = [PY, "-c", "import time; time.sleep(60)"]
    sup = Supervised(tmux, "gone", tmp_path).start("always", 0, *argv)
    pid = int(retry_until(lambda: sup.state_is(phase="running"))["pid"])
    tmux("new-session", "-d", "-s", "keep", "sleep", "60")  # the server stays up
    tmux("kill-session", "-t", "=gone")
    retry_until(lambda: not alive(pid))
    assert retry_until(lambda: sup.state_is(phase="done", exit="129"))
