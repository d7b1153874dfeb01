"""``logs --follow`` end to end through the INSTALLED ``kstlib`` and ``inv``: new lines of a tmux
session and of a container as they come, the end of the session ending the command (exit 0),
several sessions (or a group) prefixed with their names, Ctrl-C (SIGINT) exiting 130.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import KSTLIB, PYTHON_IMAGE, retry_until

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


class Following:
    """A running ``logs -f``: its stdout lines as they arrive, read by a thread."""

    def __init__(self, process: subprocess.Popen[str]):
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 60) -> str | None:
        line = self.lines.get(timeout=timeout)
        if line is not None:
            self.seen.append(line)
        return line

    def finish(self, timeout: float = 60) -> tuple[int, list[str], str]:
        """Exit code, every stdout line, stderr; the process is killed if it overstays."""
        try:  # stdout is the reader thread's alone; stderr is small (a few lines)
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=10)
        assert self.process.stderr is not None
        err = self.process.stderr.read()
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return self.process.returncode, self.seen, err


def follow(project: Project, front: str, names: list[str], *flags: str) -> Following:
    return Following(project.popen(front, "logs", names, "-f", *flags))


TICKS = """\
ops:
  container_runtime: {runtime}
  sessions:
    @one@:
      command: "@tool@ sleep 1 + ticks 8 0.4 + say bye"
      groups: [pair]
    @two@:
      command: "@tool@ sleep 2 + ticks 4 0.4 + say bye"
      groups: [pair]
    @forever@:
      command: "@tool@ ticks 100000 0.3"
    @box@:
      backend: container
      image: "{image}"
      command: "python3 -u /t/e2e_tool.py sleep 1 + ticks 8 0.4 + say bye"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
    @boxforever@:
      backend: container
      image: "{image}"
      command: "python3 -u /t/e2e_tool.py ticks 100000 0.3"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
"""


def ticks_config(project: Project, runtime: str = "podman") -> None:
    project.write(TICKS.format(runtime=runtime, image=PYTHON_IMAGE))


def test_follow_a_tmux_session_until_it_ends(project: Project, front: str,
                                            tmux_available: None) -> None:
    ticks_config(project)
    one = project.name("one")
    project.kstlib("ops", "start", one).ok()
    following = follow(project, front, [one])
    assert following.next_line() == "tick 0"
    # a line printed after the follow began, seen while both still run
    assert following.process.poll() is None and project.state(one) == "running"
    code, lines, err = following.finish()
    assert code == 0, err
    assert lines == [f"tick {i}" for i in range(8)] + ["bye"]
    assert project.state(one) == "exited"


def test_follow_of_a_session_that_ended_prints_what_was_kept_and_ends(
        project: Project, front: str, tmux_available: None) -> None:
    ticks_config(project)
    one = project.name("one")
    project.kstlib("ops", "start", one).ok()
    retry_until(lambda: project.state(one) == "exited", timeout=60)
    code, lines, err = follow(project, front, [one], "-n", "2").finish(timeout=30)
    assert (code, lines) == (0, ["tick 7", "bye"]), err


def test_follow_several_sessions_prefixed_with_their_names(project: Project, front: str,
                                                           tmux_available: None) -> None:
    """Both sessions, each line prefixed (names padded to one width), each session's lines in
    order; the command ends when the last one has ended. A group name follows its members."""
    ticks_config(project)
    one, two = project.name("one"), project.name("two")
    width = max(len(one), len(two))
    for target in ([one, two], ["pair"]):
        project.kstlib("ops", "start", one).ok()
        project.kstlib("ops", "start", two).ok()
        code, lines, err = follow(project, front, target).finish()
        assert code == 0, err
        assert [line.split(" | ", 1)[1] for line in lines
                if line.startswith(f"{one.ljust(width)} | ")] == (
            [f"tick {i}" for i in range(8)] + ["bye"])
        assert [line.split(" | ", 1)[1] for line in lines
                if line.startswith(f"{two.ljust(width)} | ")] == (
            [f"tick {i}" for i in range(4)] + ["bye"])
        assert len(lines) == 14, lines


def test_follow_of_several_goes_on_past_one_that_never_started(
        project: Project, front: str, tmux_available: None) -> None:
    """After a failed ``up`` some sessions never started: following them all still shows the
    others' output to the end, with a warning for the one that has none (exit 1)."""
    ticks_config(project)
    one, two = project.name("one"), project.name("two")
    project.kstlib("ops", "start", one).ok()
    code, lines, err = follow(project, front, [two, one]).finish()
    assert code == 1, err
    assert f"session '{two}' has no output yet (never started)" in err
    assert [line.split(" | ", 1)[1] for line in lines] == (
        [f"tick {i}" for i in range(8)] + ["bye"])


def test_ctrl_c_ends_follow_with_130(project: Project, front: str,
                                     tmux_available: None) -> None:
    ticks_config(project)
    forever = project.name("forever")
    project.kstlib("ops", "start", forever).ok()
    following = follow(project, front, [forever], "-n", "1")
    assert following.next_line().startswith("tick ")
    assert following.next_line().startswith("tick ")  # a new one: it follows
    following.process.send_signal(signal.SIGINT)
    begun = time.monotonic()
    code, _, err = following.finish(timeout=30)
    assert code == 130, err
    assert time.monotonic() - begun < 20
    assert "Traceback" not in err
    assert project.state(forever) == "running"  # only the follow ended
    project.kstlib("ops", "stop", forever, "-f").ok()


@pytest.mark.containers
def test_follow_a_container_until_it_ends(project: Project, runtime: str) -> None:
    ticks_config(project, runtime)
    box = project.name("box")
    for front in FRONTS:
        project.kstlib("ops", "start", box).ok()
        following = follow(project, front, [box])
        assert following.next_line() == "tick 0"
        assert following.process.poll() is None
        code, lines, err = following.finish()
        assert code == 0, err
        assert lines == [f"tick {i}" for i in range(8)] + ["bye"], (front, lines)
        assert project.state(box) == "exited"
        project.kstlib("ops", "stop", box).ok()


@pytest.mark.containers
def test_ctrl_c_ends_the_follow_of_a_container_with_130(project: Project, runtime: str) -> None:
    ticks_config(project, runtime)
    box = project.name("boxforever")
    project.kstlib("ops", "start", box).ok()
    for front in FRONTS:
        following = follow(project, front, [box], "-n", "1")
        assert following.next_line().startswith("tick ")
        assert following.next_line().startswith("tick ")
        following.process.send_signal(signal.SIGINT)
        code, _, err = following.finish(timeout=30)
        assert code == 130, (front, err)
        assert "Traceback" not in err
    assert project.state(box) == "running"
    project.kstlib("ops", "stop", box, "-f").ok()
