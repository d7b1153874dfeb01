"""What the swarm backend's integration tests share: the lab check, scripts, waits.

The lab (tests/swarm_lab.py) needs root, dockerd, nsenter/unshare, iproute2 and the main engine
(for the busybox image); the two-node lab also needs Debian's ``docker-registry``. When
something is missing the tests skip locally and FAIL in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kstlib_tasks.backends.base import Launch
from kstlib_tasks.backends.swarm import SwarmOptions
from kstlib_tasks.backends.swarm.backend import SwarmBackend
from kstlib_tasks.engine.launch import prepare
from kstlib_tasks.models import SessionSpec, SessionStatus, State
from tests.helpers import in_ci, retry_until
from tests.swarm_lab import DOCKER, MAIN_HOST, Swarm, run

# Scripts run by busybox's sh from a mounted folder (commands may not hold shell syntax).
SCRIPTS = {
    "term.sh": 'trap \'echo "TERM $$" > /data/marker; echo got SIGTERM; exit 0\' TERM\n'
               "echo ready\nwhile true; do sleep 0.1; done\n",
    "fail.sh": "echo out\necho err >&2\nexit 3\n",
    "crash.sh": "echo attempt\nexit 4\n",
    "lines.sh": "for i in 1 2 3 4 5; do echo line$i; done\nexec sleep 300\n",
    "ticks.sh": "for i in 1 2 3; do echo tick$i; sleep 0.3; done\n",
}


def lab_problem(*, registry: bool) -> str | None:
    if os.geteuid() != 0:
        return "the swarm lab needs root (network namespaces, private dockerd)"
    tools = ["dockerd", "nsenter", "unshare", "ip", "umount", "docker"]
    if registry:
        tools.append("docker-registry")
    missing = [t for t in tools if shutil.which(t) is None]
    if not os.access(DOCKER, os.X_OK):
        missing.append(DOCKER)
    if missing:
        return f"missing for the swarm lab: {', '.join(missing)}"
    probe = run([DOCKER, "-H", MAIN_HOST, "info", "--format", "{{.ID}}"], check=False)
    if probe.returncode != 0:
        return f"the main docker engine ({MAIN_HOST}) does not answer: {probe.stderr.strip()}"
    return None


def require_lab(*, registry: bool) -> None:
    problem = lab_problem(registry=registry)
    if problem:
        if in_ci():
            pytest.fail(f"swarm lab unavailable in CI (never skipped): {problem}", pytrace=False)
        pytest.skip(problem)


def scripts(folder: Path) -> Path:
    """The test scripts in ``folder/s`` and an empty ``folder/data``; returns ``folder``."""
    (folder / "s").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    os.chmod(folder / "data", 0o777)
    for name, text in SCRIPTS.items():
        (folder / "s" / name).write_text(text)
    return folder


def spec(name: str, *command: str, image: str, folder: Path | None = None,
         **options: Any) -> SessionSpec:
    """A swarm spec; with ``folder``, its scripts at /s and its data folder at /data."""
    common = {k: options.pop(k) for k in ("restart", "max_restarts", "env", "ready")
              if k in options}
    volumes = options.pop("volumes", ())
    if folder is not None:
        volumes = (f"{folder}/s:/s:ro", f"{folder}/data:/data", *volumes)
    return SessionSpec(name=name, backend="swarm", command=command or ("sleep", "300"),
                       options=SwarmOptions(image_ref=image, volumes=tuple(volumes), **options),
                       **common)


def launch(the_spec: SessionSpec) -> Launch:
    return prepare(the_spec, {})


def wait_state(backend: SwarmBackend, name: str, state: State, timeout: float = 30,
               check: Callable[[SessionStatus], bool] = lambda s: True) -> SessionStatus:
    def reached() -> SessionStatus | None:
        status = backend.status(name)
        return status if status is not None and status.state is state and check(status) else None

    try:
        return retry_until(reached, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"{name} never {state.value}: {backend.status(name)}") from None


def wait_line(backend: SwarmBackend, name: str, text: str, timeout: float = 30) -> None:
    try:
        retry_until(lambda: text in backend.logs(name), timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"{name} never printed {text!r}: {backend.logs(name)[-10:]}, "
                             f"status {backend.status(name)}") from None


def remove_services(swarm: Swarm) -> None:
    ids = swarm.docker("service", "ls", "-q", check=False).stdout.split()
    if ids:
        swarm.docker("service", "rm", *ids, check=False)
