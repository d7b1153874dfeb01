"""Smoke test of the test environment itself: real tmux, podman and docker are reachable.

Raw subprocess calls on purpose: this checks the machine (scripts/test.sh prepared it), not
the package. Under CI=true a missing backend or test image fails here instead of skipping.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX_IMAGE, PYTHON_IMAGE, retry_until

TIMEOUT = 120


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.tmux
def test_tmux_runs_a_session_on_the_private_server(
    tmux_available: None, isolated_env: Path, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("smoke")
    tmux = ("tmux", "-L", "smoke")
    script = "echo smoke-$((6 * 7)); exec sleep 60"
    started = run(*tmux, "new-session", "-d", "-s", name, "sh", "-c", script)
    assert started.returncode == 0, started.stderr

    socket = run(*tmux, "display-message", "-p", "-t", f"={name}", "#{socket_path}")
    assert socket.returncode == 0, socket.stderr
    assert socket.stdout.strip().startswith(str(isolated_env / "tmux")), socket.stdout

    def output_seen() -> bool:
        return "smoke-42" in run(*tmux, "capture-pane", "-p", "-t", f"={name}:").stdout

    retry_until(output_seen)


@pytest.mark.containers
@pytest.mark.parametrize(
    ("image", "command", "expected"),
    [
        (BUSYBOX_IMAGE, ("sh", "-c", "echo hello from $(uname -s)"), "hello from Linux"),
        (PYTHON_IMAGE, ("python3", "-c", "import sys; print(sys.version_info >= (3, 11))"), "True"),
    ],
    ids=["busybox", "python"],
)
def test_test_image_runs(
    runtime: str, unique_name: Callable[[str], str], image: str, command: tuple[str, ...],
    expected: str,
) -> None:
    name = unique_name(f"smoke-{runtime}-{image.split('/')[-1].split(':')[0]}")
    result = run(runtime, "run", "--rm", "--pull=never", "--name", name, image, *command)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.podman
@pytest.mark.parametrize("runtime", ["podman"], indirect=True)
def test_podman_uses_the_runc_runtime_of_the_test_containers_conf(runtime: str) -> None:
    result = run("podman", "info", "--format", "{{.Host.OCIRuntime.Name}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "runc"
