"""The INSTALLED ``inv`` on a repo whose tasks.py is the three lines of the public API.

Runs in a temp project with its own kstlib.conf.yml and tasks.py, against real tmux and (via
the ``runtime`` fixture) real podman and docker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX_IMAGE, INV, TICKER_YAML, Done, retry_until, run_command

pytestmark = pytest.mark.skipif(not os.access(INV, os.X_OK), reason="invoke not installed")

TASKS_PY = """\
from invoke import task

from kstlib_tasks import namespace

ns = namespace()


@task
def hello(c):
    \"\"\"A task of the repo itself.\"\"\"
    print("hello from the repo")


ns.add_task(hello)
"""

CONFIG = f"""\
ops:
  container_runtime: {{runtime}}
  sessions:
    {{dev}}:
      backend: tmux
      command: {TICKER_YAML}
      working_dir: "."
    {{prod}}:
      backend: container
      image: "{BUSYBOX_IMAGE}"
      command: "sleep 300"
    Bad-Entry:
      backend: tmux
      command: "sleep 1 && rm -rf /"
"""


class Repo:
    def __init__(self, root: Path, names: dict[str, str]):
        self.root = root
        self.names = names

    def setup(self, runtime: str = "podman") -> None:
        (self.root / "tasks.py").write_text(TASKS_PY)
        (self.root / "kstlib.conf.yml").write_text(CONFIG.format(runtime=runtime, **self.names))

    def inv(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> Done:
        return run_command([INV, *args], cwd or self.root, timeout=timeout)


@pytest.fixture
def repo(tmp_path: Path, unique_name: Callable[[str], str]) -> Repo:
    project = Repo(tmp_path / "repo", {"dev": unique_name("dev"), "prod": unique_name("prod")})
    project.root.mkdir()
    project.setup()
    return project


def test_list_shows_a_collection_per_valid_session(repo: Repo) -> None:
    done = repo.inv("--list").ok()
    dev, prod = repo.names["dev"], repo.names["prod"]
    for verb in ("start", "stop", "restart", "status", "logs", "attach", "wait"):
        assert f"{dev}.{verb}" in done.out
        assert f"{prod}.{verb}" in done.out
        assert f"ops.{verb}" in done.out
    for verb in ("list", "up", "down", "check"):  # generic only
        assert f"ops.{verb}" in done.out and f"{dev}.{verb}" not in done.out
    assert "hello" in done.out
    assert "Bad-Entry" not in done.out  # invalid: no tasks ...
    assert "Bad-Entry" in done.err  # ... and the warning says why


def test_task_help_documents_every_flag_and_the_session(repo: Repo) -> None:
    dev = repo.names["dev"]
    out = repo.inv("--help", f"{dev}.start").ok().out
    assert "tmux: python3 -u -c" in out
    for flag in ("-b STRING, --backend", "-c STRING, --command", "-i STRING, --image",
                 "-e, --env", "-v, --volume", "-p, --port", "-w STRING, --workdir",
                 "-L STRING, --socket"):
        assert flag in out
    prod_stop = repo.inv("--help", f"{repo.names['prod']}.stop").ok().out
    assert f"container: image {BUSYBOX_IMAGE}" in prod_stop
    # numbers stay text for invoke: the shared rules refuse a bad one (exit 2, one line)
    assert "-f, --force" in prod_stop and "-t STRING, --timeout=STRING" in prod_stop
    assert "-n STRING, --lines=STRING" in repo.inv("--help", f"{dev}.logs").ok().out
    assert "--json" in repo.inv("--help", f"{dev}.status").ok().out


def test_the_repos_own_task_runs(repo: Repo) -> None:
    assert repo.inv("hello").ok().out == "hello from the repo\n"


def test_tmux_session_lifecycle_through_inv(repo: Repo, tmux_available) -> None:
    dev = repo.names["dev"]
    repo.inv(f"{dev}.start").ok()
    status = json.loads(repo.inv(f"{dev}.status", "--json").ok().out)
    assert status["state"] == "running" and status["backend"] == "tmux"

    def ticks() -> bool:
        out = repo.inv("ops.logs", dev, "-n", "2").ok().out.splitlines()
        return len(out) == 2 and out[-1].startswith("tick")

    retry_until(ticks, timeout=20)
    repo.inv(f"{dev}.stop", "-t", "5").ok()
    assert json.loads(repo.inv("ops.status", dev, "--json").ok().out)["state"] == "defined"


def test_errors_are_one_line(repo: Repo, tmux_available) -> None:
    dev = repo.names["dev"]
    assert "not running" in repo.inv(f"{dev}.stop").one_line_error()
    assert "lines" in repo.inv(f"{dev}.logs", "-n", "x").one_line_error()
    assert "timeout" in repo.inv(f"{dev}.stop", "-t", "x").one_line_error()
    assert "UPPER/x" in repo.inv(f"{dev}.start", "-b", "container", "-i",
                                 "UPPER/x").one_line_error()
    assert "Bad-Entry" in repo.inv("ops.start", "Bad-Entry").one_line_error()
    assert "nobody" in repo.inv("ops.status", "nobody").one_line_error()
    # invoke's own wording, but naming the option as typed (not "<Argument backend>")
    assert "Flag --backend needed value" in repo.inv(f"{dev}.start", "-b").one_line_error()


def test_help_swallowed_by_the_name_prints_help_and_starts_nothing(repo: Repo,
                                                                   tmux_available) -> None:
    out = repo.inv("ops.start", "--help").ok().out
    assert "ops.start" in out and "--image" in out
    listed = json.loads(repo.inv("ops.list", "--json", "--backend", "tmux").ok().out)
    assert not any(d["name"] == "--help" for d in listed)


def test_config_is_resolved_from_the_tasks_folder(repo: Repo, tmux_available) -> None:
    sub = repo.root / "deep" / "er"
    sub.mkdir(parents=True)
    (sub / "kstlib.conf.yml").write_text("ops:\n  sessions:\n    decoy:\n      command: x\n")
    done = repo.inv("--list", cwd=sub).ok()
    assert f"{repo.names['dev']}.start" in done.out
    assert "decoy" not in done.out


@pytest.mark.containers
def test_container_session_through_inv(repo: Repo, runtime: str) -> None:
    repo.setup(runtime)
    prod = repo.names["prod"]
    repo.inv(f"{prod}.start", "-e", "EXTRA=1").ok()
    status = json.loads(repo.inv(f"{prod}.status", "--json").ok().out)
    assert (status["backend"], status["state"], status["image"]) == (
        "container", "running", BUSYBOX_IMAGE)
    listed = json.loads(repo.inv("ops.list", "--json", "-b", "container").ok().out)
    assert any(d["name"] == prod and d["defined"] for d in listed)
    assert "already running" in repo.inv(f"{prod}.start").one_line_error()
    repo.inv(f"{prod}.stop", "--force").ok()
    assert json.loads(repo.inv(f"{prod}.status", "--json").ok().out)["state"] == "defined"
