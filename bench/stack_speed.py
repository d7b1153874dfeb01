"""How fast `kstlib ops up` and `down` are, against what the same work costs done by hand.

Builds, in a private temp folder, a kstlib.conf.yml of 10 tmux sessions and 10 containers with
no dependencies (busybox image, `sleep 600`), then times, side by side and interleaved so that
machine noise hits both alike:

- `kstlib ops up` against its floor: the same 20 starts issued in parallel by a plain script
  (10 `tmux new-session -d` + 10 `RUNTIME run -d --init`), the least any tool must pay;
- `kstlib ops down` against its floor: the same 20 graceful stops in parallel (10 `tmux
  kill-session`, 10 `RUNTIME stop` then `rm`);
- with --compose (podman only, needs PyPI): `podman-compose up -d` / `down` of the same 10
  containers, installed in a private venv (pip install podman-compose);
- readiness latency: `up --wait` of a server that starts listening 1 s after launch, measured
  from the moment the port opens to the moment `up` returns (median).

Prints medians and ratios (targets: up <= 1.5x, down <= 1.5x, latency <= 0.15 s).
Run: `.venv/bin/python bench/stack_speed.py [--runs 5] [--runtime podman|docker] [--compose]`.
Everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE = "localhost/kstlib-test-busybox:latest"
COUNT = 10


def run(argv: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> None:
    subprocess.run(argv, env=env, cwd=cwd, check=check, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def parallel(commands: list[list[str]], env: dict[str, str], cwd: Path) -> None:
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        list(pool.map(lambda argv: run(argv, env, cwd), commands))


def write_config(folder: Path, prefix: str, runtime: str) -> tuple[list[str], list[str]]:
    lines = ["ops:", f"  container_runtime: {runtime}", "  sessions:"]
    tmux_names, container_names = [], []
    for i in range(COUNT):
        name = f"{prefix}-t{i:02d}"
        tmux_names.append(name)
        lines += [f"    {name}:", "      command: sleep 600"]
    for i in range(COUNT):
        name = f"{prefix}-c{i:02d}"
        container_names.append(name)
        lines += [f"    {name}:", "      backend: container", f"      image: {IMAGE}",
                  "      command: sleep 600"]
    (folder / "kstlib.conf.yml").write_text("\n".join(lines) + "\n")
    return tmux_names, container_names


def raw_up(env, cwd, runtime, tmux_names, container_names) -> None:
    commands = [["tmux", "new-session", "-d", "-s", n, "sleep", "600"] for n in tmux_names]
    commands += [[runtime, "run", "-d", "--init", "--name", n, IMAGE, "sleep", "600"]
                 for n in container_names]
    parallel(commands, env, cwd)


def raw_down(env, cwd, runtime, tmux_names, container_names) -> None:
    commands = [["tmux", "kill-session", "-t", f"={n}"] for n in tmux_names]
    commands += [["sh", "-c", f'{runtime} stop -t 10 "$1" && {runtime} rm "$1"', "sh", n]
                 for n in container_names]
    parallel(commands, env, cwd)


def cleanup(env, cwd, runtime, prefix) -> None:
    run(["tmux", "kill-server"], env, cwd, check=False)
    listing = subprocess.run([runtime, "ps", "-a", "--format", "{{.Names}}"], env=env,
                             capture_output=True, text=True, check=False)
    mine = [n for n in listing.stdout.split() if n.startswith(prefix)]
    if mine:
        run([runtime, "rm", "-f", *mine], env, cwd, check=False)


def compose_venv(root: Path) -> Path | None:
    venv = root / "compose-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "podman-compose"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return venv / "bin" / "podman-compose"


def write_compose(folder: Path, container_names: list[str]) -> None:
    lines = ["services:"]
    for name in container_names:
        lines += [f"  {name}:", f"    image: {IMAGE}", "    command: [sleep, '600']",
                  f"    container_name: {name}", "    init: true"]
    (folder / "compose.yaml").write_text("\n".join(lines) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def latency_once(env: dict[str, str], root: Path, kstlib: str, prefix: str) -> float:
    """Seconds between the port opening and `up --wait` returning."""
    folder = root / f"latency-{uuid.uuid4().hex[:4]}"
    folder.mkdir()
    port = free_port()
    marker = folder / "opened"
    (folder / "server.py").write_text(
        "import socket, time, pathlib\n"
        "time.sleep(1.0)\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen(16)\n"
        f"pathlib.Path({str(marker)!r}).write_text(repr(time.time()))\n"
        "while True:\n    c, _ = s.accept(); c.close()\n")
    name = f"{prefix}-lat"
    (folder / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    {name}:\n      command: python3 server.py\n"
        f"      ready: {{tcp: {port}}}\n")
    try:
        subprocess.run([kstlib, "ops", "up", "--wait"], env=env, cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        returned = time.time()
        opened = float(marker.read_text())
        return returned - opened
    finally:
        run([kstlib, "ops", "down", "--force"], env, folder, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runtime", default=None, help="podman or docker (default: auto)")
    parser.add_argument("--compose", action="store_true", help="also time podman-compose")
    args = parser.parse_args()
    runtime = args.runtime or ("podman" if shutil.which("podman") else "docker")

    root = Path(tempfile.mkdtemp(prefix="kts", dir="/tmp"))
    prefix = f"ks{uuid.uuid4().hex[:5]}"
    env = {**os.environ, "TMUX_TMPDIR": str(root / "tmux"), "XDG_STATE_HOME": str(root / "state"),
           "XDG_CACHE_HOME": str(root / "cache"), "NO_COLOR": "1"}
    env.setdefault("CONTAINERS_CONF", str(REPO / "tests" / "containers.conf"))
    env.pop("TMUX", None)
    env.pop("KSTLIB_CONFIG", None)
    (root / "tmux").mkdir()
    work = root / "project"
    work.mkdir()
    tmux_names, container_names = write_config(work, prefix, runtime)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "kstlib_tasks")],
                   check=True, stdout=subprocess.DEVNULL)
    kstlib = str(BIN / "kstlib")
    compose = compose_venv(root) if args.compose and runtime == "podman" else None
    if compose is not None:
        write_compose(work, container_names)
    samples: dict[str, list[float]] = {k: [] for k in
                                       ("up", "up_floor", "down", "down_floor", "compose_up",
                                        "compose_down", "latency")}
    try:
        print(f"{args.runs} runs; {COUNT} tmux sessions + {COUNT} {runtime} containers",
              file=sys.stderr)
        cleanup(env, work, runtime, prefix)
        for _ in range(args.runs):
            samples["up_floor"].append(timed(
                lambda: raw_up(env, work, runtime, tmux_names, container_names)))
            samples["down_floor"].append(timed(
                lambda: raw_down(env, work, runtime, tmux_names, container_names)))
            cleanup(env, work, runtime, prefix)
            samples["up"].append(timed(lambda: run([kstlib, "ops", "up"], env, work)))
            samples["down"].append(timed(lambda: run([kstlib, "ops", "down"], env, work)))
            cleanup(env, work, runtime, prefix)
            if compose is not None:
                samples["compose_up"].append(timed(
                    lambda: run([str(compose), "up", "-d"], env, work)))
                samples["compose_down"].append(timed(
                    lambda: run([str(compose), "down"], env, work)))
                cleanup(env, work, runtime, prefix)
            samples["latency"].append(latency_once(env, root, kstlib, prefix))
        med = {k: statistics.median(v) for k, v in samples.items() if v}
        print(f"runs: {args.runs} each, runtime: {runtime}, {COUNT} tmux + {COUNT} containers")
        print(f"kstlib ops up              median {med['up']:6.2f} s")
        print(f"floor (20 raw starts, ||)  median {med['up_floor']:6.2f} s")
        print(f"  ratio up/floor           {med['up'] / med['up_floor']:.2f}x   (target <= 1.5x)")
        print(f"kstlib ops down            median {med['down']:6.2f} s")
        print(f"floor (20 raw stops, ||)   median {med['down_floor']:6.2f} s")
        print(f"  ratio down/floor         {med['down'] / med['down_floor']:.2f}x   "
              "(target <= 1.5x)")
        if "compose_up" in med:
            print(f"podman-compose up -d (10)  median {med['compose_up']:6.2f} s   "
                  f"kstlib up / compose up = {med['up'] / med['compose_up']:.2f}x")
            print(f"podman-compose down (10)   median {med['compose_down']:6.2f} s   "
                  f"kstlib down / compose down = {med['down'] / med['compose_down']:.2f}x")
        print(f"readiness latency (up --wait after the port opens) median "
              f"{med['latency'] * 1000:5.0f} ms   (target <= 150 ms)")
    finally:
        cleanup(env, work, runtime, prefix)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    threading.stack_size(512 * 1024)
    sys.exit(main())
