"""Faults of the tmux log capture, as a user meets them: the state folder fills up.

The copier (capture.sh) cannot write any more: it records why and stops, tmux stops piping the
pane (so its memory stays bounded), the session keeps running, and `status` and `logs` say that
the output stops there instead of silently showing stale lines. Needs root (a small tmpfs).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import KSTLIB, in_ci, retry_until, run_command

pytestmark = pytest.mark.tmux


@pytest.fixture
def full_logs(isolated_env: Path) -> Iterator[Path]:
    """The tmux log folder on a 256 KiB tmpfs (unmounted afterwards)."""
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("mounting a tmpfs needs root", pytrace=False)
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(os.environ["XDG_STATE_HOME"]) / "kstlib-tasks" / "logs" / "tmux"
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(folder)],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True, check=False)
        retry_until(lambda: subprocess.run(["umount", str(folder)],
                                           capture_output=True).returncode == 0, timeout=30)


def test_a_full_disk_stops_the_capture_and_says_so(tmp_path: Path, unique_name, full_logs,
                                                   tmux_available) -> None:
    name = unique_name("filler")
    (tmp_path / "kstlib.conf.yml").write_text(
        "ops:\n  sessions:\n"
        f"    {name}:\n"
        "      command: python3 -u -c \"[print('x' * 99) for _ in range(20000)] and None or "
        "__import__('time').sleep(300)\"\n")
    run_command([KSTLIB, "ops", "start", name], tmp_path).ok()

    def noted() -> str | None:
        done = run_command([KSTLIB, "ops", "status", name, "--json"], tmp_path).ok()
        return json.loads(done.out)["note"]

    note = retry_until(noted, timeout=60)
    assert "log capture stopped" in note and "No space left on device" in note
    status = json.loads(run_command([KSTLIB, "ops", "status", name, "--json"], tmp_path).out)
    assert status["state"] == "running"  # the session goes on, unlogged
    logs = run_command([KSTLIB, "ops", "logs", name, "--lines", "2"], tmp_path).ok()
    assert "log capture stopped: No space left on device" in logs.err
    assert "the output stops there" in logs.err
    stop = run_command([KSTLIB, "ops", "stop", name, "--timeout", "5"], tmp_path)
    assert stop.code == 0, stop.err


def test_a_tiny_log_bound_keeps_tmux_memory_bounded_and_the_stop_graceful(
        tmp_path: Path, unique_name, tmux_available, monkeypatch: pytest.MonkeyPatch) -> None:
    """``KSTLIB_LOG_MAX_BYTES=4096`` under ``yes`` (was: the tmux server grew from 5 to 354 MB
    in 40 s and the graceful stop failed). The bound is raised to its floor (1 MiB), so the
    copier keeps up: the server's memory stays small, the log stays within two files of the
    floor, and the stop ends the flood."""
    import time

    monkeypatch.setenv("KSTLIB_LOG_MAX_BYTES", "4096")
    name = unique_name("tiny")
    (tmp_path / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    {name}:\n      command: yes flooding-the-pane\n")
    run_command([KSTLIB, "ops", "start", name], tmp_path).ok()
    server = int(subprocess.run(["tmux", "display-message", "-p", "#{pid}"],
                                capture_output=True, text=True, check=True).stdout)

    def rss_mb() -> float:
        for line in Path(f"/proc/{server}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    peak, until = 0.0, time.monotonic() + 8
    while time.monotonic() < until:
        peak = max(peak, rss_mb())
        time.sleep(0.25)
    assert peak < 50, f"the tmux server grew to {peak:.0f} MB"
    stopped = run_command([KSTLIB, "ops", "stop", name, "--timeout", "10"], tmp_path)
    assert stopped.code == 0, stopped.err
    folder = Path(os.environ["XDG_STATE_HOME"]) / "kstlib-tasks" / "logs" / "tmux"
    kept = sum(p.stat().st_size for p in folder.rglob(f"{name}.log*") if p.is_file())
    assert 0 < kept <= 2 * 1024 * 1024 + 4096, kept
    tail = run_command([KSTLIB, "ops", "logs", name, "--lines", "3"], tmp_path).ok().out
    assert "flooding-the-pane" in tail
