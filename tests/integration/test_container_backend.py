"""The container backend against real podman and a real docker engine (every test runs on both).

Images are the locally built test images (never pulled). Names come from ``unique_name`` and the
``runtime`` fixture removes every container of this run afterwards; tests that create other
things (an image tag) remove them themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kstlib_tasks.backends.base import Backend
from kstlib_tasks.backends.container import (
    LABEL_SESSION,
    LABEL_SPEC,
    ContainerBackend,
    detect_runtime,
)
from kstlib_tasks.errors import (
    BackendError,
    ContainerRuntimeNotFoundError,
    ImageNotFoundError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
)
from kstlib_tasks.models import SessionSpec, SessionStatus, State
from tests.helpers import BUSYBOX_IMAGE, PYTHON_IMAGE, retry_until, run_in_terminal

pytestmark = pytest.mark.containers

SLEEPER = ("sh", "-c", "echo started; exec sleep 300")

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


def spec(name: str, *command: str, image: str = BUSYBOX_IMAGE, **kw) -> SessionSpec:
    return SessionSpec(
        name=name, backend="container", image=image, command=command or SLEEPER, **kw
    )


def raw(runtime: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The runtime itself, bypassing kstlib (to create foreign objects and check results)."""
    return subprocess.run([runtime, *args], capture_output=True, text=True, timeout=120)


def exited(backend: ContainerBackend, name: str) -> SessionStatus | None:
    st = backend.status(name)
    return st if st is not None and st.state is State.EXITED else None


def has_line(backend: ContainerBackend, name: str, text: str) -> bool:
    return text in backend.logs(name)


def wait_for_line(backend: ContainerBackend, name: str, text: str, timeout: float = 60) -> None:
    """Wait until the session printed ``text``; on timeout say what it was doing instead.

    Generous timeout: the suite shares the machine with image builds and other suites.
    """
    try:
        retry_until(lambda: has_line(backend, name, text), timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"{name!r} never printed {text!r}: status {backend.status(name)}, "
            f"logs {backend.logs(name)[-10:]}"
        ) from None


def test_backend_protocol(runtime: str) -> None:
    backend: Backend = ContainerBackend(runtime)  # type-checks against the Protocol
    assert backend.name == "container"


def test_lifecycle(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("life")
    started = backend.start(spec(name))
    assert started.name == name and started.backend == "container"
    assert started.state is State.RUNNING and started.pid and started.pid > 0
    assert started.managed and started.runtime == runtime and started.image == BUSYBOX_IMAGE
    assert started.created_at and started.created_at.endswith("Z")
    assert started.command == "sh -c 'echo started; exec sleep 300'"

    status = backend.status(name)
    assert status is not None and status.state is State.RUNNING and status.pid == started.pid
    listed = {s.name: s for s in backend.list()}
    assert listed[name].state is State.RUNNING and listed[name].managed
    assert listed[name].created_at == started.created_at
    wait_for_line(backend, name, "started")

    stopped = backend.stop(name, timeout=1)
    assert stopped.state is State.EXITED and stopped.exit_code is not None
    assert backend.status(name) is None
    assert name not in {s.name for s in backend.list()}
    with pytest.raises(SessionNotRunningError):
        backend.stop(name)


def test_labels_mark_the_container(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    the_spec = spec(name := unique_name("labels"))
    backend.start(the_spec)
    template = " ".join(
        f'{{{{index .Config.Labels "{key}"}}}}' for key in (LABEL_SESSION, LABEL_SPEC)
    )
    out = raw(runtime, "inspect", "--type", "container", "--format", template, name)
    assert out.stdout.split() == [name, the_spec.fingerprint()]
    backend.stop(name, force=True)


def test_env_volume_workdir_and_port_reach_the_process(
    runtime: str, unique_name, tmp_path: Path
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("envvol")
    data = tmp_path / "data"
    data.mkdir()
    backend.start(spec(
        name,
        "sh", "-c", 'echo "$GREETING" > env.txt; pwd > pwd.txt; echo written',
        env={"GREETING": "hello world; not a shell"},
        volumes=(f"{data}:/data",),
        working_dir="/data",
        ports=("8080",),
    ))
    done = retry_until(lambda: exited(backend, name), timeout=60)
    assert done.exit_code == 0
    assert (data / "env.txt").read_text() == "hello world; not a shell\n"
    assert (data / "pwd.txt").read_text() == "/data\n"
    assert backend.logs(name) == ["written"]
    backend.stop(name)


@pytest.mark.parametrize("init", [True, False], ids=["init", "pid1"])
def test_graceful_stop_reaches_sigterm_handler(
    runtime: str, unique_name, tmp_path: Path, init: bool
) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("term")
    data = tmp_path / "data"
    data.mkdir()
    backend.start(spec(
        name, "python3", "-u", "-c", SIGTERM_SCRIPT,
        image=PYTHON_IMAGE, volumes=(f"{data}:/data",), init=init,
    ))
    wait_for_line(backend, name, "ready")
    began = time.monotonic()
    stopped = backend.stop(name, timeout=60)
    assert time.monotonic() - began < 30, "stop waited for the kill timeout: SIGTERM was lost"
    assert (data / "marker").read_text() == "TERM 15"
    assert stopped.state is State.EXITED and stopped.exit_code == 0
    assert backend.logs(name) == ["ready", "got SIGTERM"]  # kept after removal


def test_exit_code_of_a_failing_command_and_replacement(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("fail")
    backend.start(spec(name, "sh", "-c", "echo out; echo err >&2; exit 7"))
    done = retry_until(lambda: exited(backend, name), timeout=60)
    assert done.exit_code == 7 and done.pid is None
    listed = {s.name: s for s in backend.list()}
    assert listed[name].state is State.EXITED and listed[name].exit_code == 7
    assert sorted(backend.logs(name)) == ["err", "out"]  # both streams

    # start replaces the exited leftover with a container from the *current* spec
    replaced = backend.start(spec(name, "sh", "-c", "echo second; exec sleep 300"))
    assert replaced.state is State.RUNNING
    assert replaced.command == "sh -c 'echo second; exec sleep 300'"
    retry_until(lambda: backend.logs(name) == ["second"], timeout=60)
    backend.stop(name, force=True)


def test_logs_after_stop_and_lines(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("logs")
    backend.start(spec(name, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 300"))
    wait_for_line(backend, name, "line5")
    assert backend.logs(name, lines=2) == ["line4", "line5"]
    backend.stop(name, force=True)
    assert backend.status(name) is None
    assert backend.logs(name) == [f"line{i}" for i in range(1, 6)]
    assert backend.logs(name, lines=2) == ["line4", "line5"]
    assert backend.logs(name, lines=0) == []
    # a start that fails does not throw the last run's output away
    with pytest.raises(ImageNotFoundError):
        backend.start(spec(name, image="localhost/kstlib-test-missing:never"))
    assert backend.logs(name, lines=1) == ["line5"]
    # a new run starts a new log
    backend.start(spec(name, "sh", "-c", "echo fresh"))
    retry_until(lambda: exited(backend, name), timeout=60)
    backend.stop(name)
    assert backend.logs(name) == ["fresh"]


SPLIT_WRITES = """
import sys, time
for i in range(1, 6):
    sys.stdout.write(f"line{i}"); sys.stdout.flush()
    time.sleep(0.02)
    sys.stdout.write("\\n"); sys.stdout.flush()
print("done", flush=True)
time.sleep(300)
"""


def test_lines_of_lines_written_in_pieces(runtime: str, unique_name) -> None:
    """A line written in two writes (text, then newline: Python's unbuffered print) is still
    one line for ``--lines`` (podman 4.3's ``logs --tail`` splits such lines in two)."""
    backend = ContainerBackend(runtime)
    name = unique_name("pieces")
    backend.start(spec(name, "python3", "-c", SPLIT_WRITES, image=PYTHON_IMAGE))
    wait_for_line(backend, name, "done")
    expected = [f"line{i}" for i in range(1, 6)] + ["done"]
    assert backend.logs(name) == expected
    assert backend.logs(name, lines=3) == expected[-3:]
    assert backend.logs(name, lines=100) == expected
    backend.stop(name, force=True)
    assert backend.logs(name, lines=3) == expected[-3:]


def test_stop_of_a_paused_container(runtime: str, unique_name, tmp_path: Path) -> None:
    """Paused by hand, then stopped: the SIGTERM handler still runs (podman refuses to stop a
    paused container, so kstlib unpauses it first)."""
    backend = ContainerBackend(runtime)
    name = unique_name("paused")
    data = tmp_path / "data"
    data.mkdir()
    backend.start(spec(
        name, "python3", "-u", "-c", SIGTERM_SCRIPT, image=PYTHON_IMAGE, volumes=(f"{data}:/data",),
    ))
    wait_for_line(backend, name, "ready")
    paused = raw(runtime, "pause", name)
    assert paused.returncode == 0, paused.stderr
    status = backend.status(name)
    assert status is not None and status.state is State.STOPPED
    with pytest.raises(SessionAlreadyRunningError):  # a paused process still exists
        backend.start(spec(name))
    stopped = backend.stop(name, timeout=20)
    assert stopped.state is State.EXITED and stopped.exit_code == 0
    assert (data / "marker").read_text() == "TERM 15"
    assert backend.status(name) is None


def test_logs_of_nothing_is_an_error(runtime: str, unique_name) -> None:
    with pytest.raises(SessionNotRunningError, match="no saved logs"):
        ContainerBackend(runtime).logs(unique_name("never"))


def test_missing_image_is_named_and_never_pulled(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("noimg")
    image = "localhost/kstlib-test-missing:never"
    began = time.monotonic()
    with pytest.raises(ImageNotFoundError) as info:
        backend.start(spec(name, image=image))
    assert image in str(info.value) and runtime in str(info.value)
    assert time.monotonic() - began < 30  # no pull attempt hanging on a registry
    assert backend.status(name) is None


def test_failed_run_leaves_no_container(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("badcmd")
    # Without an init process the runtime itself fails to start the command: the container
    # it had already created must go.
    with pytest.raises(BackendError, match="nonexistent"):
        backend.start(spec(name, "/nonexistent", init=False))
    assert backend.status(name) is None
    assert name not in {s.name for s in backend.list()}
    # With --init, the init process starts and reports the failure as an exit code instead.
    backend.start(spec(name, "/nonexistent"))
    done = retry_until(lambda: exited(backend, name), timeout=60)
    assert done.exit_code not in (None, 0)  # tini says 127, catatonit 1
    assert "no such file" in "\n".join(backend.logs(name)).lower()
    backend.stop(name)


def test_already_running(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("twice")
    first = backend.start(spec(name))
    with pytest.raises(SessionAlreadyRunningError) as info:
        backend.start(spec(name, "sh", "-c", "echo other"))
    assert f"session '{name}' is already running ({runtime})" in str(info.value)
    # the running container was left alone
    status = backend.status(name)
    assert status is not None and status.pid == first.pid
    backend.stop(name, force=True)


def test_container_created_by_hand(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("foreign")
    made = raw(runtime, "run", "-d", "--pull=never", "--name", name, BUSYBOX_IMAGE,
               "sh", "-c", "echo by hand; exec sleep 300")
    assert made.returncode == 0, made.stderr
    listed = {s.name: s for s in backend.list()}
    assert listed[name].state is State.RUNNING and not listed[name].managed
    status = backend.status(name)
    assert status is not None and not status.managed and status.pid
    wait_for_line(backend, name, "by hand")
    stopped = backend.stop(name, timeout=1)  # sleep as PID 1 ignores SIGTERM: killed after 1s
    assert stopped.state is State.EXITED and not stopped.managed
    assert backend.status(name) is None
    assert backend.logs(name) == ["by hand"]


def test_auto_removed_container_created_by_hand(runtime: str, unique_name) -> None:
    """A ``--rm`` container vanishes when it stops: its output is kept before stopping."""
    backend = ContainerBackend(runtime)
    name = unique_name("autorm")
    made = raw(runtime, "run", "-d", "--rm", "--init", "--pull=never", "--name", name,
               BUSYBOX_IMAGE, "sh", "-c", "echo fleeting; exec sleep 300")
    assert made.returncode == 0, made.stderr
    wait_for_line(backend, name, "fleeting")
    stopped = backend.stop(name, timeout=5)
    assert stopped.state is State.EXITED and stopped.pid is None
    retry_until(lambda: backend.status(name) is None, timeout=60)
    assert backend.logs(name) == ["fleeting"]


def test_id_prefix_is_not_a_name(runtime: str, unique_name) -> None:
    """Runtimes accept id prefixes as references: stop must never reach a container that way."""
    backend = ContainerBackend(runtime)
    started = backend.start(spec(unique_name("prefix")))
    full_id = raw(runtime, "inspect", "--type", "container", "--format", "{{.Id}}",
                  started.name).stdout.strip()
    prefix = full_id[:12]
    assert backend.status(prefix) is None
    with pytest.raises(SessionNotRunningError):
        backend.stop(prefix, force=True)
    status = backend.status(started.name)
    assert status is not None and status.state is State.RUNNING
    backend.stop(started.name, force=True)


def test_image_named_like_a_session_is_not_a_session(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("img")
    tagged = raw(runtime, "tag", BUSYBOX_IMAGE, f"{name}:latest")
    assert tagged.returncode == 0, tagged.stderr
    try:
        assert backend.status(name) is None
        assert name not in {s.name for s in backend.list()}
        with pytest.raises(SessionNotRunningError):
            backend.stop(name)
        with pytest.raises(SessionNotRunningError):
            backend.attach(name)
        # and the name is still free for a real session
        assert backend.start(spec(name)).state is State.RUNNING
        backend.stop(name, force=True)
    finally:
        raw(runtime, "rmi", f"{name}:latest")


def test_attach_to_a_stopped_container_is_an_error(runtime: str, unique_name) -> None:
    backend = ContainerBackend(runtime)
    name = unique_name("attx")
    backend.start(spec(name, "true"))
    retry_until(lambda: exited(backend, name), timeout=60)
    with pytest.raises(SessionNotRunningError, match="not running"):
        backend.attach(name)
    backend.stop(name)


def test_attach_detaches_with_ctrl_p_ctrl_q(runtime: str, unique_name) -> None:
    """In a real terminal: attach replaces the process and shows the session's output, Ctrl+P
    Ctrl+Q ends it, and the session keeps running."""
    backend = ContainerBackend(runtime)
    name = unique_name("detach")
    backend.start(spec(name, "sh", "-c", "while true; do echo tick; sleep 0.2; done"))
    code = (
        "from kstlib_tasks.backends.container import ContainerBackend\n"
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
def test_detect_runtime_order(tmp_path: Path, monkeypatch, present, expected) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, present))
    assert detect_runtime() == expected


def test_detect_runtime_none(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, ()))
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        detect_runtime()
    text = str(info.value)
    assert "podman" in text and "docker" in text and "apt-get install" in text


def test_detect_runtime_preferred(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, ("docker", "podman")))
    assert detect_runtime("docker") == "docker"
    monkeypatch.setenv("PATH", _path_with(tmp_path / "only", ("podman",)))
    with pytest.raises(ContainerRuntimeNotFoundError, match="'docker' not found"):
        detect_runtime("docker")
