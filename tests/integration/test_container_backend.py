"""What only the container backend does, against real podman and a real docker engine (every
test runs on both). The behaviour every backend shares is in ``tests/contract``.

Images are the locally built test images (never pulled). Names come from ``unique_name`` and the
``runtime`` fixture removes every container of this run afterwards; tests that create other
things (an image tag, a mount) remove them themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kstlib_tasks import logstore
from kstlib_tasks.backends.container import ContainerOptions, detect_runtime
from kstlib_tasks.backends.container.backend import ContainerBackend
from kstlib_tasks.backends.container.parsing import (
    LABEL_FINGERPRINT,
    LABEL_RESTART,
    LABEL_SESSION,
    label_value,
)
from kstlib_tasks.engine.launch import prepare
from kstlib_tasks.errors import (
    BackendError,
    ContainerRuntimeNotFoundError,
    ImageNotFoundError,
    KstlibError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
)
from kstlib_tasks.models import SessionSpec, SessionStatus, State
from tests.helpers import BUSYBOX_IMAGE, PYTHON_IMAGE, retry_until, run_in_terminal

pytestmark = pytest.mark.containers

Names = Callable[[str], str]
SLEEPER = ("sh", "-c", "echo started; exec sleep 300")
WAIT = 60  # generous: the machine is shared with image builds and other suites

SIGTERM_SCRIPT = """
import pathlib, signal, sys, time
def bye(signum, frame):
    pathlib.Path("/data/marker").write_text(f"TERM {signum}")
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def spec(name: str, *command: str, image: str = BUSYBOX_IMAGE, volumes: tuple[str, ...] = (),
         ports: tuple[str, ...] = (), init: bool = True, **kw: Any) -> SessionSpec:
    options = ContainerOptions(image_ref=image, volumes=volumes, ports=ports, init=init)
    return SessionSpec(name, "container", command or SLEEPER, options=options, **kw)


def start(backend: ContainerBackend, the_spec: SessionSpec) -> SessionStatus:
    """As the engine starts a session: through a Launch."""
    return backend.start(prepare(the_spec, {}))


def raw(runtime: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The runtime itself, bypassing kstlib (to create foreign objects and check results)."""
    return subprocess.run([runtime, *args], capture_output=True, text=True, timeout=120)


def inspect(runtime: str, name: str) -> dict[str, Any] | None:
    done = raw(runtime, "inspect", "--type", "container", name)
    if done.returncode != 0:
        return None
    items = json.loads(done.stdout)
    return items[0] if items else None


def exited(backend: ContainerBackend, name: str) -> SessionStatus | None:
    st = backend.status(name)
    return st if st is not None and st.state is State.EXITED else None


def wait_for_line(backend: ContainerBackend, name: str, text: str, timeout: float = WAIT) -> None:
    """Wait until the session printed ``text``; on timeout say what it was doing instead."""
    try:
        retry_until(lambda: text in backend.logs(name, lines=50), timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"{name!r} never printed {text!r}: status {backend.status(name)}, "
            f"logs {backend.logs(name, lines=10)}"
        ) from None


def same_name(runtime: str, name: str) -> list[str]:
    """The names of every container called exactly ``name`` (one listing)."""
    listing = raw(runtime, "ps", "-a", "--format", "{{.Names}}")
    return [n for n in listing.stdout.split() if n == name]


# --------------------------------------------------------------------------- what a run carries


def test_labels_mark_the_container(runtime: str, unique_name: Names) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("labels")
    launch = prepare(spec(name), {})
    backend.start(launch)
    labels = (inspect(runtime, name) or {})["Config"]["Labels"]
    assert labels[LABEL_SESSION] == name
    assert labels[LABEL_FINGERPRINT] == label_value(launch.fingerprint)
    assert labels[LABEL_RESTART] == "no"
    backend.stop(name, force=True)


def test_volume_and_port_reach_the_container(
    runtime: str, unique_name: Names, tmp_path: Path
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("volport")
    data = tmp_path / "data"
    data.mkdir()
    start(backend, spec(name, "sh", "-c", "echo written > /data/out.txt; exec sleep 300",
                        volumes=(f"{data}:/data",), ports=("127.0.0.1::8080",)))
    retry_until((data / "out.txt").exists, timeout=WAIT)
    assert (data / "out.txt").read_text() == "written\n"
    bindings = (inspect(runtime, name) or {})["HostConfig"]["PortBindings"]
    assert [b["HostIp"] for b in bindings["8080/tcp"]] == ["127.0.0.1"]
    backend.stop(name, force=True)


def test_docker_has_no_pid_in_its_listing_but_status_has_it(
    runtime: str, unique_name: Names
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("pid")
    started = start(backend, spec(name))
    assert started.pid and started.pid > 0
    status = backend.status(name)
    assert status is not None and status.pid == started.pid
    row = next(s for s in backend.list() if s.name == name)
    assert row.pid == (started.pid if runtime == "podman" else None)
    backend.stop(name, force=True)


def test_graceful_stop_without_an_init_process(
    runtime: str, unique_name: Names, tmp_path: Path
) -> None:
    """``init: false``: the command is PID 1 and gets the SIGTERM itself."""
    backend = ContainerBackend(runtime)
    name = unique_name("pid1")
    data = tmp_path / "data"
    data.mkdir()
    start(backend, spec(name, "python3", "-u", "-c", SIGTERM_SCRIPT, image=PYTHON_IMAGE,
                        volumes=(f"{data}:/data",), init=False))
    wait_for_line(backend, name, "ready")
    began = time.monotonic()
    stopped = backend.stop(name, timeout=60)
    assert time.monotonic() - began < 30, "stop waited for the kill timeout: SIGTERM was lost"
    assert (data / "marker").read_text() == "TERM 15"
    assert stopped.state is State.EXITED and stopped.exit_code == 0


SPLIT_WRITES = """
import sys, time
for i in range(1, 6):
    sys.stdout.write(f"line{i}"); sys.stdout.flush()
    time.sleep(0.02)
    sys.stdout.write("\\n"); sys.stdout.flush()
print("done", flush=True)
time.sleep(300)
"""


def test_lines_of_lines_written_in_pieces(runtime: str, unique_name: Names) -> None:
    """A line written in two writes (text, then newline: Python's unbuffered print) is still
    one line for ``--lines`` (podman 4.3's ``logs --tail`` splits such lines in two: podman's
    ``k8s-file`` log is read directly)."""
    backend = ContainerBackend(runtime)
    name = unique_name("pieces")
    start(backend, spec(name, "python3", "-c", SPLIT_WRITES, image=PYTHON_IMAGE))
    wait_for_line(backend, name, "done")
    expected = [f"line{i}" for i in range(1, 6)] + ["done"]
    assert backend.logs(name) == expected
    assert backend.logs(name, lines=3) == expected[-3:]
    assert backend.logs(name, lines=100) == expected
    backend.stop(name, force=True)
    assert backend.logs(name, lines=3) == expected[-3:]


def test_stop_of_a_paused_container(runtime: str, unique_name: Names, tmp_path: Path) -> None:
    """Paused by hand, then stopped: the SIGTERM handler still runs (podman refuses to stop a
    paused container, so kstlib unpauses it first)."""
    backend = ContainerBackend(runtime)
    name = unique_name("paused")
    data = tmp_path / "data"
    data.mkdir()
    start(backend, spec(name, "python3", "-u", "-c", SIGTERM_SCRIPT, image=PYTHON_IMAGE,
                        volumes=(f"{data}:/data",)))
    wait_for_line(backend, name, "ready")
    paused = raw(runtime, "pause", name)
    assert paused.returncode == 0, paused.stderr
    status = backend.status(name)
    assert status is not None and status.state is State.STOPPED
    with pytest.raises(SessionAlreadyRunningError):  # a paused process still exists
        start(backend, spec(name))
    stopped = backend.stop(name, timeout=20)
    assert stopped.state is State.EXITED and stopped.exit_code == 0
    assert (data / "marker").read_text() == "TERM 15"
    assert backend.status(name) is None


# --------------------------------------------------------------------------- failed starts


def test_missing_image_is_named_never_pulled_and_keeps_the_last_output(
    runtime: str, unique_name: Names
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("noimg")
    start(backend, spec(name, "sh", "-c", "echo last run"))
    retry_until(lambda: exited(backend, name), timeout=WAIT)
    backend.stop(name)
    image = "localhost/kstlib-test-missing:never"
    began = time.monotonic()
    with pytest.raises(ImageNotFoundError) as info:
        start(backend, spec(name, image=image))
    assert image in str(info.value) and runtime in str(info.value)
    assert time.monotonic() - began < 30  # no pull attempt hanging on a registry
    assert backend.status(name) is None
    assert backend.logs(name) == ["last run"]  # a failed start does not lose it


def test_failed_run_leaves_no_container(runtime: str, unique_name: Names) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("badcmd")
    # Without an init process the runtime itself fails to start the command: the container
    # it had already created must go.
    with pytest.raises(BackendError, match="nonexistent"):
        start(backend, spec(name, "/nonexistent", init=False))
    assert backend.status(name) is None
    assert same_name(runtime, name) == []
    # With --init, the init process starts and reports the failure as an exit code instead.
    start(backend, spec(name, "/nonexistent"))
    done = retry_until(lambda: exited(backend, name), timeout=WAIT)
    assert done.exit_code not in (None, 0)  # tini says 127, catatonit 1
    assert "no such file" in "\n".join(backend.logs(name)).lower()
    backend.stop(name)


# --------------------------------------------------------------------------- foreign containers


def test_id_prefix_is_not_a_name(runtime: str, unique_name: Names) -> None:
    """Runtimes accept id prefixes as references: stop must never reach a container that way."""
    backend = ContainerBackend(runtime)
    started = start(backend, spec(unique_name("prefix")))
    full_id = (inspect(runtime, started.name) or {})["Id"]
    prefix = full_id[:12]
    assert backend.status(prefix) is None
    with pytest.raises(SessionNotRunningError):
        backend.stop(prefix, force=True)
    status = backend.status(started.name)
    assert status is not None and status.state is State.RUNNING
    backend.stop(started.name, force=True)


def test_container_created_by_hand(runtime: str, unique_name: Names) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("foreign")
    made = raw(runtime, "run", "-d", "--pull=never", "--name", name, BUSYBOX_IMAGE,
               "sh", "-c", "echo by hand; exec sleep 300")
    assert made.returncode == 0, made.stderr
    row = next(s for s in backend.list() if s.name == name)
    assert row.state is State.RUNNING and not row.managed
    status = backend.status(name)
    assert status is not None and not status.managed and status.pid
    wait_for_line(backend, name, "by hand")
    stopped = backend.stop(name, timeout=1)  # sleep as PID 1 ignores SIGTERM: killed after 1s
    assert stopped.state is State.EXITED and not stopped.managed
    assert backend.status(name) is None
    assert backend.logs(name) == ["by hand"]


def test_auto_removed_container_created_by_hand(runtime: str, unique_name: Names) -> None:
    """A ``--rm`` container vanishes when it stops: its output is kept before stopping."""
    backend = ContainerBackend(runtime)
    name = unique_name("autorm")
    made = raw(runtime, "run", "-d", "--rm", "--init", "--pull=never", "--name", name,
               BUSYBOX_IMAGE, "sh", "-c", "echo fleeting; exec sleep 300")
    assert made.returncode == 0, made.stderr
    wait_for_line(backend, name, "fleeting")
    stopped = backend.stop(name, timeout=5)
    assert stopped.state is State.EXITED and stopped.pid is None
    retry_until(lambda: backend.status(name) is None, timeout=WAIT)
    assert backend.logs(name) == ["fleeting"]


def test_start_over_a_foreign_exited_container_is_refused(
    runtime: str, unique_name: Names
) -> None:
    """An exited container of that name that kstlib did not start is somebody's: kept."""
    backend = ContainerBackend(runtime)
    name = unique_name("notours")
    made = raw(runtime, "run", "--pull=never", "--name", name, BUSYBOX_IMAGE,
               "sh", "-c", "echo somebody else; exit 2")
    assert made.returncode == 2, made.stderr
    before = inspect(runtime, name)
    assert before is not None
    with pytest.raises(SessionAlreadyRunningError, match="not started by kstlib") as info:
        start(backend, spec(name))
    assert "left alone" in str(info.value)
    after = inspect(runtime, name)
    assert after is not None and after["Id"] == before["Id"]
    assert after["State"]["Status"] == "exited" and after["State"]["ExitCode"] == 2
    assert LABEL_SESSION not in (after["Config"].get("Labels") or {})
    assert raw(runtime, "logs", name).stdout.strip() == "somebody else"


# --------------------------------------------------------------------------- attach


def test_attach_to_a_stopped_container_is_an_error(runtime: str, unique_name: Names) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("attx")
    start(backend, spec(name, "true"))
    retry_until(lambda: exited(backend, name), timeout=WAIT)
    with pytest.raises(SessionNotRunningError, match="not running"):
        backend.attach(name)
    backend.stop(name)


def test_attach_detaches_with_ctrl_p_ctrl_q(runtime: str, unique_name: Names) -> None:
    """In a real terminal: attach replaces the process and shows the session's output, Ctrl+P
    Ctrl+Q ends it, and the session keeps running."""
    backend = ContainerBackend(runtime)
    name = unique_name("detach")
    start(backend, spec(name, "sh", "-c", "while true; do echo tick; sleep 0.2; done"))
    code = (
        "from kstlib_tasks.backends.container.backend import ContainerBackend\n"
        f"ContainerBackend({runtime!r}).attach({name!r})\n"
    )
    typed: list[float] = []  # when each detach key was typed

    def detach_keys(seen: str) -> bytes | None:
        # Two key presses, as typed: podman does not see the sequence in a single read.
        if "tick" not in seen or len(typed) == 2:
            return None
        if typed and time.monotonic() - typed[0] < 0.1:
            return None
        typed.append(time.monotonic())
        return b"\x10" if len(typed) == 1 else b"\x11"

    exit_code, out = run_in_terminal([sys.executable, "-c", code], Path.cwd(),
                                     typing=detach_keys, timeout=60)
    assert len(typed) == 2, f"attach printed nothing: {out!r}"
    if runtime == "podman":  # the docker CLI exits 1 after a detach ("read escape sequence")
        assert exit_code == 0, out
    status = backend.status(name)
    assert status is not None and status.state is State.RUNNING
    backend.stop(name, force=True)


# --------------------------------------------------------------------------- attacks and faults


def test_parallel_starts_over_an_exited_leftover(runtime: str, unique_name: Names) -> None:
    """Six starts at once over an exited leftover of ours: one wins, the others are told
    the session is already running (never a raw runtime error), one container remains."""
    name = unique_name("race")
    start(ContainerBackend(runtime), spec(name, "sh", "-c", "exit 0"))
    retry_until(lambda: exited(ContainerBackend(runtime), name), timeout=WAIT)
    barrier = threading.Barrier(6)

    def one(_: int) -> SessionStatus | KstlibError:
        backend = ContainerBackend(runtime)  # one per caller, as separate kstlib processes
        launch = prepare(spec(name), {})
        barrier.wait(timeout=WAIT)
        try:
            return backend.start(launch)
        except KstlibError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(6)))
    won = [r for r in results if isinstance(r, SessionStatus)]
    lost = [r for r in results if not isinstance(r, SessionStatus)]
    assert len(won) == 1, results
    assert all(type(r) is SessionAlreadyRunningError for r in lost), [repr(r) for r in lost]
    assert same_name(runtime, name) == [name]
    status = ContainerBackend(runtime).status(name)
    assert status is not None and status.state is State.RUNNING
    assert status.details["id"] == won[0].details["id"]
    ContainerBackend(runtime).stop(name, force=True)
    assert same_name(runtime, name) == []


def test_the_runtimes_own_log_is_bounded(
    runtime: str, unique_name: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSTLIB_LOG_MAX_BYTES", "2000000")
    backend = ContainerBackend(runtime)
    name = unique_name("logopt")
    start(backend, spec(name))
    config = (inspect(runtime, name) or {})["HostConfig"]["LogConfig"]
    if runtime == "podman":
        assert config["Type"] == "k8s-file" and config["Size"] == "2MB", config
    else:
        assert config["Config"] == {"max-size": "2000000", "max-file": "2"}, config
    backend.stop(name, force=True)


def test_a_flood_then_stop(runtime: str, unique_name: Names) -> None:
    """``yes`` for 5 s: stop is quick, memory stays bounded, the end of the output is kept."""
    backend = ContainerBackend(runtime)
    name = unique_name("flood")
    start(backend, spec(name, "sh", "-c", "timeout 5 yes; echo flood over; exec sleep 300"))
    wait_for_line(backend, name, "flood over", timeout=WAIT + 5)
    tracemalloc.start()
    try:
        began = time.monotonic()
        stopped = backend.stop(name, timeout=5)
        took = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stopped.state is State.EXITED and stopped.note is None
    assert took < 60, took
    assert peak < 32 * 1024 * 1024, f"stop held {peak} bytes"
    assert backend.status(name) is None
    kept = backend.logs(name, lines=3)
    assert kept[0] == "y" and kept[-1] == "flood over", kept  # (busybox says "Terminated")
    assert logstore.size(backend.log_path(name)) <= 2 * logstore.max_bytes()


@pytest.fixture
def small_state_folder(isolated_env: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A 64 KiB tmpfs over the state folder's logs (read-only with ``request.param``)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = logstore.private_dir(logstore.state_dir() / "logs")
    options = "size=64k,mode=0700" + (",ro" if request.param == "read-only" else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], timeout=30)


@pytest.mark.parametrize("small_state_folder", ["full", "read-only"], indirect=True)
def test_stop_when_the_state_folder_cannot_take_the_output(
    runtime: str, unique_name: Names, small_state_folder: Path
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("nospace")
    # about 270 KB of output in long lines: more than the 64 KiB the folder can hold, less
    # than the runtimes' own bound (podman truncates its log when it is reached)
    start(backend, spec(name, "sh", "-c", "yes 'a line of output ' | head -n 15000 | "
                        "tr -d '\\n' | fold -w 1000; echo; echo end; exec sleep 300"))
    wait_for_line(backend, name, "end")
    began = time.monotonic()
    stopped = backend.stop(name, timeout=5)
    assert time.monotonic() - began < 60
    assert stopped.state is State.EXITED
    assert stopped.note is not None and "output not kept" in stopped.note, stopped.note
    assert backend.status(name) is None and same_name(runtime, name) == []
    assert [p for p in small_state_folder.rglob("*") if ".tmp" in p.name] == []


@pytest.mark.parametrize("planted", ["NAME.log", "its temporary file"])
def test_saved_output_is_private_and_never_written_through_a_symlink(
    runtime: str, unique_name: Names, tmp_path: Path, planted: str
) -> None:
    """The output saved at stop lands in a 0600 file of the private state folder; a symlink
    planted where it goes (the log, or the temporary file it is streamed to) is replaced,
    never followed."""
    import stat

    backend = ContainerBackend(runtime)
    name = unique_name("saved")
    start(backend, spec(name, "sh", "-c", "echo kept output; exec sleep 300"))
    wait_for_line(backend, name, "kept output")
    log = backend.log_path(name)
    logstore.private_dir(log.parent)
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    link = log if planted == "NAME.log" else log.with_name(f"{log.name}.{os.getpid()}.tmp")
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    backend.stop(name, timeout=5)
    assert target.read_text() == "precious\n"
    assert not log.is_symlink() and stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert backend.logs(name) == ["kept output"]
    link.unlink(missing_ok=True)


@pytest.mark.parametrize("fault", ["log path is a folder", "logs fails"])
def test_output_that_cannot_be_read_keeps_the_container(
    runtime: str, unique_name: Names, tmp_path: Path, fault: str
) -> None:
    """The runtime's log file cannot be read, or ``logs`` fails: stop says so and keeps the
    container (with its output) for another stop, instead of losing both."""
    name = unique_name("unread")
    start(ContainerBackend(runtime), spec(name, "sh", "-c", "echo precious; exec sleep 300"))
    wait_for_line(ContainerBackend(runtime), name, "precious")
    item = inspect(runtime, name) or {}
    log_file = Path(item["HostConfig"]["LogConfig"].get("Path") or item["LogPath"])
    backend = ContainerBackend(runtime)
    aside = log_file.with_name(log_file.name + ".aside")
    log_file.rename(aside)
    if fault == "log path is a folder":
        log_file.mkdir()
    else:
        log_file.symlink_to("/nonexistent-kstlib/gone")  # so that docker cannot recreate it
    if fault == "logs fails" and runtime == "podman":
        # podman 4.3 answers `logs` with nothing and exit 0 when its log file cannot be
        # opened: its failure is simulated by a wrapper in front of the real binary
        wrapper = tmp_path / "bin" / "podman"
        wrapper.parent.mkdir()
        wrapper.write_text('#!/bin/sh\n[ "$1" = logs ] && { echo "Error: simulated: cannot '
                           'read the log" >&2; exit 125; }\nexec podman "$@"\n')
        wrapper.chmod(0o755)
        backend = ContainerBackend(str(wrapper))
    try:
        with pytest.raises(BackendError, match="stopped but kept") as info:
            backend.stop(name, timeout=5)
        assert name in str(info.value)
        status = backend.status(name)
        assert status is not None and status.state is State.EXITED  # kept
    finally:
        if log_file.is_symlink():
            log_file.unlink()
        elif log_file.is_dir():
            log_file.rmdir()
        if aside.exists():
            aside.rename(log_file)
    backend.stop(name)  # a second stop, once the output can be read again
    assert same_name(runtime, name) == []
    assert backend.logs(name) == ["precious"]


# -- runtime detection (PATH made of symlinks; needs no engine) --------------------------------


def _path_with(tmp_path: Path, names: tuple[str, ...]) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(parents=True)
    for name in names:
        target = next(
            (p for p in ("/usr/bin/" + name, "/usr/local/bin/" + name) if os.path.exists(p)),
            "/bin/true",
        )
        (folder / name).symlink_to(target)
    return str(folder)


@pytest.mark.parametrize(
    ("present", "expected"),
    [(("docker",), "docker"), (("podman",), "podman"), (("docker", "podman"), "podman")],
)
def test_detect_runtime_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              present: tuple[str, ...], expected: str) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, present))
    assert detect_runtime() == expected


def test_detect_runtime_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, ()))
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        detect_runtime()
    text = str(info.value)
    assert "podman" in text and "docker" in text and "apt-get install" in text


def test_detect_runtime_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, ("docker", "podman")))
    assert detect_runtime("docker") == "docker"
    monkeypatch.setenv("PATH", _path_with(tmp_path / "only", ("podman",)))
    with pytest.raises(ContainerRuntimeNotFoundError, match="'docker' not found"):
        detect_runtime("docker")
