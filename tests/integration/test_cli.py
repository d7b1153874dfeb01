"""The INSTALLED ``kstlib`` command, run as a subprocess in a temp project, on real backends.

Each test writes its own kstlib.conf.yml with run-unique session names; the environment comes
from the fixtures (private tmux server, private state folder, NO_COLOR). Every error must be one
line on stderr, a non-zero exit and no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    BUSYBOX_IMAGE,
    KSTLIB,
    PYTHON_IMAGE,
    TICKER_YAML,
    Done,
    retry_until,
    run_command,
    run_in_terminal,
)

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


@dataclass
class Project:
    root: Path
    names: dict[str, str]

    def write(self, body: str) -> Path:
        path = self.root / "kstlib.conf.yml"
        path.write_text(body.format(**self.names))
        return path

    def kstlib(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 120) -> Done:
        return run_command([KSTLIB, *args], cwd or self.root, env=env, timeout=timeout)

    def status(self, name: str) -> dict:
        return json.loads(self.kstlib("ops", "status", name, "--json").ok().out)


@pytest.fixture
def project(tmp_path: Path, unique_name: Callable[[str], str]) -> Project:
    names = {"dev": unique_name("dev"), "prod": unique_name("prod"), "other": unique_name("oth")}
    return Project(tmp_path, names)


TMUX_CONFIG = f"""\
ops:
  sessions:
    {{dev}}:
      backend: tmux
      command: {TICKER_YAML}
      env:
        BOT_MODE: "dev"
    broken-one:
      backend: container
      image: "UPPER/x"
"""


def container_config(runtime: str) -> str:
    return f"""\
ops:
  container_runtime: {runtime}
  sessions:
    {{dev}}:
      backend: tmux
      command: "sleep 300"
    {{prod}}:
      backend: container
      image: "{PYTHON_IMAGE}"
      command: {TICKER_YAML}
      env:
        BOT_MODE: "prod"
"""


# ------------------------------------------------------------------------------- tmux


def test_list_shows_defined_sessions_before_start(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    done = project.kstlib("ops", "list", "--backend", "tmux").ok()
    header, *rows = done.out.splitlines()
    assert header.split() == ["Name", "Backend", "State", "PID", "Image", "Exit", "Restarts"]
    assert rows[0].split()[:3] == [project.names["dev"], "tmux", "defined"]
    assert "\x1b" not in done.out  # not a terminal: plain text
    assert "broken-one" in done.err and "UPPER/x" in done.err  # skipped with a warning


def test_list_json_is_pure_json_with_warnings_on_stderr(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    done = project.kstlib("ops", "list", "--json").ok()
    data = json.loads(done.out)
    assert isinstance(data, list)
    mine = [d for d in data if d["name"] == project.names["dev"]]
    assert mine and mine[0]["state"] == "defined" and mine[0]["defined"] is True
    for key in ("name", "backend", "state", "pid", "image", "exit_code", "created_at",
                "defined", "managed"):
        assert key in mine[0]
    assert "warning" in done.err


def test_tmux_lifecycle_by_name(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    dev = project.names["dev"]
    assert f"started {dev} (tmux" in project.kstlib("ops", "start", dev).ok().out
    status = project.status(dev)
    assert status["state"] == "running" and status["backend"] == "tmux"
    assert status["pid"] and status["managed"] is True and status["defined"] is True
    listed = json.loads(project.kstlib("ops", "list", "--json").ok().out)
    assert any(d["name"] == dev and d["state"] == "running" for d in listed)

    def two_ticks() -> list[str]:
        lines = project.kstlib("ops", "logs", dev, "--lines", "2").ok().out.splitlines()
        return lines if len(lines) == 2 and all(x.startswith("tick") for x in lines) else []

    retry_until(two_ticks, timeout=20)
    assert len(project.kstlib("ops", "logs", dev, "-n", "1").ok().out.splitlines()) == 1

    assert project.kstlib("ops", "stop", dev, "--timeout", "5").ok().out.startswith("stopped")
    assert project.status(dev)["state"] == "defined"
    after = project.kstlib("ops", "logs", dev, "-n", "30").ok().out.splitlines()
    assert any(line.startswith("tick") for line in after)  # output outlives the session


def test_status_text_output(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    out = project.kstlib("ops", "status", project.names["dev"]).ok().out
    assert "State:" in out and "defined" in out


def test_config_option_before_and_after_the_command(project: Project, tmux_available,
                                                    tmp_path: Path) -> None:
    path = project.write(TMUX_CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in (["--config", str(path), "ops", "list"],
                 ["ops", "list", "--config", str(path)]):
        done = project.kstlib(*argv, "--backend", "tmux", cwd=elsewhere).ok()
        assert project.names["dev"] in done.out


def test_kstlib_config_environment_variable(project: Project, tmux_available,
                                            tmp_path: Path) -> None:
    path = project.write(TMUX_CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = project.kstlib("ops", "list", "--backend", "tmux", cwd=elsewhere,
                          env={**os.environ, "KSTLIB_CONFIG": str(path)}).ok()
    assert project.names["dev"] in done.out


def test_config_is_found_from_a_subfolder(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    sub = project.root / "a" / "b"
    sub.mkdir(parents=True)
    assert project.names["dev"] in project.kstlib("ops", "list", "-b", "tmux", cwd=sub).ok().out


def test_help(project: Project) -> None:
    out = project.kstlib("--help").ok().out
    assert "ops start NAME" in out and "--config" in out
    start = project.kstlib("ops", "start", "--help").ok().out
    for flag in ("--backend", "--command", "--image", "--env", "--volume", "--port",
                 "--workdir", "--socket", "-L"):
        assert flag in start
    assert "-n, --lines N" in project.kstlib("ops", "logs", "--help").ok().out


def test_help_of_the_new_verbs(project: Project) -> None:
    out = project.kstlib("--help").ok().out
    for verb in ("list", "status", "start", "stop", "restart", "logs", "attach", "up", "down",
                 "wait", "check"):
        assert f"ops {verb}" in out
    assert "--wait" in project.kstlib("ops", "start", "--help").ok().out
    up = project.kstlib("ops", "up", "--help").ok().out
    for flag in ("--wait", "--timeout", "--no-recreate", "--json"):
        assert flag in up
    assert "--follow" in project.kstlib("ops", "logs", "--help").ok().out


def test_help_on_the_positional_starts_nothing(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    project.kstlib("ops", "start", "--help").ok()
    listed = json.loads(project.kstlib("ops", "list", "--json", "--backend", "tmux").ok().out)
    assert all(d["state"] == "defined" for d in listed if d["defined"])
    assert not any(d["name"] == "--help" for d in listed)


def test_colours_on_a_terminal_and_plain_text_otherwise(project: Project,
                                                       tmux_available) -> None:
    """Seed: defined dimmed, running green, exited red with its code; only for a terminal."""
    project.write(TMUX_CONFIG)
    dev, other = project.names["dev"], project.names["other"]
    project.kstlib("ops", "start", dev).ok()
    # ends by itself with code 3 after a moment (no ; or && allowed in a command)
    project.kstlib("ops", "start", other, "-c",
                   "python3 -c \"raise SystemExit(__import__('time').sleep(0.5) or 3)\"").ok()
    retry_until(lambda: project.status(other)["state"] == "exited", timeout=20)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"

    def row(out: str, name: str) -> str:
        return next(line for line in out.splitlines() if f"{name} " in line)

    code, out = run_in_terminal([KSTLIB, "ops", "list", "-b", "tmux"], project.root, env=env)
    assert code == 0, out
    assert row(out, dev).startswith(f"\x1b[32m{dev} ") and " running " in row(out, dev)
    assert row(out, other).startswith(f"\x1b[31m{other} ")
    assert row(out, other).split()[2:3] == ["exited"]
    assert row(out, other).split()[5] == "3"  # the Exit column
    assert row(out, other).endswith("\x1b[0m")
    project.kstlib("ops", "stop", dev, "-f").ok()
    code, out = run_in_terminal([KSTLIB, "ops", "list", "-b", "tmux"], project.root, env=env)
    assert code == 0, out
    assert row(out, dev).startswith(f"\x1b[2m{dev} ") and " defined " in row(out, dev)

    code, out = run_in_terminal([KSTLIB, "ops", "list", "-b", "tmux"], project.root,
                                env={**env, "NO_COLOR": "1"})
    assert code == 0 and "\x1b[" not in out and dev in out
    piped = project.kstlib("ops", "list", "-b", "tmux", env=env).ok()
    assert "\x1b[" not in piped.out and other in piped.out
    project.kstlib("ops", "stop", other, "-f").ok()


def test_attach_from_a_terminal_and_detach(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    dev = project.names["dev"]
    project.kstlib("ops", "start", dev).ok()

    last = [0.0]

    def detach_when_ticking(seen: str) -> bytes | None:
        # again every second: keys typed before tmux put the terminal in raw mode are lost
        if "tick" in seen and time.monotonic() - last[0] > 1:
            last[0] = time.monotonic()
            return b"\x02d"  # Ctrl+B D
        return None

    code, out = run_in_terminal([KSTLIB, "ops", "attach", dev], project.root,
                                typing=detach_when_ticking)
    assert code == 0 and f"[detached (from session {dev})]" in out
    assert project.status(dev)["state"] == "running"  # detaching leaves it running
    project.kstlib("ops", "stop", dev, "-f").ok()


def test_a_session_started_on_another_tmux_socket_is_reachable(project: Project,
                                                               tmux_available) -> None:
    """`start NAME -L sock`: status, list, logs and stop find it without being told -L.

    It runs elsewhere than its entry says (another tmux server), so it is not the entry's
    (defined is by name, backend AND scope): the entry shows as defined next to it. The socket
    is named by its path (a server under another TMUX_TMPDIR is found too).
    """
    project.write(TMUX_CONFIG)
    dev = project.names["dev"]
    project.kstlib("ops", "start", dev, "-L", f"{dev}-sock").ok()
    status = project.status(dev)
    assert (status["state"], os.path.basename(status["socket"]), status["defined"]) == (
        "running", f"{dev}-sock", False)
    rows = [d for d in json.loads(project.kstlib("ops", "list", "--json").ok().out)
            if d["name"] == dev]
    assert [(d["state"], d["socket"] and os.path.basename(d["socket"])) for d in rows] == [
        ("defined", None), ("running", f"{dev}-sock")]
    assert "already running" in project.kstlib("ops", "start", dev).one_line_error()
    retry_until(lambda: "tick" in project.kstlib("ops", "logs", dev).ok().out, timeout=20)
    project.kstlib("ops", "stop", dev, "-t", "5").ok()
    assert project.status(dev)["state"] == "defined"
    assert "tick" in project.kstlib("ops", "logs", dev).ok().out  # kept after the stop


# ------------------------------------------------------------------------------- errors


def test_unknown_session(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    line = project.kstlib("ops", "status", "nobody-here").one_line_error()
    assert "nobody-here" in line and "kstlib ops list" in line


def test_already_running_and_not_running(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    dev = project.names["dev"]
    assert "not running" in project.kstlib("ops", "stop", dev).one_line_error()
    project.kstlib("ops", "start", dev).ok()
    assert "already running" in project.kstlib("ops", "start", dev).one_line_error()
    project.kstlib("ops", "stop", dev, "-f").ok()


def test_invalid_values_on_the_command_line(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    dev = project.names["dev"]
    line = project.kstlib("ops", "start", dev, "--backend", "container", "--image",
                          "UPPER/x").one_line_error()
    assert line == f"session '{dev}': image: invalid image reference 'UPPER/x'"
    assert "';'" in project.kstlib("ops", "start", dev, "-c", "sleep 1; id").one_line_error()
    assert "lines" in project.kstlib("ops", "logs", dev, "-n", "x").one_line_error()
    assert "timeout" in project.kstlib("ops", "stop", dev, "-t", "soon").one_line_error()
    assert "backend" in project.kstlib("ops", "list", "--backend", "vm").one_line_error()
    assert "unknown command" in project.kstlib("ops", "launch", dev).one_line_error()
    assert project.kstlib("ops", "start", dev, "--bogus").one_line_error() == (
        "kstlib: unknown option '--bogus' (see: kstlib ops start --help)")
    assert project.kstlib("ops", "start", dev, "extra").one_line_error() == (
        "kstlib: unknown option or extra argument 'extra' (see: kstlib ops start --help)")
    assert project.kstlib("ops", "start", dev, "-b").one_line_error() == (
        "kstlib: option --backend needs a value (see: kstlib ops start --help)")


def test_invalid_config_entry_cannot_be_started(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    line = project.kstlib("ops", "start", "broken-one").one_line_error()
    assert "broken-one" in line and "UPPER/x" in line


def test_bad_config_file(project: Project) -> None:
    (project.root / "kstlib.conf.yml").write_text("ops:\n  sessions: [oops\n")
    line = project.kstlib("ops", "list").one_line_error()
    assert "kstlib.conf.yml:" in line and "YAML" in line


def test_missing_explicit_config(project: Project) -> None:
    line = project.kstlib("--config", "missing.yml", "ops", "list").one_line_error()
    assert "missing.yml" in line


def test_invokes_own_config_flag_is_not_accepted(project: Project) -> None:
    """kstlib no longer runs on invoke: its -f/--config core option does not exist."""
    (project.root / "x.yml").write_text("ops:\n  sessions:\n    from-x:\n      command: x\n")
    done = project.kstlib("-f", "x.yml", "ops", "list")
    assert done.code == 2 and done.one_line_error().startswith("kstlib: unknown ")
    assert "from-x" not in done.err


def test_backend_missing(project: Project, tmp_path: Path) -> None:
    project.write(TMUX_CONFIG)
    empty = tmp_path / "empty-bin"  # only the session's own program: no tmux, no runtime
    empty.mkdir()
    (empty / "python3").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    env = {**os.environ, "PATH": str(empty)}
    done = project.kstlib("ops", "start", project.names["dev"], env=env)
    line = done.one_line_error()
    assert "tmux" in line and "not found" in line and done.code == 3
    done = project.kstlib("ops", "start", project.names["dev"], "-b", "container", "-i",
                          BUSYBOX_IMAGE, env=env)
    assert "neither podman nor docker" in done.one_line_error() and done.code == 3
    listed = project.kstlib("ops", "list", env=env).ok()  # still lists the config
    assert listed.out.splitlines()[1].split()[:3] == [project.names["dev"], "tmux", "unknown"]
    warning = [x for x in listed.err.splitlines() if "'tmux' not found" in x]
    assert len(warning) == 1 and warning[0].startswith("warning: ")


# ------------------------------------------------------------------------------- containers


@pytest.mark.containers
def test_container_lifecycle_and_image_override(project: Project, runtime: str,
                                                tmux_available) -> None:
    project.write(container_config(runtime))
    prod = project.names["prod"]
    listed = json.loads(project.kstlib("ops", "list", "--json").ok().out)
    assert any(d["name"] == prod and d["state"] == "defined" for d in listed)

    project.kstlib("ops", "start", prod).ok()
    status = project.status(prod)
    assert (status["backend"], status["state"], status["image"]) == (
        "container", "running", PYTHON_IMAGE)
    assert status["defined"] is True and status["managed"] is True

    def ticks() -> bool:
        out = project.kstlib("ops", "logs", prod, "--lines", "2").ok().out.splitlines()
        return len(out) == 2 and out[-1].startswith("tick")

    retry_until(ticks, timeout=30)
    project.kstlib("ops", "stop", prod, "--timeout", "5").ok()
    assert project.status(prod)["state"] == "defined"
    assert "tick" in project.kstlib("ops", "logs", prod, "-n", "5").ok().out

    # --image overrides the config for one start (busybox has no python: override the command)
    project.kstlib("ops", "start", prod, "--image", BUSYBOX_IMAGE, "-c", "sleep 300").ok()
    assert project.status(prod)["image"] == BUSYBOX_IMAGE
    project.kstlib("ops", "stop", prod, "-f").ok()


@pytest.mark.containers
def test_tmux_session_started_as_container_reports_the_container(
        project: Project, runtime: str, tmux_available) -> None:
    project.write(container_config(runtime))
    dev = project.names["dev"]
    # busybox's own CMD is a shell that ends at once: say what to run there
    project.kstlib("ops", "start", dev, "--backend", "container", "--image",
                   BUSYBOX_IMAGE, "-c", "sleep 300").ok()
    status = project.status(dev)
    assert (status["backend"], status["state"], status["image"]) == (
        "container", "running", BUSYBOX_IMAGE)
    # one name, one running session
    assert "already running" in project.kstlib("ops", "start", dev).one_line_error()
    listed = json.loads(project.kstlib("ops", "list", "--json").ok().out)
    rows = {(d["name"], d["backend"]): d for d in listed if d["name"] == dev}
    assert rows[(dev, "tmux")]["state"] == "defined"
    assert rows[(dev, "container")]["state"] == "running"
    project.kstlib("ops", "stop", dev).ok()
    assert project.status(dev)["backend"] == "tmux"


@pytest.mark.containers
def test_start_of_a_command_that_dies_at_once_succeeds_with_a_warning(
        project: Project, runtime: str) -> None:
    """start returns 0 once launched; a session already seen dead then is a warning line
    (with its exit code and last output line), never an error. Whether it is already dead
    when start looks is a race, so the warning is checked whenever it is there."""
    project.write(container_config(runtime))
    prod = project.names["prod"]
    done = project.kstlib("ops", "start", prod, "-i", BUSYBOX_IMAGE, "-c", "ls /kt-nowhere")
    assert done.code == 0 and done.out.startswith(f"started {prod} (container"), done.err
    assert "Traceback" not in done.err
    for line in done.err.splitlines():
        assert line.startswith(f"warning: session '{prod}' already exited with code 1: "
                               "ls: /kt-nowhere"), done.err
    retry_until(lambda: project.status(prod)["state"] == "exited", timeout=30)
    assert project.status(prod)["exit_code"] == 1
    assert "kt-nowhere" in project.kstlib("ops", "logs", prod).ok().out
    project.kstlib("ops", "stop", prod).ok()


@pytest.mark.containers
def test_missing_image_is_one_line(project: Project, runtime: str) -> None:
    project.write(container_config(runtime))
    line = project.kstlib("ops", "start", project.names["prod"], "--image",
                          "localhost/kstlib-no-such-image:1").one_line_error()
    assert "kstlib-no-such-image" in line


def test_no_config_file_is_not_an_error(project: Project, tmux_available) -> None:
    done = project.kstlib("ops", "list", "--backend", "tmux").ok()
    assert done.out.splitlines()[0].split()[0] == "Name"
    assert "kstlib ops list" in project.kstlib("ops", "status", "nothing").one_line_error()


def test_attach_to_a_session_that_is_not_running(project: Project, tmux_available) -> None:
    project.write(TMUX_CONFIG)
    assert "not running" in project.kstlib("ops", "attach", project.names["dev"]).one_line_error()


def test_ctrl_c_exits_130(project: Project, tmux_available) -> None:
    """Interrupting a long graceful stop (the process ignores SIGINT) ends kstlib with 130."""
    project.write(f"""\
ops:
  sessions:
    {{dev}}:
      command: {json.dumps("python3 -c " + repr("[__import__('signal').signal(2, 1), "
                                                  "print('ready', flush=True), "
                                                  "__import__('time').sleep(300)]"))}
""")
    dev = project.names["dev"]
    project.kstlib("ops", "start", dev).ok()
    retry_until(lambda: "ready" in project.kstlib("ops", "logs", dev).ok().out, timeout=20)
    stopping = subprocess.Popen([KSTLIB, "ops", "stop", dev, "--timeout", "60"],
                                cwd=project.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        # the graceful stop has begun once the session's terminal echoed the C-c it was sent
        retry_until(lambda: "^C" in project.kstlib("ops", "logs", dev).ok().out, timeout=20)
        assert stopping.poll() is None
        stopping.send_signal(signal.SIGINT)
        _, err = stopping.communicate(timeout=30)
    finally:
        if stopping.poll() is None:
            stopping.kill()
    assert stopping.returncode == 130
    assert "Traceback" not in err
    project.kstlib("ops", "stop", dev, "--force").ok()

