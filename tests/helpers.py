"""Small helpers shared by the integration tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

BUSYBOX_IMAGE = "localhost/kstlib-test-busybox:latest"
PYTHON_IMAGE = "localhost/kstlib-test-python:latest"
RUNTIMES = ("podman", "docker")

VENV_BIN = Path(sys.executable).parent
KSTLIB = str(VENV_BIN / "kstlib")
INV = str(VENV_BIN / "inv")
# Prints "tick N" three times a second, with no shell syntax (the validators refuse ; & | ...).
TICKER = ("python3 -u -c \"[print('tick', i, flush=True) or __import__('time').sleep(0.3) "
          "for i in range(100000)]\"")
TICKER_YAML = json.dumps(TICKER)  # a JSON string is a valid double-quoted YAML scalar


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


@dataclass
class Done:
    """A finished command: exit code, stdout, stderr, with the checks every CLI test makes."""

    code: int
    out: str
    err: str

    def ok(self) -> Done:
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return self

    def one_line_error(self) -> str:
        """The error line (the config's own "warning:" lines may come before it)."""
        assert self.code != 0, self.out
        assert "Traceback" not in self.err, self.err
        lines = [x for x in self.err.strip().splitlines() if not x.startswith("warning: ")]
        assert len(lines) == 1, self.err
        assert self.out == ""
        return lines[0]


def run_command(argv: list[str], cwd: Path, *, env: dict[str, str] | None = None,
                timeout: float = 120) -> Done:
    """Run ``argv`` to its end in ``cwd``, output captured as text."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    return Done(done.returncode, done.stdout, done.stderr)


def run_in_terminal(argv: list[str], cwd: Path, *, env: dict[str, str] | None = None,
                    typing: Callable[[str], bytes | None] | None = None,
                    timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its terminal, as a user at a shell would.

    ``typing(output_so_far)`` is called about every 0.1 s and may return keys to type; the
    run ends when the program exits. Returns (exit code, everything it wrote). After
    ``timeout`` the program is killed and the test fails: never a hang, never a leftover.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env if env is not None else os.environ)
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + timeout
    finished = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed its terminal
                    break
                if not chunk:
                    break
                output += chunk
            keys = typing(output.decode(errors="replace")) if typing else None
            if keys:
                os.write(fd, keys)
        else:
            raise AssertionError(f"{argv} still running after {timeout}s: {output[-500:]!r}")
        finished = True
    finally:
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")
