"""How long `kstlib ops up` of 10 swarm sessions and `kstlib ops list` of 10 services take on a
private one-node swarm (tests/swarm_lab.py), against the raw docker calls they stand for.

Side by side, interleaved (the order alternates each round), medians:

- up: `kstlib ops up` of a config of 10 swarm sessions (`sleep 600`) against its floor: a Python
  interpreter importing invoke, yaml, voluptuous and sh, plus ten parallel raw `docker service
  create --detach --no-resolve-image --endpoint-mode dnsrr` (what any tool must pay). Also
  in-process: `stack.up` against the ten parallel creates alone (the engine's own overhead).
  Between rounds every service is removed and its containers awaited (not timed).
- list: `kstlib ops list --backend swarm --json` with the 10 services running, against the
  interpreter plus one raw `docker service ls` and one raw `docker service ps` of all services;
  in-process: `SwarmBackend.list()` (ls, then inspect and ps in parallel) against ls + ps.

Targets: up <= 1.5x, list <= 1.3x. Run as root: `.venv/bin/python bench/swarm_speed.py [--runs 9]`.
The config sets `container_runtime: docker`, so the listing `up` makes of every backend asks the
main docker engine (read only) rather than podman. Everything it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import swarm_lab  # noqa: E402

BIN = Path(sys.executable).parent
IMAGE = swarm_lab.BUSYBOX_IMAGE
COUNT = 10
DOCKER = "docker"  # the client kstlib uses (PATH), for the raw calls too


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def clock(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def interpreter(env: dict[str, str], cwd: Path) -> None:
    run([sys.executable, "-c", "import invoke, yaml, voluptuous, sh"], env, cwd)


def raw_creates(host: str, names: list[str], env: dict[str, str], cwd: Path) -> None:
    procs = [subprocess.Popen([DOCKER, "-H", host, "service", "create", "--detach",
                               "--no-resolve-image", "--endpoint-mode", "dnsrr", "--name", n,
                               IMAGE, "sleep", "600"], env=env, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for n in names]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("a raw service create failed")


def raw_list(host: str, env: dict[str, str], cwd: Path) -> None:
    listed = subprocess.run([DOCKER, "-H", host, "service", "ls", "--format", "{{json .}}"],
                            env=env, cwd=cwd, check=True, capture_output=True, text=True)
    ids = [line.split('"ID":"')[1].split('"')[0] for line in listed.stdout.splitlines()]
    run([DOCKER, "-H", host, "service", "ps", "--no-trunc", "--format", "{{json .}}", *ids],
        env, cwd)


def clean(swarm: swarm_lab.Swarm) -> None:
    """Remove every service, then wait until their containers are gone (not timed)."""
    ids = swarm.docker("service", "ls", "-q").stdout.split()
    if ids:
        swarm.docker("service", "rm", *ids)
    swarm_lab.wait_for(lambda: not swarm.docker("ps", "-aq").stdout.strip(), timeout=120,
                       what="containers of removed services gone", interval=0.1)


def write_config(folder: Path, host: str, names: list[str]) -> None:
    lines = ["ops:", "  container_runtime: docker", "  swarm:", f"    docker_host: {host}",
             "  sessions:"]
    for name in names:
        lines += [f"    {name}:", "      backend: swarm", f"      image: {IMAGE}",
                  "      command: sleep 600"]
    (folder / "kstlib.conf.yml").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    swarm_lab.cleanup_all()
    prefix = f"sb{uuid.uuid4().hex[:6]}"
    kstlib_names = [f"{prefix}-k{i}" for i in range(COUNT)]
    raw_names = [f"{prefix}-r{i}" for i in range(COUNT)]
    with tempfile.TemporaryDirectory(prefix="kstlib-bench-") as tmp, \
            swarm_lab.one_node_swarm() as swarm:
        folder = Path(tmp)
        os.chmod(folder, 0o700)
        (folder / "state").mkdir()
        (folder / "tmux").mkdir()
        env = {**os.environ, "XDG_STATE_HOME": str(folder / "state"),
               "XDG_CACHE_HOME": str(folder / "cache"), "TMUX_TMPDIR": str(folder / "tmux")}
        # an installed kstlib has its bytecode: let the warm-up run write it
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ.update(XDG_STATE_HOME=env["XDG_STATE_HOME"],
                          XDG_CACHE_HOME=env["XDG_CACHE_HOME"], TMUX_TMPDIR=env["TMUX_TMPDIR"])
        host = swarm.docker_host
        write_config(folder, host, kstlib_names)
        kstlib = str(BIN / "kstlib")
        for _ in range(2):
            run([kstlib, "ops", "list"], env, folder)  # warm the config cache and bytecode

        from kstlib_tasks.backends.swarm.backend import SwarmBackend
        from kstlib_tasks.config import load_config
        from kstlib_tasks.engine import stack
        from kstlib_tasks.manager import SessionManager

        config = load_config(folder / "kstlib.conf.yml")
        times: dict[str, list[float]] = {k: [] for k in (
            "up_cli", "up_floor", "up_engine", "up_raw", "list_cli", "list_floor",
            "list_backend", "list_raw")}

        def up_engine() -> None:
            code = stack.up(SessionManager(config), [], wait=False, timeout=None,
                            recreate=True, json=False, report=lambda line: None)
            assert code == 0

        def threaded_creates() -> None:
            with ThreadPoolExecutor(max_workers=COUNT) as pool:
                list(pool.map(lambda n: subprocess.run(
                    [DOCKER, "-H", host, "service", "create", "--detach", "--no-resolve-image",
                     "--endpoint-mode", "dnsrr", "--name", n, IMAGE, "sleep", "600"],
                    check=True, capture_output=True), raw_names))

        for round_ in range(args.runs):
            pairs: list[tuple[str, Callable[[], object]]] = [
                ("up_cli", lambda: run([kstlib, "ops", "up"], env, folder)),
                ("up_floor", lambda: (interpreter(env, folder),
                                      raw_creates(host, raw_names, env, folder))),
            ]
            engine_pairs: list[tuple[str, Callable[[], object]]] = [
                ("up_engine", up_engine), ("up_raw", threaded_creates)]
            for group in (pairs, engine_pairs):
                for key, call in group if round_ % 2 == 0 else group[::-1]:
                    times[key].append(clock(call))
                    clean(swarm)
        # list: the 10 services of kstlib running
        run([kstlib, "ops", "up"], env, folder)
        backend = SwarmBackend(host)
        swarm_lab.wait_for(lambda: all(s.details.get("replicas") == "1/1"
                                       for s in backend.list()) and len(backend.list()) == COUNT,
                           timeout=60, what="10 services running")
        for round_ in range(args.runs * 2):
            group: list[tuple[str, Callable[[], object]]] = [
                ("list_cli", lambda: run([kstlib, "ops", "list", "--backend", "swarm",
                                          "--json"], env, folder)),
                ("list_floor", lambda: (interpreter(env, folder), raw_list(host, env, folder))),
                ("list_backend", backend.list),
                ("list_raw", lambda: raw_list(host, env, folder)),
            ]
            for key, call in group if round_ % 2 == 0 else group[::-1]:
                times[key].append(clock(call))
        clean(swarm)

    med = {k: median_ms(v) for k, v in times.items()}
    print(f"swarm bench: {COUNT} services, one-node lab, {args.runs} rounds (list: "
          f"{args.runs * 2}), medians")
    print(f"  up   CLI  {med['up_cli']:7.1f} ms  vs floor (interpreter + {COUNT} parallel raw "
          f"creates) {med['up_floor']:7.1f} ms  ratio {med['up_cli'] / med['up_floor']:.2f} "
          "(target <= 1.5)")
    print(f"  up   in-process stack.up {med['up_engine']:7.1f} ms  vs {COUNT} parallel raw "
          f"creates {med['up_raw']:7.1f} ms  ratio {med['up_engine'] / med['up_raw']:.2f}")
    print(f"  list CLI  {med['list_cli']:7.1f} ms  vs floor (interpreter + raw ls + raw ps) "
          f"{med['list_floor']:7.1f} ms  ratio {med['list_cli'] / med['list_floor']:.2f} "
          "(target <= 1.3)")
    print(f"  list in-process SwarmBackend.list {med['list_backend']:7.1f} ms  vs raw ls + ps "
          f"{med['list_raw']:7.1f} ms  ratio {med['list_backend'] / med['list_raw']:.2f}")


if __name__ == "__main__":
    main()
