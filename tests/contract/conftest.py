"""One backend contract, every backend: the ``case`` fixture.

Each contract test runs once per case: ``tmux`` (a private server, see ``isolated_env``),
``container-podman`` and ``container-docker`` (the locally built test images, never pulled),
``swarm`` (a private one-node swarm of ``tests/swarm_lab.py``, one for the module, with both test
images loaded), and ``fake`` (``tests/fakes.py``'s ``FakeBackend``, skipped only while that
module does not exist).
A test drives the backend object exactly as the engine does: a ``SessionSpec``, a ``Launch`` from
:func:`kstlib_tasks.engine.launch.prepare`, then ``start``/``status``/``list``/``logs``/``stop``.

What differs between backends is described by the :class:`Case`, never tested with ``if``: the
signal a graceful stop sends, the folder a command can write to (a volume for containers), how
to make something that is *named like* a session without being one, whether a status carries a
pid (a swarm service has none: its tasks run on nodes; its service id names the run instead).

A backend that cannot honour part of the contract says so: ``FakeBackend.CONTRACT_UNSUPPORTED``
(an iterable of :data:`FEATURES` names) skips the scenarios needing them, with that reason.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kstlib_tasks import backends
from kstlib_tasks.backends.base import Backend, Launch
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.backends.container.backend import ContainerBackend
from kstlib_tasks.backends.swarm import SwarmOptions
from kstlib_tasks.backends.swarm.backend import SwarmBackend
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.backends.tmux.backend import TmuxBackend
from kstlib_tasks.engine.launch import prepare
from kstlib_tasks.models import Options, SessionSpec, SessionStatus
from tests import swarm_lab
from tests.conftest import PREFIX, _unavailable
from tests.helpers import (
    BUSYBOX_IMAGE,
    PYTHON_IMAGE,
    remove_containers,
    runtime_problem,
    tmux_problem,
)
from tests.integration._swarm import lab_problem, remove_services

# What a scenario may need beyond start/status/list/stop of a name:
FEATURES = {
    "processes": "the command really runs (files, environment, working folder, exit codes)",
    "signals": "a graceful stop sends a signal the command can handle",
    "probe": "run_probe runs a command where the session lives",
    "lookalikes": "something can be named like a session without being one",
}
TMUX_SOCKET = "kt-contract"


@dataclass
class Case:
    """One backend (and scope) under the contract, with what its commands can see."""

    id: str
    backend: Backend
    backend_name: str  # the registry name a spec of this backend carries
    stop_signal: int  # what a graceful stop delivers to the command
    shared: Path  # a host folder the command can read and write...
    inside: str  # ...and its path as the command sees it
    wait: float  # generous bound for anything to happen (shared, loaded machine)
    list_has_pid: bool = True
    has_pid: bool = True  # start and status give the command's pid
    # what tells one run of a session from another: its pid, or an id when there is no pid
    run_id: Callable[[SessionStatus], object] = field(default=lambda status: status.pid)
    kill_code: int = 137  # exit code of a command killed with SIGKILL
    unsupported: frozenset[str] = frozenset()
    make_options: Callable[[bool], Options] = field(default=lambda python: Options())
    lookalike: Callable[[str], contextlib.AbstractContextManager[None]] | None = None

    def require(self, *features: str) -> None:
        missing = [f for f in features if f in self.unsupported]
        if missing:
            pytest.skip(f"{self.id} does not support: "
                        + "; ".join(FEATURES.get(f, f) for f in missing))

    def spec(self, name: str, *argv: str, python: bool = False,
             env: dict[str, str] | None = None, working_dir: str | None = None) -> SessionSpec:
        return SessionSpec(name, self.backend_name, tuple(argv), env=env or {},
                           working_dir=working_dir, options=self.make_options(python))

    def launch(self, spec: SessionSpec) -> Launch:
        if self.backend_name in backends.names():
            return prepare(spec, {})
        return Launch(spec=spec, argv=spec.command, env=dict(spec.env))  # unregistered fake

    def start(self, name: str, *argv: str, **kw: Any) -> SessionStatus:
        return self.backend.start(self.launch(self.spec(name, *argv, **kw)))

    def script(self, filename: str, body: str) -> str:
        """Write a Python script into the shared folder; its path as the command sees it."""
        (self.shared / filename).write_text(textwrap.dedent(body))
        return f"{self.inside}/{filename}"

    def python(self, filename: str, body: str, *args: str) -> tuple[str, ...]:
        """The argv running ``body`` with ``python3`` (unbuffered), the shared folder first."""
        return ("python3", "-u", self.script(filename, body), self.inside, *args)


# --------------------------------------------------------------------------- the cases


def _tmux_case(root: Path) -> Case:
    problem = tmux_problem()
    if problem:
        _unavailable(problem)
    if shutil.which("python3") is None:
        _unavailable("python3 is not in PATH (tmux scenarios run python3 scripts)")
    shared = root / "shared"
    shared.mkdir()

    @contextlib.contextmanager
    def window_named(name: str) -> Iterator[None]:
        # another session whose window is called like the session: tmux's `-t name` would
        # happily pick it (a window name is a target too)
        other = f"{name}-other"
        base = ["tmux", "-L", TMUX_SOCKET]
        subprocess.run([*base, "new-session", "-d", "-s", other, "-n", name, "sleep 300"],
                       check=True, timeout=30)
        try:
            yield
        finally:
            subprocess.run([*base, "kill-session", "-t", f"={other}"], timeout=30,
                           capture_output=True)

    return Case(
        id="tmux", backend=TmuxBackend(TMUX_SOCKET), backend_name="tmux",
        stop_signal=2, shared=shared, inside=str(shared), wait=30,
        make_options=lambda python: TmuxOptions(socket_name=TMUX_SOCKET),
        lookalike=window_named,
    )


_runtime_problems: dict[str, str | None] = {}


def _container_case(runtime: str, root: Path) -> Case:
    if runtime not in _runtime_problems:
        _runtime_problems[runtime] = runtime_problem(runtime)
    if _runtime_problems[runtime]:
        _unavailable(_runtime_problems[runtime] or "")
    shared = root / "shared"
    shared.mkdir()
    volume = f"{shared}:/shared"

    @contextlib.contextmanager
    def image_named(name: str) -> Iterator[None]:
        tag = f"{name}:latest"
        subprocess.run([runtime, "tag", BUSYBOX_IMAGE, tag], check=True, timeout=60,
                       capture_output=True)
        try:
            yield
        finally:
            subprocess.run([runtime, "rmi", tag], timeout=60, capture_output=True)

    return Case(
        id=f"container-{runtime}", backend=ContainerBackend(runtime), backend_name="container",
        stop_signal=15, shared=shared, inside="/shared", wait=60,
        list_has_pid=runtime == "podman",  # docker's ps has no pid (status has it)
        make_options=lambda python: ContainerOptions(
            image_ref=PYTHON_IMAGE if python else BUSYBOX_IMAGE, volumes=(volume,)),
        lookalike=image_named,
    )


def _swarm_problem() -> str | None:
    problem = lab_problem(registry=False)
    if problem:
        return problem
    for image in (BUSYBOX_IMAGE, PYTHON_IMAGE):
        found = swarm_lab.run([swarm_lab.DOCKER, "-H", swarm_lab.MAIN_HOST, "image", "inspect",
                               image], check=False)
        if found.returncode != 0:
            return (f"test image {image} missing on the main docker engine (the swarm lab "
                    "copies it from there; run scripts/test.sh to build it)")
    return None


@pytest.fixture(scope="module")
def contract_swarm() -> Iterator[swarm_lab.Swarm]:
    """One private one-node swarm for the module (created by the first swarm case), with both
    test images loaded; torn down at the end of the module, nothing of it left behind."""
    problem = _swarm_problem()
    if problem:
        _unavailable(problem)
    swarm_lab.cleanup_all()  # what crashed runs left (a live run of another session is kept)
    with swarm_lab.one_node_swarm(image=BUSYBOX_IMAGE) as lab:
        lab.manager.load_image(PYTHON_IMAGE)
        yield lab
    left = swarm_lab.leftovers(lab.prefix)
    assert left == [], left


def _swarm_case(swarm: swarm_lab.Swarm, root: Path) -> Case:
    shared = root / "shared"  # the lab's engine shares the host's filesystem
    shared.mkdir()
    volume = f"{shared}:/shared"

    @contextlib.contextmanager
    def task_and_claim_named(name: str) -> Iterator[None]:
        # a plain container of that name on the manager, labelled like a task of a service of
        # that name, and a service of another name whose kstlib label claims the session
        swarm.docker("run", "--detach", "--network", "none", "--name", name,
                     "--label", f"com.docker.swarm.service.name={name}",
                     "--label", "com.docker.swarm.service.id=0123456789abcdef0123456789",
                     "--label", f"io.kstlib.session={name}", BUSYBOX_IMAGE, "sleep", "300")
        swarm.docker("service", "create", "--detach", "--no-resolve-image", "--replicas", "0",
                     "--name", f"{name}-claim", "--label", f"io.kstlib.session={name}",
                     BUSYBOX_IMAGE, "sleep", "300")
        try:
            yield
        finally:
            swarm.docker("rm", "--force", name, check=False)
            swarm.docker("service", "rm", f"{name}-claim", check=False)

    return Case(
        id="swarm", backend=SwarmBackend(swarm.docker_host), backend_name="swarm",
        stop_signal=15,  # SIGTERM, through the task's init (--init)
        shared=shared, inside="/shared", wait=60,
        # a service has no pid: start returns before any task exists, the tasks run on
        # nodes (replicas, other engines); the service id tells one run from another
        list_has_pid=False, has_pid=False, run_id=lambda status: status.details.get("id"),
        # a long grace period: what ignores SIGTERM must be ended by stop's timeout (or
        # --force), which swarm's own SIGKILL after the grace period would otherwise hide
        make_options=lambda python: SwarmOptions(
            image_ref=PYTHON_IMAGE if python else BUSYBOX_IMAGE, volumes=(volume,),
            stop_grace_period=120),
        lookalike=task_and_claim_named,
    )


def _fake_case(root: Path) -> Case:
    try:
        fakes = importlib.import_module("tests.fakes")
    except ModuleNotFoundError as exc:
        if exc.name != "tests.fakes":
            raise
        pytest.skip("tests/fakes.py does not exist (yet): no fake backend to check")
    fake_class = fakes.FakeBackend
    backend = fake_class()
    shared = root / "shared"
    shared.mkdir()
    kind = getattr(backend, "kind", "fake")
    return Case(
        id="fake", backend=backend, backend_name=kind,
        stop_signal=getattr(fake_class, "CONTRACT_STOP_SIGNAL", 15), shared=shared,
        inside=str(shared), wait=30,
        unsupported=frozenset(getattr(fake_class, "CONTRACT_UNSUPPORTED", ())),
    )


CASES = [
    pytest.param("tmux", marks=pytest.mark.tmux, id="tmux"),
    pytest.param("podman", marks=[pytest.mark.containers, pytest.mark.podman],
                 id="container-podman"),
    pytest.param("docker", marks=[pytest.mark.containers, pytest.mark.docker],
                 id="container-docker"),
    pytest.param("swarm", marks=pytest.mark.swarm, id="swarm"),
    pytest.param("fake", id="fake"),
]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[Case]:
    """The backend under test; everything it started is removed afterwards."""
    which: str = request.param
    swarm: swarm_lab.Swarm | None = None
    if which == "tmux":
        made = _tmux_case(isolated_env)
    elif which == "swarm":
        swarm = request.getfixturevalue("contract_swarm")
        made = _swarm_case(swarm, isolated_env)
    elif which == "fake":
        made = _fake_case(isolated_env)
    else:
        made = _container_case(which, isolated_env)
    try:
        yield made
    finally:
        if which in ("podman", "docker"):
            remove_containers(which, PREFIX)
        if swarm is not None:
            remove_services(swarm)  # (the lab is private: every service is this test's)
        # (tmux: isolated_env kills the private servers)

