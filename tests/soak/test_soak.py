"""Soak: one tmux and one container session printing as fast as they can, then stopped.

Not in the default run (marker ``soak``, deselected by pyproject's addopts); run it as a bench:

    .venv/bin/pytest -m soak -s tests/soak            # 60 s of flood (KSTLIB_SOAK_SECONDS)

It prints the peak resident memory of every process involved (the tmux server, the log copier,
the pane's supervisor, the container's processes, its monitor (conmon, or containerd's shim),
the docker engine, and the `kstlib ops stop` process), the peak size of the runtime's own log
file, the bytes kept in the state folder, and how long each stop took; it asserts the
guarantees: memory bounded, output kept (its last lines are the flood's), stop within its
timeout.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX_IMAGE, KSTLIB, retry_until, run_command

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("KSTLIB_SOAK_SECONDS", "60"))
MEMORY_LIMIT_MB = 200  # far below the 354 MB / 1.9 GB the issue measured before


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return "?"
    return raw.decode(errors="replace")[:60]


class Sampler(threading.Thread):
    """Peak RSS of named process trees (each process counted under the first root that has
    it) and peak size of some files, sampled every 0.5 s."""

    def __init__(self, roots: dict[str, int], files: dict[str, Path]):
        super().__init__(daemon=True)
        self.roots = roots
        self.files = files
        self.peaks: dict[str, float] = {}
        self.sizes: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            seen: set[int] = set()
            for label, root in self.roots.items():
                for pid in [root, *descendants(root)]:
                    if pid in seen:
                        continue
                    seen.add(pid)
                    rss = rss_mb(pid)
                    if rss == 0.0:  # gone between the listing and the read (or a kernel thread)
                        continue
                    key = f"{label}: {command_of(pid)}"
                    self.peaks[key] = max(self.peaks.get(key, 0.0), rss)
            for label, path in self.files.items():
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                self.sizes[label] = max(self.sizes.get(label, 0), size)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def timed_stop(name: str, cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS of the kstlib process in MB, stderr) of one `kstlib ops stop`."""
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", KSTLIB, "ops", "stop", name,
                           "--timeout", "10"], cwd=cwd, capture_output=True, text=True,
                          timeout=180, check=False)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024, done.stderr


def test_flood_tmux_and_container(tmp_path: Path, unique_name, tmux_available, runtime) -> None:
    tmux_name, box_name = unique_name("flood-t"), unique_name("flood-c")
    (tmp_path / "kstlib.conf.yml").write_text(
        f"ops:\n  container_runtime: {runtime}\n  sessions:\n"
        f"    {tmux_name}:\n      command: yes flooding-the-pane\n"
        f"    {box_name}:\n      backend: container\n      image: {BUSYBOX_IMAGE}\n"
        "      command: yes flooding-the-container\n")
    for name in (tmux_name, box_name):
        run_command([KSTLIB, "ops", "start", name], tmp_path).ok()
    server = int(subprocess.run(["tmux", "display-message", "-p", "#{pid}"],
                                capture_output=True, text=True, check=True).stdout)
    inspect = subprocess.run(
        [runtime, "inspect", "--format",
         "{{.State.Pid}} {{if .HostConfig.LogConfig.Path}}{{.HostConfig.LogConfig.Path}}"
         "{{else}}{{.LogPath}}{{end}}", box_name] if runtime == "podman" else
        [runtime, "inspect", "--format", "{{.State.Pid}} {{.LogPath}}", box_name],
        capture_output=True, text=True, check=True)
    box_pid, log_path = inspect.stdout.split(maxsplit=1)
    roots = {"tmux server": server, "container": int(box_pid),
             "monitor": parent_of(int(box_pid))}
    if runtime == "docker":
        engine = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True)
        for pid in engine.stdout.split():
            roots[f"engine {pid}"] = int(pid)
    sampler = Sampler(roots, {f"{runtime}'s own log": Path(log_path.strip())})
    sampler.start()
    time.sleep(SECONDS)
    results = {}
    for name in (tmux_name, box_name):
        results[name] = timed_stop(name, tmp_path)
    sampler.done.set()
    sampler.join()
    state = Path(os.environ["XDG_STATE_HOME"]) / "kstlib-tasks" / "logs"
    kept = {str(p.relative_to(state)): p.stat().st_size for p in state.rglob("*.log*")
            if p.is_file()}
    print(f"\nflood of {SECONDS:g} s on tmux and {runtime}")
    print("peak resident memory (MB):")
    for key, value in sorted(sampler.peaks.items(), key=lambda kv: -kv[1]):
        print(f"  {value:8.1f}  {key}")
    for name, (seconds, peak, _) in results.items():
        print(f"stop {name}: {seconds:.1f} s, kstlib process peak {peak:.1f} MB")
    for label, size in sampler.sizes.items():
        print(f"peak size of {label}: {size / 1024 / 1024:.1f} MB")
    print("bytes kept:", ", ".join(f"{k} {v}" for k, v in sorted(kept.items())))
    # the guarantees
    assert all(value < MEMORY_LIMIT_MB for value in sampler.peaks.values()), sampler.peaks
    assert all(seconds < 60 for seconds, _, _ in results.values())
    assert all(peak < MEMORY_LIMIT_MB for _, peak, _ in results.values())
    assert sum(kept.values()) <= 8 * 1024 * 1024
    for name, word in ((tmux_name, "flooding-the-pane"), (box_name, "flooding-the-container")):
        tail = retry_until(lambda n=name: run_command(
            [KSTLIB, "ops", "logs", n, "--lines", "3"], tmp_path).ok().out, timeout=30)
        assert word in tail
