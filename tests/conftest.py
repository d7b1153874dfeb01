"""Test isolation and the real backends.

Every test gets a private tmux server (``TMUX_TMPDIR``), a private state folder for logs
(``XDG_STATE_HOME``) and a name prefix unique to this run, so nothing touches the user's sessions
and every container a test starts can be found and removed. Backends are real: when one is
missing, the test is skipped locally and FAILS in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import RUNTIMES, in_ci, remove_containers, runtime_problem, tmux_problem

REPO = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:6]
PREFIX = f"kt{RUN_ID}"

# Podman needs runc and explicit ulimits on these machines: a test-owned containers.conf.
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests" / "containers.conf"))


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"backend missing in CI (never skipped): {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private TMUX_TMPDIR, XDG_STATE_HOME and cwd; kills the private tmux servers afterwards.

    The folder lives directly under /tmp with a short name: tmux socket paths are limited to
    about 100 characters, which pytest's tmp_path can exceed.
    """
    root = Path(tempfile.mkdtemp(prefix="kt", dir="/tmp"))
    (root / "tmux").mkdir()
    (root / "state").mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(root / "tmux"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    yield root
    for socket in (root / "tmux").glob("tmux-*/*"):
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, timeout=30)
    _wait_for_log_copiers(root / "state")
    shutil.rmtree(root, ignore_errors=True)


def _wait_for_log_copiers(state: Path, timeout: float = 10.0) -> None:
    """Let the log copiers of killed tmux sessions finish before their folder is removed.

    A session still running at the end of a test has a ``pipe-pane`` copier; when the server
    dies it reads to the end and exits, and its shell removes its ``.pipe-*`` marker. A copier
    still starting up then would recreate the state folder after ``rmtree`` (it creates its
    parents), leaving a folder in /tmp behind: seen about once in 300 tests.
    """
    deadline = time.monotonic() + timeout
    while any(state.rglob("*.pipe-*")) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("bot")`` -> ``kt1a2b3c-bot``: valid session name, unique to this run."""

    def make(base: str) -> str:
        return f"{PREFIX}-{base}"

    return make


@pytest.fixture
def tmux_available() -> None:
    problem = tmux_problem()
    if problem:
        _unavailable(problem)


_runtime_problems: dict[str, str | None] = {}


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each container test runs on podman and on docker; removes what the test started."""
    name: str = request.param
    if name not in _runtime_problems:
        _runtime_problems[name] = runtime_problem(name)
    if _runtime_problems[name]:
        _unavailable(_runtime_problems[name] or "")
    yield name
    remove_containers(name, PREFIX)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last resort: nothing of this run may stay behind, even after a crashed test."""
    for name in RUNTIMES:
        if shutil.which(name) and _runtime_problems.get(name) is None and name in _runtime_problems:
            remove_containers(name, PREFIX)
