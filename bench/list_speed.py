"""How long `kstlib ops list --json` and `inv --list` take with a realistic config.

Builds, in a private temp folder, a kstlib.conf.yml of 50 sessions, starts 20 of them in tmux (a
private server through TMUX_TMPDIR) and 10 in containers (busybox image, podman or docker), then
times, side by side and interleaved so machine noise hits both alike:

- `kstlib ops list --json` against its floor: the venv's Python importing `sh` alone (the one
  library the listing path needs), plus one raw tmux listing and one raw `<runtime> ps -a`,
  which is the least any implementation of that listing must pay;
- `inv --list` on a tasks.py generated from that config against `inv --list` on a one-task
  tasks.py.

Prints medians and ratios (targets: list <= 1.25x its floor, inv --list <= 1.5x its baseline).
Run: `.venv/bin/python bench/list_speed.py [--runs 15] [--runtime podman|docker]`.
Everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE = "localhost/kstlib-test-busybox:latest"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def floor_run(env: dict[str, str], cwd: Path, runtime: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sh"], env=env, cwd=cwd, check=True)
    subprocess.run(
        ["tmux", "list-panes", "-a", "-F", "#{session_name} #{pane_pid} #{pane_dead}"],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [runtime, "ps", "-a", "--format", "json" if runtime == "podman" else "{{json .}}"],
        env=env,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def write_config(folder: Path, prefix: str, runtime: str) -> list[str]:
    lines = ["ops:", f"  container_runtime: {runtime}", "  sessions:"]
    names = []
    for i in range(50):
        name = f"{prefix}-s{i:02d}"
        names.append(name)
        if 20 <= i < 30:
            lines += [
                f"    {name}:",
                "      backend: container",
                f"      image: {IMAGE}",
                "      command: sleep 600",
                "      env: {BENCH: '1'}",
            ]
        else:
            lines += [f"    {name}:", "      command: sleep 600", "      env: {BENCH: '1'}"]
    (folder / "kstlib.conf.yml").write_text("\n".join(lines) + "\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--runtime", default=None, help="podman or docker (default: auto)")
    args = parser.parse_args()
    runtime = args.runtime or ("podman" if shutil.which("podman") else "docker")

    root = Path(tempfile.mkdtemp(prefix="ktb", dir="/tmp"))
    prefix = f"kb{uuid.uuid4().hex[:5]}"
    env = {
        **os.environ,
        "TMUX_TMPDIR": str(root / "tmux"),
        "XDG_STATE_HOME": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),  # the config cache too: nothing left behind
        "NO_COLOR": "1",
    }
    env.setdefault("CONTAINERS_CONF", str(REPO / "tests" / "containers.conf"))
    env.pop("TMUX", None)
    env.pop("KSTLIB_CONFIG", None)
    (root / "tmux").mkdir()
    work = root / "project"
    baseline = root / "baseline"
    work.mkdir()
    baseline.mkdir()
    names = write_config(work, prefix, runtime)
    (work / "tasks.py").write_text("from kstlib_tasks import namespace\n\nns = namespace()\n")
    (baseline / "tasks.py").write_text(
        "from invoke import task\n\n\n@task\ndef hello(c):\n    print('hello')\n"
    )
    # As after a regular `pip install`: bytecode present (an editable install has none).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "kstlib_tasks")],
                   check=True, stdout=subprocess.DEVNULL)
    kstlib = str(BIN / "kstlib")
    inv = str(BIN / "inv")
    try:
        print(f"starting 20 tmux sessions and 10 {runtime} containers ...", file=sys.stderr)
        for name in names[:30]:
            subprocess.run(
                [kstlib, "ops", "start", name],
                env=env,
                cwd=work,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        samples: dict[str, list[float]] = {k: [] for k in ("list", "floor", "inv", "inv1")}
        for _ in range(2):  # warm caches (page cache, runtime state) before measuring
            timed([kstlib, "ops", "list", "--json"], env, work)
            timed([inv, "--list"], env, work)
        for _ in range(args.runs):
            samples["list"].append(timed([kstlib, "ops", "list", "--json"], env, work))
            samples["floor"].append(floor_run(env, work, runtime))
            samples["inv"].append(timed([inv, "--list"], env, work))
            samples["inv1"].append(timed([inv, "--list"], env, baseline))
        med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
        print(
            f"runs: {args.runs} each, runtime: {runtime}, config: 50 sessions "
            f"(20 running in tmux, 10 in containers)"
        )
        print(f"kstlib ops list --json      median {med['list']:7.1f} ms")
        print(f"floor (import sh+tmux+ps)   median {med['floor']:7.1f} ms")
        print(f"  ratio list/floor          {med['list'] / med['floor']:.2f}x   (target <= 1.25x)")
        print(f"inv --list (50 sessions)    median {med['inv']:7.1f} ms")
        print(f"inv --list (one task)       median {med['inv1']:7.1f} ms")
        print(f"  ratio inv/baseline        {med['inv'] / med['inv1']:.2f}x   (target <= 1.5x)")
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)
        listing = subprocess.run(
            [runtime, "ps", "-a", "--format", "{{.Names}}"], env=env, capture_output=True, text=True
        )
        mine = [n for n in listing.stdout.split() if n.startswith(prefix)]
        if mine:
            subprocess.run([runtime, "rm", "-f", *mine], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
