"""Small helpers shared by the integration tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BUSYBOX_IMAGE = "localhost/kstlib-test-busybox:latest"
PYTHON_IMAGE = "localhost/kstlib-test-python:latest"
RUNTIMES = ("podman", "docker")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def retry_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with its last value after timeout.

    Tests wait on conditions, never on fixed sleeps.
    """
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = check()
    return value


def runtime_problem(runtime: str) -> str | None:
    """Why ``runtime`` cannot run the tests here, or None when it can (images included)."""
    if shutil.which(runtime) is None:
        return f"{runtime} is not installed"
    info = subprocess.run([runtime, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"'{runtime} info' failed: {info.stderr.strip().splitlines()[-1:]}"
    for image in (BUSYBOX_IMAGE, PYTHON_IMAGE):
        probe = subprocess.run(
            [runtime, "image", "inspect", image], capture_output=True, text=True, timeout=60
        )
        if probe.returncode != 0:
            return f"test image {image} missing on {runtime} (run scripts/test.sh to build it)"
    return None


def tmux_problem() -> str | None:
    if shutil.which("tmux") is None:
        return "tmux is not installed"
    return None


def remove_containers(runtime: str, prefix: str) -> None:
    """Remove every container whose name starts with ``prefix`` (one listing call)."""
    listing = subprocess.run(
        [runtime, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=60
    )
    names = [n for n in listing.stdout.split() if n.startswith(prefix)]
    if names:
        subprocess.run([runtime, "rm", "-f", *names], capture_output=True, timeout=120)
