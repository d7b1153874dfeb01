"""``check`` end to end through the INSTALLED ``kstlib`` and ``inv``: a clean config passes
(exit 0); every problem of a dirty one is one line with ``file:line`` (exit 2); ports published
on every interface are a warning that does not fail the check; ``--json`` is a list of objects.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import BUSYBOX_IMAGE, KSTLIB

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of ``path`` holding ``needle`` (exactly one)."""
    found = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


CLEAN = f"""\
ops:
  container_runtime: {{runtime}}
  sessions:
    @web@:
      command: "@tool@ forever"
      working_dir: "."
      env:
        PORT: "8080"
    @api@:
      command: "python3 e2e_tool.py args $PORT ${{{{KT_HOST:-localhost}}}}"
      env:
        PORT: "9090"
      depends_on: [@web@]
    @box@:
      backend: container
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
      ports: ["127.0.0.1:@port-box@:80"]
"""


@pytest.mark.containers
def test_a_clean_config_passes(project: Project, runtime: str, tmux_available: None) -> None:
    project.write(CLEAN.format(runtime=runtime))
    web, api = project.name("web"), project.name("api")
    for front in FRONTS:
        done = project.verb(front, "check").ok()
        assert done.out.splitlines()[-1] == "check: clean, 3 session(s)", done.out
        assert f"  {api} <- {web} (ready)" in done.out  # the dependency graph
        assert "warning" not in done.out + done.err
        as_json = project.verb(front, "check", [], "--json").ok()
        assert json.loads(as_json.out) == []


DIRTY = """\
ops:
  container_runtime: {runtime}
  sessions:
    @typo@:
      comand: "sleep 5"
    @noimage@:
      backend: container
      image: "localhost/kt-no-such-image-@noimage@:1"
    @noprog@:
      command: "kt-no-such-program --flag"
    @nodir@:
      command: "sleep 5"
      working_dir: "missing/dir"
    @novar@:
      command: "sleep $KT_UNSET_VARIABLE"
    @public@:
      backend: container
      image: "{image}"
      command: "sleep 300"
      ports: ["8080:80"]
    @fine@:
      command: "sleep 5"
"""


@pytest.mark.containers
def test_a_dirty_config_gives_one_line_per_problem(project: Project, runtime: str,
                                                   tmux_available: None) -> None:
    path = project.write(DIRTY.format(runtime=runtime, image=BUSYBOX_IMAGE))
    names = {k: project.name(k) for k in ("typo", "noimage", "noprog", "nodir", "novar",
                                           "public", "fine")}
    at = {key: line_of(path, f"    {name}:") for key, name in names.items()}  # entry lines
    file = "kstlib.conf.yml"
    expected = [
        f"{file}:{line_of(path, 'comand:')}: session '{names['typo']}': comand: unknown key "
        "(did you mean 'command'?)",
        f"{file}:{at['noimage']}: session '{names['noimage']}': image "
        f"'localhost/kt-no-such-image-{names['noimage']}:1' not found on {runtime} (kstlib "
        "never pulls: build or load it first)",
        f"{file}:{at['noprog']}: session '{names['noprog']}': command: "
        "'kt-no-such-program' not found in PATH",
        f"{file}:{at['nodir']}: session '{names['nodir']}': working_dir: "
        f"{project.root}/missing/dir does not exist",
        f"{file}:{at['novar']}: session '{names['novar']}': command: "
        "variable $KT_UNSET_VARIABLE is not set (set it in env: or give a default: "
        "${KT_UNSET_VARIABLE:-value})",
        f"warning: {file}:{at['public']}: session '{names['public']}': "
        "ports: '8080:80' is published on every interface (write '127.0.0.1:8080:80' to "
        "publish on this machine only)",
    ]
    for front in FRONTS:
        done = project.verb(front, "check")
        assert done.code == 2, (front, done.out, done.err)
        assert "Traceback" not in done.err
        lines = done.out.splitlines()
        assert [line for line in lines if not line.startswith("uses ")] == [
            *expected, "check: 5 problem(s), 6 valid session(s)"]
        # what the sessions use here, once per backend
        assert "uses tmux: " + str(shutil.which("tmux")) in lines
        assert any(line.startswith(f"uses container runtime: {runtime} (") for line in lines)
        as_json = project.verb(front, "check", [], "--json")
        assert as_json.code == 2
        found = json.loads(as_json.out)
        assert isinstance(found, list) and all(isinstance(item, dict) for item in found)
        assert [item["level"] for item in found] == ["error"] * 5 + ["warning"]
        assert all(item["file"] == file and isinstance(item["line"], int) for item in found)
        assert [f"{item['file']}:{item['line']}: {item['message']}" for item in found] == [
            line.removeprefix("warning: ") for line in expected]
        assert [item["session"] for item in found][1:] == [
            names[k] for k in ("noimage", "noprog", "nodir", "novar", "public")]


def test_a_misspelt_ops_key_is_a_problem(project: Project, front: str) -> None:
    project.write("opps:\n  sessions:\n    @x@:\n      command: sleep 5\n")
    done = project.verb(front, "check")
    assert done.code == 2
    assert done.out.splitlines()[0] == ("kstlib.conf.yml:1: opps: unknown top-level key (did "
                                        "you mean 'ops'? kstlib reads only ops:)")
    assert done.out.splitlines()[-1] == "check: 1 problem(s), 0 valid session(s)"
    # the other verbs say it too, as a warning, and go on with no sessions
    listed = project.kstlib("ops", "list", "--backend", "tmux")
    assert listed.code == 0 and "opps: unknown top-level key" in listed.err


def test_an_unusable_config_is_one_problem(project: Project, front: str) -> None:
    (project.root / "kstlib.conf.yml").write_text("ops:\n  sessions: [oops\n")
    done = project.verb(front, "check")
    assert done.code == 2
    lines = done.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kstlib.conf.yml:") and "YAML" in lines[0]
    found = json.loads(project.verb(front, "check", [], "--json").out)
    assert len(found) == 1 and found[0]["level"] == "error" and "YAML" in found[0]["message"]


@pytest.mark.containers
@pytest.mark.parametrize("target", ["/etc", "outside"])
def test_a_mount_whose_folder_became_a_symlink_is_a_problem(project: Project, runtime: str,
                                                            tmux_available: None,
                                                            target: str) -> None:
    """The config is unchanged (its validated copy is cached), but ``./data`` now points at
    ``/etc`` or at a folder outside the project: ``check`` looks again, as ``start`` does,
    and says what start would refuse."""
    (project.root / "data").mkdir()
    elsewhere = project.root.parent / f"{project.root.name}-elsewhere"
    elsewhere.mkdir()
    why = "/etc" if target == "/etc" else "outside the config's folder"
    project.write(f"""\
ops:
  container_runtime: {runtime}
  sessions:
    @box@:
      backend: container
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
      volumes: ["./data:/d:ro"]
""")
    assert project.kstlib("ops", "check").ok().out.splitlines()[-1] == (
        "check: clean, 1 session(s)")
    (project.root / "data").rmdir()
    (project.root / "data").symlink_to("/etc" if target == "/etc" else elsewhere)
    for front in FRONTS:
        done = project.verb(front, "check")
        assert done.code == 2, (front, done.out, done.err)
        problem = [line for line in done.out.splitlines() if "volumes[0]" in line]
        assert len(problem) == 1 and why in problem[0], done.out
        assert problem[0].startswith(f"kstlib.conf.yml:4: session '{project.name('box')}': ")
        started = project.kstlib("ops", "start", project.name("box"))
        assert started.code == 2 and why in started.err, started.err
    assert project.state(project.name("box")) == "defined"  # nothing was started


def test_a_tmux_binary_that_is_not_an_executable_is_a_problem(project: Project,
                                                             front: str) -> None:
    not_executable = project.root / "tmux-notes.txt"
    not_executable.write_text("not a program\n")
    not_executable.chmod(0o644)
    for binary in ("/nonexistent/kt-tmux", str(not_executable)):
        project.write(f'ops:\n  tmux_binary: "{binary}"\n  sessions:\n    @dev@:\n'
                      '      command: "@tool@ forever"\n')
        done = project.verb(front, "check")
        assert done.code == 2, done.out
        assert f"kstlib.conf.yml:4: session '{project.name('dev')}': tmux binary {binary!r} " \
               "not found (apt-get install tmux, or fix ops.tmux_binary)" in done.out, done.out
        assert f"uses tmux: {binary!r} not found" in done.out
        started = project.kstlib("ops", "start", project.name("dev"))
        assert started.code != 0 and "Traceback" not in started.err
        assert binary in started.one_line_error(), started.err


def test_check_and_start_say_the_same_of_a_working_dir_that_is_a_file(project: Project,
                                                                      front: str) -> None:
    (project.root / "tool.sh").write_text("echo\n")
    project.write('ops:\n  sessions:\n    @dev@:\n      command: "@tool@ forever"\n'
                  '      working_dir: tool.sh\n')
    dev = project.name("dev")
    reason = f"working_dir: {project.root}/tool.sh is not a folder"
    assert f"session '{dev}': {reason}" in project.verb(front, "check").out
    started = project.kstlib("ops", "start", dev)
    assert started.code == 2 and reason in started.one_line_error(), started.err
    # and a config path that is a folder is not said not to exist
    named = project.kstlib("--config", str(project.root), "ops", "list")
    assert named.code == 2
    assert named.one_line_error().startswith(f"config file '{project.root}' is not a file")


@pytest.mark.containers
def test_an_engine_that_does_not_answer_is_said_so_not_a_missing_image(
        project: Project, tmp_path: Path) -> None:
    project.write(f"""\
ops:
  sessions:
    @box@:
      backend: container
      runtime: docker
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
""")
    dead = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = project.kstlib("ops", "check", env=dead)
    assert done.code == 2, done.out
    problem = [line for line in done.out.splitlines() if project.name("box") in line]
    assert len(problem) == 1 and "docker: the engine does not answer" in problem[0], done.out
    assert "not found" not in problem[0]
    assert any(line.startswith("uses container runtime: docker (") and "named by a session"
               in line for line in done.out.splitlines()), done.out
