"""A private Docker Swarm lab for the tests: docker engines in network namespaces, torn down fully.

Nothing here touches the machine's main docker engine except to read an image from it
(``docker save``): every engine of the lab is a private ``dockerd`` in its own network namespace,
with its own data root, exec root, pidfile and unix socket under a private folder, and every
docker call names its engine with ``-H`` (always ``/usr/bin/docker``, the 20.10 client).

Layout of one run (its *prefix*, e.g. ``swl1a2b3c``, is unique to the run):

- ``/tmp/<prefix>/``: the lab folder (short: unix socket paths are limited to about 100
  characters); ``lab.lock`` (held with ``flock`` while the run lives), ``lab.json`` (one JSON
  record per line of what was started), ``<node>.sock``, ``<node>/`` (data root ``d``, exec root
  ``x``, ``dockerd.log``, ``dockerd.pid``), ``registry/``.
- network namespaces ``<prefix>-n1``, ``<prefix>-n2`` (nodes) and ``<prefix>-br`` (the bridge
  joining them, and the registry);
- cgroups ``/<prefix>-<node>`` (``--cgroup-parent``: the containers of that engine).

A process belongs to the lab when it lives in one of its network namespaces (dockerd, its
containerd and shims, the registry), sits in one of its cgroups (the containers), or is one of
the lab's programs whose command line names the lab folder (what a pidfile under the folder
points to is checked the same way). ``cleanup_all()`` removes what a crashed earlier run left
behind; it skips runs whose lock is still held (another test session on this machine).

The module has no pytest dependency; see tests/integration/test_swarm_lab.py for its use.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DOCKER = "/usr/bin/docker"  # the 20.10 client of Debian's docker.io (/usr/local/bin has a 28)
MAIN_HOST = "unix:///var/run/docker.sock"  # the machine's main engine: read-only for the lab
BUSYBOX_IMAGE = "localhost/kstlib-test-busybox:latest"
BASE_PREFIX = "swl"
LAB_PARENT = Path("/tmp")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
REGISTRY_PORT = 5000
LOCK_FILE = "lab.lock"
RECORD_FILE = "lab.json"
# A run prefix: letters then letters/digits, short enough for interface-free names and sockets.
_RUN_RE = re.compile(r"[a-z][a-z0-9]{2,15}")
# Programs killed on a command-line match (a container is found by its cgroup instead).
_LAB_PROGRAMS = frozenset(
    {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy",
     "docker-registry", "runc", "nsenter", "unshare", "docker"}
)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_OPEN_LABS: set[Lab] = set()


class LabError(RuntimeError):
    """A lab step failed; the message says which step and carries the useful output."""


# ---------------------------------------------------------------------------------------------
# small helpers


def _env() -> dict[str, str]:
    """The caller's environment without what could send a docker call elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return env


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; LabError (with stderr) when it fails and ``check``."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input,
            env=env if env is not None else _env(),
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout}s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: {detail}")
    return done


def wait_for(
    check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll ``check`` until it returns something truthy; LabError naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join("    | " + line for line in text.splitlines()[-lines:])


def new_prefix(base: str = BASE_PREFIX) -> str:
    """``swl`` + 6 hex digits: the names of one run."""
    return f"{base}{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------------------------
# finding and removing what a run started


def _netns_of(run_prefix: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(f"{run_prefix}-"))


def _cgroups_of(run_prefix: str) -> list[Path]:
    """The lab's cgroup folders in every hierarchy (v1: one per controller; v2: the root)."""
    found: list[Path] = []
    hierarchies = [CGROUP_ROOT]
    with contextlib.suppress(OSError):
        hierarchies += [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]
    for hierarchy in hierarchies:
        with contextlib.suppress(OSError):
            found += [p for p in hierarchy.glob(f"{run_prefix}-*") if p.is_dir()]
    return found


def _unescape_mount(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or under ``root``, deepest first."""
    prefix = str(root)
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = _unescape_mount(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def _unmount_all(root: Path) -> list[str]:
    done = []
    for point in _mounts_under(root):
        if run(["umount", point], check=False, timeout=30).returncode != 0:
            run(["umount", "-l", point], check=False, timeout=30)
        done.append(f"mount {point}")
    return done


def _protected_pids() -> set[int]:
    """This process and its ancestors: never killed, whatever they name."""
    pids, pid = {1}, os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


@dataclass(frozen=True)
class _Owner:
    """What makes a process belong to a lab (or to one engine of it)."""

    netns: tuple[str, ...]  # names under /run/netns
    cgroup_prefix: str  # "/swl1a2b3c-" (the lab) or "/swl1a2b3c-n1/" (one engine)
    path: str  # "/tmp/swl1a2b3c/" or "/tmp/swl1a2b3c/n1/"

    def netns_keys(self) -> set[tuple[int, int]]:
        mine = os.stat("/proc/self/ns/net")
        keys = set()
        for name in self.netns:
            with contextlib.suppress(OSError):
                st = os.stat(NETNS_DIR / name)
                if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
                    keys.add((st.st_dev, st.st_ino))
        return keys

    def owns(self, pid: int, netns_keys: set[tuple[int, int]]) -> bool:
        proc = f"/proc/{pid}"
        try:
            if netns_keys:
                st = os.stat(f"{proc}/ns/net")
                if (st.st_dev, st.st_ino) in netns_keys:
                    return True
            with open(f"{proc}/cgroup") as cgroups:
                for line in cgroups:
                    path = line.rstrip("\n").split(":", 2)[-1]
                    if (path + "/").startswith(self.cgroup_prefix):
                        return True
            with open(f"{proc}/cmdline", "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            return False
        return os.path.basename(argv[0]) in _LAB_PROGRAMS and any(
            self.path in arg or arg == self.path.rstrip("/") for arg in argv[1:]
        )

    def pids(self, pidfiles_under: Path | None = None) -> set[int]:
        keys = self.netns_keys()
        protected = _protected_pids()
        candidates = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        found = {pid for pid in candidates - protected if self.owns(pid, keys) and _alive(pid)}
        if pidfiles_under is not None and pidfiles_under.is_dir():
            for pidfile in pidfiles_under.rglob("*.pid"):
                with contextlib.suppress(OSError, ValueError):
                    pid = int(pidfile.read_text().strip())
                    if pid not in protected and self.owns(pid, keys) and _alive(pid):
                        found.add(pid)
        return found


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone); reaps it when it is our child."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill(pids: set[int], timeout: float = 15.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not [p for p in pids if _alive(p)], timeout=timeout,
             what=f"processes {sorted(pids)} gone after SIGKILL", interval=0.02)


def _lab_owner(run_prefix: str) -> _Owner:
    return _Owner(tuple(_netns_of(run_prefix)), f"/{run_prefix}-", f"{LAB_PARENT}/{run_prefix}/")


def _recorded_netns(root: Path) -> set[str]:
    names = set()
    with contextlib.suppress(OSError):
        for line in (root / RECORD_FILE).read_text().splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                names.add(json.loads(line)["netns"])
    try:
        existing = set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()
    return {n for n in names if isinstance(n, str)} & existing


def _destroy(run_prefix: str) -> list[str]:
    """Kill, unmount, delete: everything of run ``run_prefix``, in an order that is safe to
    repeat (processes, then mounts, then namespaces, then cgroups, the folder last)."""
    root = LAB_PARENT / run_prefix
    done: list[str] = []
    pids = _lab_owner(run_prefix).pids(pidfiles_under=root)
    if pids:
        _kill(pids)
        done += [f"process {pid}" for pid in sorted(pids)]
    done += _unmount_all(root)
    for name in sorted(set(_netns_of(run_prefix)) | _recorded_netns(root)):
        run(["ip", "netns", "delete", name], check=False, timeout=30)
        done.append(f"netns {name}")
    for cgroup in _cgroups_of(run_prefix):
        for folder, _dirs, _files in os.walk(cgroup, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        done.append(f"cgroup {cgroup}")
    if root.exists():
        remaining = _mounts_under(root)
        if remaining:
            raise LabError(f"{root}: still mounted after umount, not removed: {remaining}")
        shutil.rmtree(root, ignore_errors=True)
        done.append(f"folder {root}")
    return done


def _is_live(run_prefix: str) -> bool:
    """True while the process that owns run ``run_prefix`` holds its lock."""
    try:
        fd = os.open(LAB_PARENT / run_prefix / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def _runs(prefix: str) -> set[str]:
    """Run prefixes starting with ``prefix`` that left something: folder, netns or cgroup."""
    runs = set()
    with contextlib.suppress(OSError):
        for folder in LAB_PARENT.glob(f"{prefix}*"):
            # The record is written once the lock is held: a folder without it is a run
            # starting now, unless its lock file is old (a run that died right at its start).
            lock = folder / LOCK_FILE
            if (folder / RECORD_FILE).is_file() or (
                lock.is_file() and time.time() - lock.stat().st_mtime > 60
            ):
                runs.add(folder.name)
    with contextlib.suppress(OSError):
        runs |= {n.split("-", 1)[0] for n in os.listdir(NETNS_DIR) if n.startswith(prefix)}
    for hierarchy in (CGROUP_ROOT, CGROUP_ROOT / "pids", CGROUP_ROOT / "unified"):
        with contextlib.suppress(OSError):
            runs |= {p.name.split("-", 1)[0] for p in hierarchy.glob(f"{prefix}*-*")}
    return {r for r in runs if _RUN_RE.fullmatch(r)}


def _check_prefix(prefix: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9]*", prefix or ""):
        raise ValueError(f"lab prefix {prefix!r}: lowercase letters and digits, not empty")


def cleanup_all(prefix: str = BASE_PREFIX, *, include_live: bool = False) -> list[str]:
    """Remove the leftovers of every lab run whose prefix starts with ``prefix``.

    Runs still owned by a live process (lock held: another test session) are skipped unless
    ``include_live``. Returns what was removed (``"netns swl1a2b3c-n1"``, ``"process 123"``...).
    """
    _check_prefix(prefix)
    done: list[str] = []
    for run_prefix in sorted(_runs(prefix)):
        if include_live or not _is_live(run_prefix):
            done += _destroy(run_prefix)
    return done


def leftovers(run_prefix: str) -> list[str]:
    """What run ``run_prefix`` still has on this machine (empty after a clean teardown)."""
    _check_prefix(run_prefix)
    root = LAB_PARENT / run_prefix
    found = [f"netns {n}" for n in _netns_of(run_prefix)]
    for pid in sorted(_lab_owner(run_prefix).pids(pidfiles_under=root)):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append(f"process {pid}: {cmd.strip()}")
    found += [f"mount {m}" for m in _mounts_under(root)]
    found += [f"cgroup {c}" for c in _cgroups_of(run_prefix)]
    if root.exists():
        found.append(f"folder {root}")
    return found


# ---------------------------------------------------------------------------------------------
# signals: Ctrl-C, SIGTERM and SIGHUP must never skip a teardown


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so ``finally`` still runs."""
    previous: dict[int, object] = {}

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


@contextlib.contextmanager
def _stop_signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP during a teardown; they are delivered when it is done."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# ---------------------------------------------------------------------------------------------
# the lab: one run's folder, lock, record, namespaces and processes


class Lab:
    """One run: its folder ``/tmp/<prefix>`` (locked while alive) and what it started."""

    def __init__(self, prefix: str | None = None) -> None:
        if os.geteuid() != 0:
            raise LabError("the swarm lab needs root (network namespaces, dockerd)")
        if prefix is not None:
            _check_prefix(prefix)
            if not _RUN_RE.fullmatch(prefix):
                raise ValueError(f"lab prefix {prefix!r}: 3 to 16 letters and digits")
        while True:
            self.prefix = prefix or new_prefix()
            self.root = LAB_PARENT / self.prefix
            try:
                self.root.mkdir(mode=0o700)
                break
            except FileExistsError as exc:
                if prefix is not None:
                    raise LabError(f"{self.root} exists: prefix {prefix} is in use") from exc
        self._lock = os.open(self.root / LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Only now the record: cleanup_all() never takes a folder without one for a dead run.
        self.timings: dict[str, float] = {}
        self.engines: list[Engine] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.closed = False
        self.record(run=self.prefix, pid=os.getpid(), started=time.time())
        _OPEN_LABS.add(self)

    def record(self, **entry: object) -> None:
        with open(self.root / RECORD_FILE, "a") as records:
            records.write(json.dumps(entry) + "\n")

    @contextlib.contextmanager
    def timed(self, key: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.timings[key] = round(time.monotonic() - start, 3)

    def netns(self, short: str) -> str:
        """Create namespace ``<prefix>-<short>`` with its loopback up; returns its name."""
        name = f"{self.prefix}-{short}"
        self.record(netns=name)
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def spawn(
        self, argv: Sequence[str], *, log: Path, pidfile: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running lab process: own session (Ctrl-C reaches only us, we stop it
        in order), output to ``log``, its pid in ``pidfile`` (None: the program writes its own,
        as dockerd does)."""
        self.record(argv=list(argv), pidfile=str(pidfile) if pidfile else None)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env=_env(),
            )
        if pidfile is not None:
            pidfile.write_text(f"{proc.pid}\n")
        self.processes.append(proc)
        return proc

    def engine(self, name: str, netns: str, **options: object) -> Engine:
        engine = Engine(self, name, netns, **options)  # type: ignore[arg-type]
        self.engines.append(engine)
        return engine

    def close(self) -> None:
        """Stop the engines, then the other processes, then remove everything of the run."""
        if self.closed:
            return
        errors = []
        for engine in self.engines:  # all at once: each takes about 1 s to shut down
            engine.terminate()
        for engine in reversed(self.engines):
            try:
                engine.stop()
            except LabError as exc:
                errors.append(str(exc))
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        try:
            _destroy(self.prefix)
        except LabError as exc:
            errors.append(str(exc))
        os.close(self._lock)
        self.closed = True
        _OPEN_LABS.discard(self)
        if errors:
            raise LabError(f"lab {self.prefix} teardown: " + "; ".join(errors))


@atexit.register
def _close_open_labs() -> None:
    for lab in list(_OPEN_LABS):
        with contextlib.suppress(Exception):
            lab.close()


# ---------------------------------------------------------------------------------------------
# images on the main engine (read only: ``docker save``)


def ensure_main_image(ref: str = BUSYBOX_IMAGE) -> None:
    """Make sure the main engine has ``ref``; the busybox test image is built when absent
    (FROM scratch + the static busybox, as scripts/prepare-backends.sh does)."""
    if run([DOCKER, "-H", MAIN_HOST, "image", "inspect", ref], check=False).returncode == 0:
        return
    if ref != BUSYBOX_IMAGE:
        raise LabError(f"image {ref} missing on the main engine ({MAIN_HOST})")
    if not os.access("/bin/busybox", os.X_OK):
        raise LabError("/bin/busybox missing (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory(prefix="swl-build") as ctx:
        shutil.copy("/bin/busybox", f"{ctx}/busybox")
        Path(ctx, "Containerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sh"]\n'
        )
        run([DOCKER, "-H", MAIN_HOST, "build", "-t", ref, "-f", f"{ctx}/Containerfile", ctx],
            env={**_env(), "DOCKER_BUILDKIT": "0"}, timeout=300)


# ---------------------------------------------------------------------------------------------
# one private engine


class Engine:
    """A private ``dockerd`` in network namespace ``netns``, its files under ``lab.root/name``.

    ``host`` is the ``unix://`` URL for ``docker -H`` / ``DOCKER_HOST``. Its containers go to
    cgroup ``/<prefix>-<name>`` and containerd namespace ``<prefix>-<name>``, so they are found
    (and killed) even after the engine itself died.
    """

    def __init__(
        self, lab: Lab, name: str, netns: str, *, insecure_registries: Sequence[str] = ()
    ) -> None:
        self.lab, self.name, self.netns = lab, name, netns
        self.hostname = f"{lab.prefix}-{name}"  # also its swarm node name
        self.folder = lab.root / name
        self.socket = lab.root / f"{name}.sock"
        self.log = self.folder / "dockerd.log"
        self.pidfile = self.folder / "dockerd.pid"
        self.insecure_registries = tuple(insecure_registries)
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawned_at = 0.0

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _owner(self) -> _Owner:
        return _Owner((self.netns,), f"/{self.lab.prefix}-{self.name}/", f"{self.folder}/")

    def dockerd_argv(self) -> list[str]:
        config = self.folder / "daemon.json"  # never /etc/docker/daemon.json
        dockerd = [
            "dockerd", "--config-file", str(config),
            "--data-root", str(self.folder / "d"), "--exec-root", str(self.folder / "x"),
            "--pidfile", str(self.pidfile), "-H", self.host,
            "--bridge=none",  # /sys is the host's: a docker0 here would alias the host's
            f"--cgroup-parent=/{self.lab.prefix}-{self.name}",
            "--containerd-namespace", f"{self.lab.prefix}-{self.name}",
            "--containerd-plugins-namespace", f"{self.lab.prefix}-{self.name}-plugins",
            "--shutdown-timeout", "2",
        ]
        for registry in self.insecure_registries:
            dockerd += ["--insecure-registry", registry]
        # nsenter (net only) then unshare (uts only) then sh: each execs the next, one pid.
        return [
            "nsenter", f"--net={NETNS_DIR / self.netns}", "unshare", "--uts",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname, *dockerd,
        ]

    def spawn(self) -> Engine:
        """Start dockerd without waiting (``wait_ready`` waits): engines start in parallel."""
        if self._proc is not None:
            raise LabError(f"engine {self.name} already started")
        self.folder.mkdir(mode=0o700)
        (self.folder / "daemon.json").write_text("{}\n")
        (self.folder / "client").mkdir()  # DOCKER_CONFIG: never the user's ~/.docker
        self.lab.record(engine=self.name, socket=str(self.socket), netns=self.netns)
        self._spawned_at = time.monotonic()
        self._proc = self.lab.spawn(self.dockerd_argv(), log=self.log)
        return self

    def wait_ready(self, timeout: float = 60.0) -> Engine:
        """Wait until ``docker info`` answers; LabError with the log's tail otherwise."""
        assert self._proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise LabError(
                    f"dockerd {self.name} exited ({self._proc.returncode}) before answering; "
                    f"{self.log}:\n{tail(self.log)}"
                )
            probe = self.docker("info", "--format", "{{.ID}}", check=False, timeout=10)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"dockerd {self.name} did not answer on {self.host} within {timeout}s; "
                    f"{self.log}:\n{tail(self.log)}"
                )
            time.sleep(0.1)
        self.lab.timings[f"engine_start:{self.name}"] = round(
            time.monotonic() - self._spawned_at, 3
        )
        return self

    def start(self, timeout: float = 60.0) -> Engine:
        return self.spawn().wait_ready(timeout)

    def docker(
        self, *args: str, timeout: float = 60.0, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``/usr/bin/docker -H <this engine> ARGS...``."""
        env = {**_env(), "DOCKER_CONFIG": str(self.folder / "client")}
        return run([DOCKER, "-H", self.host, *args], timeout=timeout, check=check, input=input,
                   env=env)

    def info(self, fmt: str) -> str:
        return self.docker("info", "--format", fmt).stdout.strip()

    def load_image(self, ref: str = BUSYBOX_IMAGE, timeout: float = 120.0) -> None:
        """Copy ``ref`` from the main engine: ``docker save REF | docker -H ENGINE load``."""
        ensure_main_image(ref)
        save = subprocess.Popen(
            [DOCKER, "-H", MAIN_HOST, "save", ref], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
        )
        assert save.stdout is not None
        try:
            load = subprocess.run(
                [DOCKER, "-H", self.host, "load"], stdin=save.stdout, capture_output=True,
                text=True, timeout=timeout, env=_env(),
            )
        finally:
            save.stdout.close()
            _, save_err = save.communicate(timeout=timeout)
        if save.returncode != 0 or load.returncode != 0:
            raise LabError(
                f"copying {ref} to engine {self.name}: save exit {save.returncode} "
                f"({save_err.decode(errors='replace').strip()}), load exit {load.returncode} "
                f"({load.stderr.strip()})"
            )

    def kill(self) -> None:
        """Simulate the node going down: SIGKILL dockerd, then everything of the node
        (containerd, shims, containers: they would otherwise outlive it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=15)
        pids = self._owner().pids(pidfiles_under=self.folder)
        if pids:
            _kill(pids)

    def terminate(self) -> None:
        """Ask dockerd to stop (SIGTERM) without waiting: ``stop`` waits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop dockerd (SIGTERM, SIGKILL after ``timeout``), then whatever of the node is left
        (orphaned shims, containers) and its mounts. Safe to call twice or after ``kill``."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=timeout)
        self.kill()
        _unmount_all(self.folder)


# ---------------------------------------------------------------------------------------------
# the registry (Debian's docker-registry) in a namespace


def start_registry(lab: Lab, netns: str, address: str, timeout: float = 30.0) -> None:
    """Debian's ``docker-registry`` in ``netns`` on ``address`` (``IP:PORT``), own config and
    storage under ``lab.root/registry``; waits until ``/v2/`` answers inside the namespace."""
    folder = lab.root / "registry"
    folder.mkdir(mode=0o700)
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )
    log = folder / "registry.log"
    proc = lab.spawn(
        ["nsenter", f"--net={NETNS_DIR / netns}", "docker-registry", "serve", str(config)],
        log=log, pidfile=folder / "registry.pid",
    )
    probe = [
        "nsenter", f"--net={NETNS_DIR / netns}", sys.executable, "-c",
        "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2).read()",
        f"http://{address}/v2/",
    ]

    def answers() -> bool:
        if proc.poll() is not None:
            raise LabError(f"docker-registry exited ({proc.returncode}); {log}:\n{tail(log)}")
        return run(probe, check=False, timeout=10).returncode == 0

    wait_for(answers, timeout=timeout, what=f"registry answering on {address}", interval=0.05)


def free_subnet(rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A 192.168.X.0/24 (X in 200..254) that overlaps no route or address of this machine."""
    used = []
    listing = run(["ip", "-4", "route", "show", "table", "all"]).stdout
    listing += run(["ip", "-4", "-o", "addr", "show"]).stdout
    for word in listing.split():
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/\d+)?", word):
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(word, strict=False))
    candidates = [ipaddress.IPv4Network(f"192.168.{x}.0/24") for x in range(200, 255)]
    (rng or random.Random()).shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(u) for u in used):
            return net
    raise LabError("no free 192.168.X.0/24 (X in 200..254) on this machine")


# ---------------------------------------------------------------------------------------------
# swarms


@dataclass
class Swarm:
    """What ``one_node_swarm`` / ``two_node_swarm`` yield."""

    lab: Lab
    manager: Engine
    image: str  # a reference services can use: local tag (one node) or registry digest (two)
    worker: Engine | None = None
    registry: str | None = None  # "192.168.X.1:5000" (two nodes)
    subnet: str | None = None

    @property
    def prefix(self) -> str:
        return self.lab.prefix

    @property
    def docker_host(self) -> str:
        return self.manager.host

    @property
    def timings(self) -> dict[str, float]:
        return self.lab.timings

    def docker(self, *args: str, **options: object) -> subprocess.CompletedProcess[str]:
        """A docker call on the manager."""
        return self.manager.docker(*args, **options)  # type: ignore[arg-type]

    def node_states(self) -> dict[str, str]:
        """``{hostname: status}`` as the manager sees it (``Ready``, ``Down``...)."""
        out = self.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def push_image(self, ref: str = BUSYBOX_IMAGE) -> str:
        """Push ``ref`` (loaded on the manager) to the lab registry; returns the digest-pinned
        reference (``192.168.X.1:5000/name@sha256:...``) that every node can pull."""
        if self.registry is None:
            raise LabError("this swarm has no registry (two_node_swarm has one)")
        return _push(self.manager, self.registry, ref)

    def kill_worker(self) -> None:
        """The worker node goes down (SIGKILL of its dockerd and everything of the node)."""
        if self.worker is None:
            raise LabError("this swarm has no worker")
        self.worker.kill()


def _push(engine: Engine, registry: str, ref: str) -> str:
    target = f"{registry}/{ref.rsplit('/', 1)[-1]}"
    engine.docker("tag", ref, target)
    engine.docker("push", target, timeout=120)
    digests = engine.docker(
        "image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", target
    ).stdout.split()
    pinned = [d for d in digests if d.startswith(f"{registry}/") and "@sha256:" in d]
    if not pinned:
        raise LabError(f"no digest from {registry} for {target} after push: {digests}")
    return pinned[0]


def _teardown(lab: Lab) -> None:
    """Remove the services and containers (no stop grace), end the swarm on the manager, stop
    the engines, sweep. Workers do not ``swarm leave``: it waits up to 5 s for the ingress
    network's removal ("timeout while waiting for ingress network removal" in its log), and
    their engine and state are deleted right after anyway."""
    with _stop_signals_deferred():
        start = time.monotonic()
        try:
            manager = lab.engines[0] if lab.engines else None
            if manager is not None and manager.running:
                services = manager.docker("service", "ls", "-q", check=False).stdout.split()
                if services:
                    manager.docker("service", "rm", *services, check=False)
            for engine in lab.engines:
                if engine.running:
                    ids = engine.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                    if ids:
                        engine.docker("rm", "-f", *ids, check=False, timeout=60)
            if manager is not None and manager.running:
                manager.docker("swarm", "leave", "--force", check=False, timeout=30)
        finally:
            lab.close()
            lab.timings["teardown"] = round(time.monotonic() - start, 3)


@contextlib.contextmanager
def one_node_swarm(
    prefix: str | None = None, *, image: str = BUSYBOX_IMAGE, timeout: float = 60.0
) -> Iterator[Swarm]:
    """One private engine in its own namespace, swarm manager on 127.0.0.1, ``image`` loaded.

    Teardown (even on an exception, Ctrl-C or SIGTERM) leaves the swarm, stops the engine and
    removes its namespace, mounts, cgroups and folder.
    """
    with _stop_signals_raise():
        lab = Lab(prefix)
        try:
            start = time.monotonic()
            manager = lab.engine("n1", lab.netns("n1")).start(timeout)
            with lab.timed("swarm_init"):
                manager.docker("swarm", "init", "--advertise-addr", "127.0.0.1",
                               "--listen-addr", "127.0.0.1:2377")
            with lab.timed("image_load"):
                manager.load_image(image)
            lab.timings["setup"] = round(time.monotonic() - start, 3)
            yield Swarm(lab, manager, image)
        finally:
            _teardown(lab)


def _link_nodes(lab: Lab, subnet: ipaddress.IPv4Network, nodes: Sequence[str]) -> dict[str, str]:
    """Bridge namespace ``<prefix>-br`` (bridge ``br0``, address .1) and one veth per node
    namespace (``eth0``, addresses .11, .12...). The bridge has its own namespace because the
    host's FORWARD chain drops bridged traffic. Returns ``{short name: namespace}``."""
    hosts = list(subnet.hosts())
    bridge = lab.netns("br")
    run(["ip", "-n", bridge, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", bridge, "addr", "add", f"{hosts[0]}/{subnet.prefixlen}", "dev", "br0"])
    run(["ip", "-n", bridge, "link", "set", "br0", "up"])
    namespaces = {"br": bridge}
    for index, node in enumerate(nodes, start=1):
        ns = lab.netns(node)
        # Both ends are created inside namespaces: no name ever appears in the host's.
        run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth",
             "peer", "name", f"v{index}", "netns", bridge])
        run(["ip", "-n", bridge, "link", "set", f"v{index}", "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{hosts[9 + index]}/{subnet.prefixlen}",
             "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        namespaces[node] = ns
    return namespaces


@contextlib.contextmanager
def two_node_swarm(
    prefix: str | None = None,
    *,
    image: str = BUSYBOX_IMAGE,
    timeout: float = 60.0,
    dispatcher_heartbeat: str | None = None,
) -> Iterator[Swarm]:
    """Manager on node 1, worker (label ``role=worker``) on node 2, a private registry.

    Addresses: ``192.168.X.1`` (bridge namespace, registry on port 5000), ``.11`` (manager),
    ``.12`` (worker), X chosen to clash with no route here. Both engines trust the registry
    (``--insecure-registry``); ``image`` is pushed to it and ``Swarm.image`` is its
    digest-pinned reference (the worker pulls it: it has no images of its own).
    ``dispatcher_heartbeat`` (e.g. ``"1s"``; swarm's default is 5s) shortens Down detection.
    """
    with _stop_signals_raise():
        lab = Lab(prefix)
        try:
            start = time.monotonic()
            subnet = free_subnet()
            hosts = list(subnet.hosts())
            registry = f"{hosts[0]}:{REGISTRY_PORT}"
            manager_ip, worker_ip = hosts[10], hosts[11]
            lab.record(subnet=str(subnet), registry=registry)
            with lab.timed("network"):
                namespaces = _link_nodes(lab, subnet, ["n1", "n2"])
            with lab.timed("registry_start"):
                start_registry(lab, namespaces["br"], registry)
            trusting = {"insecure_registries": [registry]}
            manager = lab.engine("n1", namespaces["n1"], **trusting).spawn()
            worker = lab.engine("n2", namespaces["n2"], **trusting).spawn()
            manager.wait_ready(timeout)
            worker.wait_ready(timeout)
            init = ["swarm", "init", "--advertise-addr", str(manager_ip),
                    "--listen-addr", f"{manager_ip}:2377"]
            if dispatcher_heartbeat:
                init += ["--dispatcher-heartbeat", dispatcher_heartbeat]
            with lab.timed("swarm_init"):
                manager.docker(*init)
            with lab.timed("worker_join"):
                token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
                worker.docker("swarm", "join", "--token", token,
                              "--advertise-addr", str(worker_ip),
                              "--listen-addr", f"{worker_ip}:2377", f"{manager_ip}:2377")
                node_id = worker.info("{{.Swarm.NodeID}}")
                manager.docker("node", "update", "--label-add", "role=worker", node_id)
            swarm = Swarm(lab, manager, image, worker, registry, str(subnet))
            wait_for(lambda: set(swarm.node_states().values()) == {"Ready"}
                     and len(swarm.node_states()) == 2,
                     timeout=timeout, what="both nodes Ready")
            with lab.timed("image_load"):
                manager.load_image(image)
            with lab.timed("push"):
                swarm.image = swarm.push_image(image)
            lab.timings["setup"] = round(time.monotonic() - start, 3)
            yield swarm
        finally:
            _teardown(lab)
