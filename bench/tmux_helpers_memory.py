"""Memory and speed of the tmux helpers (capture.sh, supervise.sh) against Python copiers.

Everything runs on private tmux servers (a fresh ``TMUX_TMPDIR`` per experiment, killed at the
end) and prints, side by side:

1. idle memory of each pipe-pane copier (PSS and RSS from /proc/PID/smaps_rollup, summed over
   the copier's processes: for capture.sh the dash shell and its waiting ``head``);
2. a ``yes`` flood in the pane: the tmux SERVER's RSS sampled every 2 s for 40 s (tmux buffers
   without limit what a slow pipe-pane reader has not taken), the copier's peak memory and the
   rate it actually wrote (``wchar`` of its processes, reaped children included);
3. the copier's own capacity outside tmux (``head -c N /dev/zero | copier``), in MB/s;
4. bytes lost: ``seq 1 2000000`` in a pane, the kstlib way (new-session, remain-on-exit,
   pipe-pane in one client message; kill-session once the pane is dead; wait for MARKER);
5. supervise.sh's own memory while its command runs, next to a minimal Python supervisor.

Copiers: capture.sh at MAXBYTES 4 KiB, 64 KiB, 256 KiB and 1 MiB; a Python stand-in for the
seed's Python copier, reading stdin in 64 KiB blocks into a file (no rotation);
``cat > /dev/null`` as the fastest possible reader; and no pipe-pane at all.

Run: ``python3 bench/tmux_helpers_memory.py [--seconds 40] [--interval 2] [--only idle,flood,...]``
(``--flood 'yes LONG-LINE' --floors-only`` floods with another output pattern).
The machine's load average is printed: other work on the machine slows tmux and the copiers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO / "kstlib_tasks" / "backends" / "tmux" / "capture.sh"
SUPERVISE = REPO / "kstlib_tasks" / "backends" / "tmux" / "supervise.sh"
PY = sys.executable
KIB, MIB = 1024, 1024 * 1024
STANDIN = (
    "import sys\n"
    "out = open(sys.argv[1], 'ab', buffering=0)\n"
    "raw = sys.stdin.buffer.raw\n"
    "while block := raw.read(65536):\n"
    "    out.write(block)\n"
)


# --------------------------------------------------------------------------- /proc readings


def memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in KiB; (0, 0) once it is gone."""
    values = {"Pss:": 0, "Rss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, *rest = line.split()
            if key in values:
                values[key] = int(rest[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return values["Pss:"], values["Rss:"]


def parents() -> dict[int, int]:
    """pid -> parent pid for every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = int(fields[1])
    return table


def descendants(root: int, table: dict[int, int] | None = None) -> list[int]:
    table = parents() if table is None else table
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [child for child, parent in table.items() if parent == pid]
    return found


def tree_memory(root: int) -> tuple[int, int, int]:
    """(PSS, RSS, process count) summed over ``root`` and its descendants."""
    pss = rss = count = 0
    for pid in descendants(root):
        p, r = memory_kib(pid)
        if r:
            pss, rss, count = pss + p, rss + r, count + 1
    return pss, rss, count


def written(root: int) -> int:
    """Bytes written (``wchar``) by ``root`` and its live descendants.

    A reaped child's count is added to its parent's by the kernel, so capture.sh's short-lived
    heads are all counted; a live child (the python under today's ``sh -c``) is added here.
    """
    total = 0
    for pid in descendants(root):
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                if line.startswith("wchar:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def server_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(check: Callable[[], object], timeout: float, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)
    return value


# --------------------------------------------------------------------------- tmux


class Server:
    """A private tmux server: its own TMUX_TMPDIR, killed (and the folder removed) at the end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kth", dir="/tmp"))
        self.env = {**os.environ, "TMUX_TMPDIR": str(self.root)}
        self.env.pop("TMUX", None)

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", *args], env=self.env, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"tmux {shlex.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def pid(self) -> int:
        return int(self("display-message", "-p", "#{pid}"))

    def pane_pid(self, name: str) -> int:
        return int(self("display-message", "-p", "-t", f"={name}:", "#{pane_pid}"))

    def pipe_root(self, name: str) -> int | None:
        """The pipe-pane child of the server (the copier's first process), None if none yet."""
        table = parents()
        server, pane = self.pid(), self.pane_pid(name)
        roots = [pid for pid, parent in table.items() if parent == server and pid != pane]
        return roots[0] if roots else None

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-server"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def server() -> Iterator[Server]:
    tmux = Server()
    try:
        yield tmux
    finally:
        tmux.kill()


@dataclass(frozen=True)
class Copier:
    label: str
    command: Callable[[Path, Path], str]  # (log, marker) -> what pipe-pane runs with sh -c


def capture(limit: int) -> Copier:
    def command(log: Path, marker: Path) -> str:
        return "exec /bin/sh " + shlex.join([str(CAPTURE), str(log), str(limit), str(marker)])

    return Copier(f"capture.sh {size(limit)}", command)


def standin() -> Copier:
    def command(log: Path, marker: Path) -> str:
        return (f"{shlex.join([PY, '-c', STANDIN, str(log)])}; "
                f"rm -f {shlex.quote(str(marker))}")

    return Copier("python -c 64 KiB blocks", command)


def refused() -> Copier:
    """capture.sh with LOG a symlink: it refuses at once and exits (the reader is gone)."""
    def command(log: Path, marker: Path) -> str:
        return (f"ln -s /nonexistent {shlex.quote(str(log))}; "
                + capture(MIB).command(log, marker))

    return Copier("capture.sh exited (LOG refused)", command)


CAT = Copier("cat > /dev/null (reference)", lambda log, marker: "exec cat > /dev/null")
FLOORS = (4 * KIB, 64 * KIB, 256 * KIB, MIB)


def size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB"


def start(tmux: Server, name: str, copier: Copier | None, folder: Path, *command: str,
          remain: bool = False) -> tuple[Path, Path]:
    """new-session (+ remain-on-exit) + pipe-pane in one client message, as kstlib does."""
    log, marker = folder / f"{name}.log", folder / f"{name}.log.pipe-bench"
    marker.touch()
    args = ["new-session", "-d", "-s", name, "-x", "80", "-y", "24", "--", *command]
    if remain:
        args += [";", "set-option", "-p", "-t", f"={name}:", "remain-on-exit", "on"]
    if copier is not None:
        args += [";", "pipe-pane", "-t", f"={name}:",
                 copier.command(log, marker).replace("#", "##")]
    tmux(*args)
    return log, marker


def finish_copier(root: int | None, timeout: float = 60) -> None:
    """After kill-server a copier reads to EOF and exits; one that does not is killed."""
    if root is None:
        return
    try:
        wait_for(lambda: not alive(root), timeout)
    except RuntimeError:
        for pid in descendants(root):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- experiments


def idle(copiers: list[Copier]) -> None:
    print("\n## Copier memory, pane idle (sum over the copier's processes)")
    print(f"{'copier':34} {'procs':>5} {'PSS KiB':>8} {'RSS KiB':>8}")
    for copier in copiers:
        folder = Path(tempfile.mkdtemp(prefix="kthlog", dir="/tmp"))
        folder.chmod(0o700)
        root = None
        with server() as tmux:
            start(tmux, "idle", copier, folder, "sleep", "600")
            root = wait_for(lambda tmux=tmux: tmux.pipe_root("idle"), 10)
            # settled: the copier is blocked on its first read (capture.sh: dash + head)
            time.sleep(1.0)
            pss, rss, count = tree_memory(root)
            print(f"{copier.label:34} {count:>5} {pss:>8} {rss:>8}")
        finish_copier(root)
        shutil.rmtree(folder, ignore_errors=True)


def flood(copiers: list[Copier | None], seconds: float, interval: float,
          command: list[str]) -> None:
    shown = shlex.join(command)
    shown = shown if len(shown) < 30 else shown[:27] + "..."
    print(f"\n## `{shown}` flood for {seconds:.0f} s: tmux server RSS (MiB) every"
          f" {interval:.0f} s, copier peak memory and write rate")
    steps = int(seconds / interval)
    marks = sorted({0, steps // 4, steps // 2, 3 * steps // 4, steps})
    head = " ".join(f"{f't={m * interval:.0f}':>6}" for m in marks)
    print(f"{'copier':34} {head} {'max':>6} {'PSS pk':>7} {'RSS pk':>7} {'MB/s':>6}"
          f" {'pipe':>4}")
    for copier in copiers:
        label = copier.label if copier is not None else "no pipe-pane (tmux alone)"
        folder = Path(tempfile.mkdtemp(prefix="kthlog", dir="/tmp"))
        folder.chmod(0o700)
        root = None
        samples: list[int] = []
        pss_peak = rss_peak = 0
        rate = 0.0
        with server() as tmux:
            start(tmux, "flood", copier, folder, *command)
            spid = tmux.pid()
            if copier is not None:
                try:  # a copier that exits at once (LOG refused) may never be seen
                    root = wait_for(lambda tmux=tmux: tmux.pipe_root("flood"), 2)  # type: ignore
                except RuntimeError:
                    root = None
            began, first = time.monotonic(), written(root) if root else 0
            for step in range(steps + 1):
                wait_until = began + step * interval
                time.sleep(max(0.0, wait_until - time.monotonic()))
                samples.append(server_rss_kib(spid))
                if root is not None:
                    pss, rss, _ = tree_memory(root)
                    pss_peak, rss_peak = max(pss_peak, pss), max(rss_peak, rss)
            if root is not None:
                rate = (written(root) - first) / (time.monotonic() - began) / 1e6
            piping = tmux("display-message", "-p", "-t", "=flood:", "#{pane_pipe}")
        finish_copier(root)
        shutil.rmtree(folder, ignore_errors=True)
        cells = " ".join(f"{samples[m] / 1024:>6.1f}" for m in marks)
        extra = (f"{pss_peak:>7} {rss_peak:>7} {rate:>6.1f}" if root is not None
                 else f"{'-':>7} {'-':>7} {'-':>6}")
        print(f"{label:34} {cells} {max(samples) / 1024:>6.1f} {extra} {piping:>4}")
    print("(PSS/RSS peaks in KiB; MB/s = bytes the copier wrote per second of flood;"
          " pipe = pane_pipe at the end)")


def capacity(copiers: list[Copier]) -> None:
    print("\n## Copier capacity outside tmux: head -c N /dev/zero | copier")
    print(f"{'copier':34} {'MiB':>5} {'seconds':>8} {'MB/s':>7}")
    for copier in copiers:
        if copier is CAT:
            continue
        folder = Path(tempfile.mkdtemp(prefix="kthlog", dir="/tmp"))
        folder.chmod(0o700)
        log, marker = folder / "cap.log", folder / "cap.log.pipe-bench"
        marker.touch()
        amount = 8 * MIB if copier.label.startswith("capture.sh 4 KiB") else 128 * MIB
        began = time.monotonic()
        subprocess.run(f"head -c {amount} /dev/zero | {{ {copier.command(log, marker)}; }}",
                       shell=True, check=True, executable="/bin/sh")
        took = time.monotonic() - began
        print(f"{copier.label:34} {amount // MIB:>5} {took:>8.2f} {amount / took / 1e6:>7.1f}")
        shutil.rmtree(folder, ignore_errors=True)


def loss(copiers: list[tuple[Copier, bool]]) -> None:
    print("\n## Bytes lost: seq 1 2000000 through a pane (pty turns \\n into \\r\\n)")
    print(f"{'copier':34} {'expected':>9} {'kept':>9} {'lost':>5} {'files <= bound':>15}")
    seq = subprocess.run(["seq", "1", "2000000"], capture_output=True, check=True).stdout
    expected = seq.replace(b"\n", b"\r\n")
    for copier, rotates in copiers:
        folder = Path(tempfile.mkdtemp(prefix="kthlog", dir="/tmp"))
        folder.chmod(0o700)
        with server() as tmux:
            log, marker = start(tmux, "seq", copier, folder, "seq", "1", "2000000", remain=True)
            wait_for(lambda tmux=tmux: tmux("display-message", "-p", "-t", "=seq:",
                                            "#{pane_dead}") == "1", 120)
            tmux("new-session", "-d", "-s", "keep", "sleep", "60")  # keep the server up
            tmux("kill-session", "-t", "=seq")
            wait_for(lambda marker=marker: not marker.exists(), 120)
        rotated = log.with_name(log.name + ".1")
        kept = (rotated.read_bytes() if rotated.exists() else b"") + log.read_bytes()
        if rotates:
            # rotation drops the oldest part on purpose: kept must be the exact end
            lost = 0 if kept == expected[-len(kept):] else len(expected)
            limit = int(copier.label.split()[1]) * (MIB if "MiB" in copier.label else KIB)
            bounded = "yes" if all(p.stat().st_size <= limit for p in (log, rotated)
                                   if p.exists()) else "NO"
        else:
            lost = len(expected) - len(kept) if kept == expected[:len(kept)] else len(expected)
            bounded = "-"
        print(f"{copier.label:34} {len(expected):>9} {len(kept):>9} {lost:>5} {bounded:>15}")
        shutil.rmtree(folder, ignore_errors=True)


def supervisor() -> None:
    print("\n## Supervisor memory while its command (sleep) runs: the supervisor process only")
    print(f"{'supervisor':34} {'PSS KiB':>8} {'RSS KiB':>8}")
    folder = Path(tempfile.mkdtemp(prefix="kthsup", dir="/tmp"))
    folder.chmod(0o700)
    envfile = folder / "env"
    envfile.write_text(f"export PATH='{os.environ['PATH']}'\n")
    variants = {
        "supervise.sh always": ["/bin/sh", str(SUPERVISE), str(folder / "state"),
                                str(folder / "stop"), "always", "0", str(envfile), "--"],
        "supervise.sh no (exec: none left)": ["/bin/sh", str(SUPERVISE), str(folder / "state"),
                                              str(folder / "stop"), "no", "0", str(envfile),
                                              "--"],
        "python3 subprocess.call (stand-in)": [PY, "-c", "import subprocess, sys; "
                                               "sys.exit(subprocess.call(sys.argv[1:]))"],
    }
    for label, argv in variants.items():
        with server() as tmux:
            tmux("new-session", "-d", "-s", "sup", "--", *argv, "sleep", "600")
            pane = tmux.pane_pid("sup")
            wait_for(lambda pane=pane: any(Path(f"/proc/{p}/comm").read_text().strip()
                                           == "sleep" for p in descendants(pane)
                                           if Path(f"/proc/{p}/comm").exists()), 10)
            time.sleep(0.5)
            comm = Path(f"/proc/{pane}/comm").read_text().strip()
            pss, rss = memory_kib(pane) if comm != "sleep" else (0, 0)
            print(f"{label:34} {pss:>8} {rss:>8}")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--only", default="idle,flood,capacity,loss,supervisor")
    parser.add_argument("--flood", default="yes",
                        help="the flooding command (e.g. 'yes LONG-LINE'), split like sh words")
    parser.add_argument("--floors-only", action="store_true",
                        help="flood only capture.sh at each MAXBYTES (and tmux alone)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"tmux {subprocess.run(['tmux', '-V'], capture_output=True, text=True).stdout.strip()}"
          f", {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    captures = [capture(n) for n in FLOORS]
    baselines = [standin()]
    if "idle" in only:
        idle([*captures, *baselines])
    if "flood" in only:
        chosen = ([None, *captures] if args.floors_only
                  else [None, CAT, refused(), *captures, *baselines])
        flood(chosen, args.seconds, args.interval, shlex.split(args.flood))
    if "capacity" in only:
        capacity([*captures, *baselines])
    if "loss" in only:
        loss([(capture(64 * MIB), False), (capture(MIB), True), (standin(), False)])
    if "supervisor" in only:
        supervisor()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
