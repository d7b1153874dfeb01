"""shell/capture.sh and shell/supervise.sh driven by a REAL tmux, with raw tmux commands only.

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
CAPTURE = REPO / "shell" / "capture.sh"
SUPERVISE = REPO / "shell" / "supervise.sh"
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
    return "exec sh " + shlex.join([str(CAPTURE), str(log), str(max_bytes), str(marker)])


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
    subprocess.run(["sh", str(CAPTURE), str(log), str(limit), str(marker)], input=data,
                   check=True, timeout=60)
    assert log.with_name("bin.log.1").stat().st_size == limit
    assert log.stat().st_size <= limit
    kept = joined(log)
    assert kept == data[-len(kept):]
    assert len(kept) == limit + len(data) % limit
    assert not marker.exists()


def test_capture_writes_a_partial_line_at_once_and_at_the_end(tmux: Tmux, logdir: Path) -> None:
    live = logdir / "live.log"
    start_captured(tmux, "live", live, 1024 * 1024, "sh", "-c", "printf 'no newline'; exec sleep 60")
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
