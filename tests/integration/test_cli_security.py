"""What the INSTALLED ``kstlib`` and ``inv`` refuse or survive, as a user meets it: config files
someone else could have written, control characters from foreign sessions and from the config,
a docker engine that does not answer, a container whose config entry is gone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import BUSYBOX_IMAGE, KSTLIB, Done, retry_until

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown to another user)")

# C0 controls but newline, DEL, C1 controls: none may reach the terminal raw
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def assert_printable(done: Done) -> None:
    assert not RAW_CONTROL.search(done.out), repr(done.out)
    assert not RAW_CONTROL.search(done.err), repr(done.err)


# --------------------------------------------------------------------------- trust


UNTRUSTED = """\
ops:
  tmux_binary: "@root@/evil.sh"
  sessions:
    @dev@:
      command: "@tool@ forever"
"""


def evil_project(project: Project) -> Path:
    """A config naming a tmux wrapper that leaves a marker (then runs the real tmux)."""
    evil = project.root / "evil.sh"
    evil.write_text(f'#!/bin/sh\ntouch "{project.root}/PWNED"\nexec tmux "$@"\n')
    evil.chmod(0o755)
    return project.write(UNTRUSTED)


def refused_everywhere(project: Project, path: Path, reason: str) -> None:
    """Every way in is exit 2 with one line naming the file and why; nothing runs."""
    dev = project.name("dev")
    line = f"config file '{path}' is not trusted: {reason}"
    for argv in (("ops", "list"), ("ops", "start", dev), ("ops", "status", dev),
                 ("ops", "up"), ("ops", "logs", dev)):
        done = project.kstlib(*argv)
        assert done.code == 2, (argv, done.err)
        assert done.one_line_error().startswith(line), done.err
        assert f"KSTLIB_TRUST_CONFIG={path}" in done.err
    check = project.kstlib("ops", "check")
    assert check.code == 2 and check.out.startswith(line)
    for argv in (("ops.list",), ("ops.start", dev), ("ops.up",)):
        done = project.inv(*argv)
        assert done.code == 2, (argv, done.err)
        assert done.one_line_error().startswith(line), done.err  # once, not twice
    listed = project.inv("--list")  # the generic tasks stay, the sessions get none
    assert listed.code == 0 and "ops.start" in listed.out and dev not in listed.out
    assert [x for x in listed.err.splitlines() if x] == [listed.err.strip()]
    assert listed.err.startswith(line)
    assert not (project.root / "PWNED").exists()  # the configured tmux never ran


@as_root
def test_a_config_owned_by_another_user_is_refused(project: Project,
                                                   tmux_available: None) -> None:
    path = evil_project(project)
    os.chown(path, 65534, 65534)
    refused_everywhere(project, path, "it is owned by user 'nobody'")


def test_a_world_writable_config_is_refused(project: Project, tmux_available: None) -> None:
    path = evil_project(project)
    path.chmod(0o666)
    refused_everywhere(project, path, "it is writable by everyone (mode 0666)")


def test_a_config_in_a_world_writable_folder_without_sticky_bit_is_refused(
        project: Project, tmux_available: None) -> None:
    path = evil_project(project)
    project.root.chmod(0o777)
    try:
        refused_everywhere(project, path, f"folder {project.root} is writable by everyone "
                                          "without the sticky bit (mode 0777)")
    finally:
        project.root.chmod(0o700)


@as_root
def test_kstlib_trust_config_opts_in(project: Project, tmux_available: None) -> None:
    path = evil_project(project)
    os.chown(path, 65534, 65534)
    env = {**os.environ, "KSTLIB_TRUST_CONFIG": str(path)}
    dev = project.name("dev")
    assert dev in project.kstlib("ops", "list", "--backend", "tmux", env=env).ok().out
    assert f"{dev}.start" in project.inv("--list", env=env).ok().out
    project.kstlib("ops", "start", dev, env=env).ok()
    assert (project.root / "PWNED").exists()  # trusted on purpose: its tmux_binary runs
    project.kstlib("ops", "stop", dev, "-f", env=env).ok()
    # a folder trusts the files under it
    folder = {**os.environ, "KSTLIB_TRUST_CONFIG": str(project.root)}
    project.kstlib("ops", "list", "--backend", "tmux", env=folder).ok()
    # any other path does not
    other = {**os.environ, "KSTLIB_TRUST_CONFIG": str(project.root / "elsewhere.yml")}
    assert project.kstlib("ops", "list", env=other).code == 2


# --------------------------------------------------------------------------- control characters


def test_control_characters_of_a_foreign_tmux_session_are_escaped(
        project: Project, tmux_available: None) -> None:
    project.write("ops:\n  sessions:\n    @dev@:\n      command: \"@tool@ forever\"\n")
    """One session named with control characters (it can be listed, not named: kstlib refuses
    such a name), one whose command has some (its status shows them escaped)."""
    name, plain = project.name("evil") + "\x1b[2J\x07", project.name("evilcmd")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "sleep", "300"], check=True,
                   timeout=30)
    subprocess.run(["tmux", "new-session", "-d", "-s", plain, "sh", "-c", "sleep 300",
                    "\x1b]0;owned\x07\x1b[31m"], check=True, timeout=30)
    for front in FRONTS:
        listed = project.verb(front, "list", [], "--backend", "tmux").ok()
        assert_printable(listed)
        rows = [line for line in listed.out.splitlines() if project.name("evil") in line]
        assert len(rows) == 2 and all(" running " in row for row in rows), listed.out
        as_json = project.verb(front, "list", [], "--json").ok()
        assert_printable(as_json)  # JSON escapes them in its own way
        status = project.verb(front, "status", [plain], own_task=False).ok()
        assert_printable(status)
        assert "owned" in status.out
        refused = project.verb(front, "status", [name], own_task=False)
        assert refused.code == 2
        assert_printable(refused)


@pytest.mark.containers
def test_control_characters_of_a_foreign_container_are_escaped(project: Project,
                                                               runtime: str) -> None:
    project.write(f"ops:\n  container_runtime: {runtime}\n")
    name = project.name("foreign")
    subprocess.run([runtime, "run", "-d", "--name", name, BUSYBOX_IMAGE, "sh", "-c",
                    "sleep 300", "\x1b]0;owned\x07\x1b[31mRED\x9b"], check=True,
                   capture_output=True, timeout=120)
    listed = project.kstlib("ops", "list", "--backend", "container").ok()
    assert_printable(listed)
    assert any(line.startswith(f"{name} ") and " running " in line
               for line in listed.out.splitlines())
    as_json = project.kstlib("ops", "list", "--json").ok()
    assert_printable(as_json)
    for front in FRONTS:
        status = project.verb(front, "status", [name], own_task=False)
        status.ok()
        assert_printable(status)
        assert "owned" in status.out and "RED" in status.out
    project.kstlib("ops", "stop", name, "-t", "1").ok()


def test_control_characters_in_a_description_are_refused_and_escaped(
        project: Project, tmux_available: None) -> None:
    """Refused by validation (the entry is skipped): its warning shows them escaped, in
    kstlib and in inv alike; a fine description shows in the task's help."""
    project.write("""\
ops:
  sessions:
    @bad@:
      command: "sleep 5"
      description: "innocent\\e[2J\\e]0;owned\\a"
    @rtl@:
      command: "sleep 5"
      description: "abc\\u202etxt.exe"
    @good@:
      command: "sleep 5"
      description: "Serves the API on :8080, café"
""")
    bad, rtl, good = project.name("bad"), project.name("rtl"), project.name("good")
    for done in (project.kstlib("ops", "list", "--backend", "tmux"), project.inv("--list"),
                 project.inv("--help", f"{good}.start")):
        done.ok()
        assert_printable(done)
        assert "\u202e" not in done.out + done.err
        assert f"session '{bad}': description: description contains a" in done.err
        assert f"session '{rtl}': description: description contains a" in done.err
    tasks = project.inv("--list").ok().out
    assert f"{good}.start" in tasks and f"{bad}.start" not in tasks and rtl not in tasks
    assert "Serves the API on :8080, café" in project.inv("--help", f"{good}.start").ok().out
    refused = project.kstlib("ops", "start", bad)
    assert refused.code == 2 and bad in refused.one_line_error()
    assert_printable(refused)


# --------------------------------------------------------------------------- docker engine down


@pytest.mark.docker
def test_a_dead_docker_engine_does_not_stop_tmux_work(project: Project, front: str,
                                                      tmux_available: None) -> None:
    project.write(f"""\
ops:
  sessions:
    @dev@:
      command: "@tool@ ticks 100000 0.3"
    @box@:
      backend: container
      runtime: docker
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
""")
    dev, box = project.name("dev"), project.name("box")
    env = {**os.environ, "DOCKER_HOST": f"unix://{project.root}/no-engine.sock"}

    def run(verb: str, *names: str, flags: tuple[str, ...] = ()) -> Done:
        return project.verb(front, verb, list(names), *flags, env=env)

    run("start", dev).ok()
    listed = run("list")
    listed.ok()
    warnings = [x for x in listed.err.splitlines() if x]
    assert len(warnings) == 1 and warnings[0].startswith("warning: container docker did not "
                                                         "answer"), listed.err
    rows = {line.split()[0]: line.split() for line in listed.out.splitlines()[1:]}
    assert rows[dev][1:3] == ["tmux", "running"]
    assert rows[box][1:3] == ["container", "unknown"]
    assert json.loads(run("status", dev, flags=("--json",)).ok().out)["state"] == "running"
    retry_until(lambda: "tick 1" in run("logs", dev).ok().out, timeout=30)
    run("stop", dev).ok()
    run("start", dev).ok()
    run("stop", dev, flags=("--force",)).ok()
    line = run("start", box).one_line_error()
    assert "Cannot connect to the Docker daemon" in line and box in line


@pytest.mark.docker
@pytest.mark.parametrize("runtime", ["docker"], indirect=True)
def test_a_container_whose_entry_was_removed_is_listed_and_stoppable(
        project: Project, runtime: str, tmux_available: None) -> None:
    """docker is not the auto-detected runtime here (podman is): the container is found
    because kstlib remembers starting something on docker."""
    body = f"""\
ops:
  sessions:
    @dev@:
      command: "sleep 300"
    @box@:
      backend: container
      runtime: docker
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
"""
    project.write(body)
    box = project.name("box")
    project.kstlib("ops", "start", box).ok()
    project.write(body.split("    @box@:")[0])
    for front in FRONTS:
        listed = json.loads(project.verb(front, "list", [], "--json").ok().out)
        row = [d for d in listed if d["name"] == box]
        assert [(d["backend"], d["state"], d["defined"], d["runtime"]) for d in row] == [
            ("container", "running", False, "docker")], row
        assert project.verb(front, "status", [box], own_task=False).ok().out
    assert project.inv("--list").ok().out.count(box) == 0  # no tasks of its own any more
    project.kstlib("ops", "stop", box, "-t", "1").ok()
    listed = json.loads(project.kstlib("ops", "list", "--json").ok().out)
    assert not [d for d in listed if d["name"] == box]


# --------------------------------------------------------------------------- cache and sizes


def test_a_hand_edited_config_cache_is_never_run(project: Project, front: str,
                                                tmux_available: None) -> None:
    """The validated config is cached per user; an edit of the cache (not of the file) that
    would make the session run something else fails its signature: the file's command runs."""
    from kstlib_tasks import config_cache

    project.write('ops:\n  sessions:\n    @dev@:\n      command: "@tool@ say from-the-file + '
                  'forever"\n')
    dev = project.name("dev")
    project.kstlib("ops", "list").ok()  # fills the cache
    (entry,) = config_cache.cache_dir().iterdir()
    stored = json.loads(entry.read_text())
    body = json.loads(stored["body"])
    for spec in body["config"]["sessions"]:
        spec["command"] = ["touch", str(project.root / "PWNED")]
    stored["body"] = json.dumps(body, sort_keys=True)
    entry.write_text(json.dumps(stored))
    project.verb(front, "start", [dev]).ok()
    retry_until(lambda: "from-the-file" in project.logs(dev))
    assert not (project.root / "PWNED").exists()
    project.kstlib("ops", "stop", dev, "--force").ok()


def test_env_and_command_sizes_are_bounded_with_one_line(project: Project, front: str,
                                                        tmux_available: None) -> None:
    """A 200 KB env value (was a multi-line traceback, exit 70) is refused with one line and
    exit 2, in the config (and 100 KB as --env: the kernel bounds one argument at 128 KiB);
    a 20 KB one (was tmux's 'command too long') reaches
    the program whole."""
    big, fine = "x" * 200_000, "y" * 20_000
    project.write(f'ops:\n  sessions:\n    @big@:\n      command: "@tool@ forever"\n'
                  f'      env:\n        HUGE: "{big}"\n'
                  f'    @fine@:\n      command: "@tool@ env WIDE + forever"\n'
                  f'      env:\n        WIDE: "{fine}"\n')
    big_name, fine_name = project.name("big"), project.name("fine")
    refused = project.verb(front, "start", [big_name], own_task=False)  # refused: no task
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "value longer than 32 KiB" in refused.one_line_error(), refused.err
    assert big_name in refused.one_line_error()
    project.verb(front, "start", [fine_name]).ok()
    retry_until(lambda: f"env: WIDE={fine}" in project.logs(fine_name))
    project.kstlib("ops", "stop", fine_name, "--force").ok()
    over = project.kstlib("ops", "start", fine_name, "--env", f"WIDE={'z' * 100_000}")
    assert over.code == 2 and "Traceback" not in over.err
    assert "value longer than 32 KiB" in over.one_line_error(), over.err
    assert project.state(fine_name) == "defined"
