"""The swarm backend on a real private one-node swarm (tests/swarm_lab.py): what only a swarm
has. The backend contract (start/status/list, exact names, logs while running, after exit and
after stop, exit codes, graceful stop reaching a SIGTERM handler, --force, --timeout, env,
working_dir, exec probe, follow) runs on swarm in tests/contract (the ``swarm`` case).

Here: status details, the output of running tasks kept by stop, a failed task's exit code and
both streams after it ended, id prefixes, foreign services, replicas, restart attempts, list in
3 calls, drift on replicas, a stack mixing swarm and tmux, the CLI's logs -f, a manager that
does not answer, an engine that is not a manager, a missing image, check.

One lab for the module (about 2 s to set up); every test removes its services.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib_tasks import errors
from kstlib_tasks.backends.swarm.backend import SwarmBackend
from kstlib_tasks.config import load_config
from kstlib_tasks.errors import (
    BackendError,
    BackendNotFoundError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
)
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import State
from kstlib_tasks.runner import Runner
from tests import swarm_lab
from tests.helpers import KSTLIB, retry_until, run_command
from tests.integration._swarm import (
    launch,
    remove_services,
    require_lab,
    scripts,
    spec,
    wait_line,
    wait_state,
)
from tests.swarm_lab import BUSYBOX_IMAGE, Swarm

pytestmark = [pytest.mark.swarm]


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    require_lab(registry=False)
    swarm_lab.cleanup_all()
    with swarm_lab.one_node_swarm() as lab:
        yield lab
    assert swarm_lab.leftovers(lab.prefix) == []


@pytest.fixture
def backend(swarm: Swarm) -> Iterator[SwarmBackend]:
    yield SwarmBackend(swarm.docker_host)
    remove_services(swarm)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return scripts(tmp_path)


def config_file(folder: Path, swarm: Swarm, sessions: str) -> Path:
    path = folder / "kstlib.conf.yml"
    path.write_text(f"ops:\n  swarm:\n    docker_host: {swarm.docker_host}\n  sessions:\n"
                    + sessions)
    return path


# ------------------------------------------------------------------------ beyond the contract
# (start/status/list, exact names, logs, exit codes, graceful/forced/timed stops, env,
# working_dir, exec probe and follow run on swarm in tests/contract: the `swarm` case)


def test_status_details_and_the_output_kept_when_running_tasks_are_stopped(
        backend: SwarmBackend, unique_name: Any, folder: Path) -> None:
    name = unique_name("life")
    started = backend.start(launch(spec(name, "sh", "/s/lines.sh", image=BUSYBOX_IMAGE,
                                        folder=folder)))
    assert started.command == "sh /s/lines.sh" and started.details["replicas"] == "0/1"
    running = wait_state(backend, name, State.RUNNING,
                         check=lambda s: s.details["replicas"] == "1/1")
    assert running.image == BUSYBOX_IMAGE and running.restarts == 0
    assert running.recorded is not None and running.details["nodes"]
    wait_line(backend, name, "line5")
    backend.stop(name, timeout=10)
    # the scale-down deletes the tasks with their output: what stop followed is kept
    assert backend.logs(name) == [f"line{i}" for i in range(1, 6)]
    assert backend.logs(name, 2) == ["line4", "line5"]


def test_exit_code_of_a_failed_task_and_both_streams_after_it_ended(
        backend: SwarmBackend, unique_name: Any, folder: Path) -> None:
    name = unique_name("fail")
    backend.start(launch(spec(name, "sh", "/s/fail.sh", image=BUSYBOX_IMAGE, folder=folder)))
    done = wait_state(backend, name, State.EXITED)
    assert done.exit_code == 3 and done.details["last_exit_code"] == 3
    assert done.details["last_error"] == "task: non-zero exit (3)"
    assert sorted(backend.logs(name)) == ["err", "out"]  # both streams, after the task ended
    backend.stop(name)
    assert sorted(backend.logs(name)) == ["err", "out"]  # and kept after stop


def test_an_id_prefix_is_not_a_name(backend: SwarmBackend, swarm: Swarm,
                                    unique_name: Any) -> None:
    name = unique_name("exact")
    backend.start(launch(spec(name, image=BUSYBOX_IMAGE)))
    sid = swarm.docker("service", "inspect", "--format", "{{.ID}}", name).stdout.strip()
    assert backend.status(sid[:8]) is None  # docker itself would take it
    with pytest.raises(SessionNotRunningError):
        backend.stop(sid[:8])
    assert backend.live_logs(sid[:8], None) is None
    assert backend.status(name) is not None


def test_a_foreign_service_is_listed_stoppable_and_never_replaced(
        backend: SwarmBackend, swarm: Swarm, unique_name: Any) -> None:
    name = unique_name("foreign")
    swarm.docker("service", "create", "--detach", "--no-resolve-image", "--endpoint-mode",
                 "dnsrr", "--restart-condition", "none", "--name", name, BUSYBOX_IMAGE,
                 "true")
    wait_state(backend, name, State.EXITED)
    listed = {s.name: s for s in backend.list()}
    assert not listed[name].managed and listed[name].recorded is None
    with pytest.raises(SessionAlreadyRunningError, match="not started by kstlib"):
        backend.start(launch(spec(name, image=BUSYBOX_IMAGE)))
    assert backend.status(name) is not None  # left alone
    backend.stop(name)
    assert backend.status(name) is None


# ------------------------------------------------------------------------ swarm only


def test_replicas_and_their_logs(backend: SwarmBackend, unique_name: Any,
                                 folder: Path) -> None:
    name = unique_name("three")
    backend.start(launch(spec(name, "sh", "/s/term.sh", image=BUSYBOX_IMAGE, folder=folder,
                              replicas=3)))
    running = wait_state(backend, name, State.RUNNING,
                         check=lambda s: s.details["replicas"] == "3/3")
    assert running.restarts == 0
    retry_until(lambda: backend.logs(name).count("ready") == 3, timeout=30)
    stopped = backend.stop(name, timeout=30)
    assert stopped.exit_code == 0
    assert sorted(backend.logs(name)) == ["got SIGTERM"] * 3 + ["ready"] * 3


def test_restart_attempts_are_counted(backend: SwarmBackend, unique_name: Any,
                                      folder: Path) -> None:
    name = unique_name("crash")
    backend.start(launch(spec(name, "sh", "/s/crash.sh", image=BUSYBOX_IMAGE, folder=folder,
                              restart="on-failure", max_restarts=2)))
    done = wait_state(backend, name, State.EXITED, timeout=45)
    assert done.exit_code == 4 and done.restarts == 2  # --restart-max-attempts 2: 3 tasks
    assert {s.name: s for s in backend.list()}[name].restarts == 2
    assert backend.logs(name) == ["attempt"] * 3
    backend.stop(name)
    assert backend.logs(name) == ["attempt"] * 3  # kept after stop


def test_list_makes_three_calls_whatever_the_number_of_services(
        backend: SwarmBackend, unique_name: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [unique_name(f"many{i}") for i in range(4)]
    for name in names:
        backend.start(launch(spec(name, image=BUSYBOX_IMAGE)))
    for name in names:
        wait_state(backend, name, State.RUNNING, check=lambda s: s.details["replicas"] == "1/1")
    calls: list[tuple[str, ...]] = []
    real = Runner.run

    def counted(self: Runner, *args: str, **kw: Any) -> Any:
        calls.append(args[:2])
        return real(self, *args, **kw)

    monkeypatch.setattr(Runner, "run", counted)
    listed = {s.name for s in backend.list()}
    assert set(names) <= listed
    assert sorted(calls) == [("service", "inspect"), ("service", "ls"), ("service", "ps")]


def test_drift_on_replicas_and_cli(swarm: Swarm, backend: SwarmBackend, unique_name: Any,
                                   folder: Path) -> None:
    name = unique_name("drift")
    entry = (f"    {name}:\n      backend: swarm\n      image: {BUSYBOX_IMAGE}\n"
             "      command: sleep 300\n      replicas: 1\n")
    path = config_file(folder, swarm, entry)
    started = run_command([KSTLIB, "ops", "start", name], folder).ok()
    assert started.out.startswith(f"started {name} (swarm, docker host {swarm.docker_host}")
    status = SessionManager(load_config(path)).status(name)
    assert status.defined and status.drifted is False
    path.write_text(path.read_text().replace("replicas: 1", "replicas: 2"))
    status = SessionManager(load_config(path)).status(name)
    assert status.drifted and status.drift == ("replicas",)
    shown = run_command([KSTLIB, "ops", "status", name], folder).ok().out
    assert "Drifted:     yes: replicas changed" in shown and "Replicas:" in shown
    attach = run_command([KSTLIB, "ops", "attach", name], folder)
    assert attach.code == errors.FAILED
    assert attach.one_line_error().endswith(f"(follow its output instead: kstlib ops logs "
                                            f"{name} -f)")
    run_command([KSTLIB, "ops", "stop", name], folder).ok()


def test_up_and_down_of_a_stack_mixing_swarm_and_tmux(swarm: Swarm, unique_name: Any,
                                                      folder: Path, tmux_available: None,
                                                      backend: SwarmBackend) -> None:
    api, client = unique_name("api"), unique_name("client")
    config_file(folder, swarm, (
        f"    {api}:\n      backend: swarm\n      image: {BUSYBOX_IMAGE}\n"
        "      command: sh /s/term.sh\n"
        f"      volumes: ['./s:/s:ro', './data:/data']\n      ready: {{log: ready}}\n"
        f"    {client}:\n      command: sleep 300\n      depends_on: [{api}]\n"))
    up = run_command([KSTLIB, "ops", "up", "--wait", "--timeout", "60"], folder).ok()
    assert f"{api}: ready" in up.err and f"{client}: starting" in up.err
    assert up.err.index(f"{api}: ready") < up.err.index(f"{client}: starting")
    listed = run_command([KSTLIB, "ops", "list"], folder).ok().out
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows[api][1:3] == ["swarm", "running"] and rows[client][1:3] == ["tmux", "running"]
    down = run_command([KSTLIB, "ops", "down"], folder).ok()
    assert down.err.index(f"{client}: stopping") < down.err.index(f"{api}: stopping")
    assert backend.status(api) is None
    assert run_command([KSTLIB, "ops", "logs", api], folder).ok().out.split("\n")[:2] == [
        "ready", "got SIGTERM"]


def test_a_manager_that_does_not_answer(folder: Path, unique_name: Any,
                                        tmux_available: None) -> None:
    dev, bot = unique_name("dev"), unique_name("bot")
    (folder / "kstlib.conf.yml").write_text(
        "ops:\n  swarm:\n    docker_host: unix:///tmp/kstlib-no-such-engine.sock\n"
        f"  sessions:\n    {dev}:\n      command: sleep 300\n"
        f"    {bot}:\n      backend: swarm\n      image: {BUSYBOX_IMAGE}\n")
    run_command([KSTLIB, "ops", "start", dev], folder).ok()
    listed = run_command([KSTLIB, "ops", "list"], folder).ok()
    rows = {line.split()[0]: line.split() for line in listed.out.splitlines()[1:]}
    assert rows[dev][2] == "running" and rows[bot][2] == "unknown"
    assert "warning: swarm unix:///tmp/kstlib-no-such-engine.sock did not answer" in listed.err
    assert "Traceback" not in listed.err
    for verb in (["status", bot], ["start", bot], ["stop", bot], ["logs", bot]):
        done = run_command([KSTLIB, "ops", *verb], folder)
        line = done.one_line_error()
        assert done.code == errors.BACKEND_MISSING, (verb, line)
        assert "does not answer: Cannot connect to the Docker daemon" in line, line
    with pytest.raises(BackendNotFoundError):
        SwarmBackend("unix:///tmp/kstlib-no-such-engine.sock").list()
    run_command([KSTLIB, "ops", "stop", dev], folder).ok()


def test_an_engine_that_is_not_a_manager_is_named(unique_name: Any) -> None:
    """The machine's main engine is not in swarm mode (and must stay so): read only."""
    backend = SwarmBackend(swarm_lab.MAIN_HOST)
    with pytest.raises(BackendNotFoundError, match="is not a swarm manager"):
        backend.list()
    with pytest.raises(BackendNotFoundError, match="is not a swarm manager"):
        backend.status(unique_name("x"))


def test_missing_image_is_reported_by_status(backend: SwarmBackend, unique_name: Any) -> None:
    name = unique_name("noimg")
    backend.start(launch(spec(name, image="localhost/kstlib-no-such-image:1")))
    done = wait_state(backend, name, State.EXITED)
    assert "No such image" in done.details["last_error"]


def test_cli_logs_follow_and_errors_are_one_line(swarm: Swarm, folder: Path,
                                                 unique_name: Any,
                                                 backend: SwarmBackend) -> None:
    name = unique_name("clilog")
    config_file(folder, swarm, (
        f"    {name}:\n      backend: swarm\n      image: {BUSYBOX_IMAGE}\n"
        "      command: sh /s/ticks.sh\n      volumes: ['./s:/s:ro']\n"))
    run_command([KSTLIB, "ops", "start", name], folder).ok()
    follow = subprocess.run([KSTLIB, "ops", "logs", name, "-f"], cwd=folder,
                            capture_output=True, text=True, timeout=60)
    assert follow.returncode == 0 and follow.stdout.split() == ["tick1", "tick2", "tick3"]
    assert wait_state(backend, name, State.EXITED).exit_code == 0
    with pytest.raises(BackendError):
        backend.attach(name)


def test_check_names_an_image_no_node_can_get(swarm: Swarm, folder: Path,
                                               unique_name: Any) -> None:
    good, bad = unique_name("good"), unique_name("bad")
    config_file(folder, swarm, (
        f"    {good}:\n      backend: swarm\n      image: {BUSYBOX_IMAGE}\n"
        f"    {bad}:\n      backend: swarm\n      image: localhost/kstlib-no-such-image:1\n"))
    done = run_command([KSTLIB, "ops", "check"], folder)
    assert done.code == errors.USAGE, done.out
    problems = [line for line in done.out.splitlines()
                if not line.startswith(("warning:", "check:", "uses "))]
    assert len(problems) == 1 and f"session '{bad}': image 'localhost/kstlib-no-such-image:1'"\
        " is not on the manager's engine and names no registry" in problems[0]
    assert f"warning: kstlib.conf.yml:5: session '{good}': image: '{BUSYBOX_IMAGE}' is not "\
        "pinned by digest" in done.out
