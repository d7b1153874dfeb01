"""SessionManager on tiny fake backends: routing, merging, laziness, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kstlib_tasks.config import OpsConfig
from kstlib_tasks.errors import (
    ContainerRuntimeNotFoundError,
    InvalidSessionError,
    SessionAlreadyRunningError,
    SessionNotFoundError,
    SessionNotRunningError,
    ValidationError,
)
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import SessionSpec, SessionStatus, State


class FakeBackend:
    """Keeps sessions in a dict; counts calls so tests can assert laziness."""

    def __init__(self, name: str, scope: str | None = None):
        self.name = name
        self.scope = scope
        self.live: dict[str, SessionStatus] = {}
        self.calls: list[str] = []
        self.started: list[SessionSpec] = []

    def _status(self, name, state=State.RUNNING, **kw):
        return SessionStatus(name, self.name, state, pid=100,
                             socket=self.scope if self.name == "tmux" else None,
                             runtime=self.scope if self.name == "container" else None, **kw)

    def add(self, name, state=State.RUNNING, **kw):
        self.live[name] = self._status(name, state, **kw)

    def start(self, spec):
        self.calls.append("start")
        current = self.live.get(spec.name)
        if current is not None and current.state == State.RUNNING:
            raise SessionAlreadyRunningError(f"session '{spec.name}' is already running")
        self.started.append(spec)
        self.add(spec.name, image=spec.image)
        return self.live[spec.name]

    def stop(self, name, *, timeout=10.0, force=False):
        self.calls.append(f"stop:{timeout}:{force}")
        if name not in self.live:
            raise SessionNotRunningError(f"session '{name}' is not running")
        return self.live.pop(name)

    def status(self, name):
        self.calls.append("status")
        return self.live.get(name)

    def list(self):
        self.calls.append("list")
        return list(self.live.values())

    def logs(self, name, lines=None):
        self.calls.append("logs")
        return [f"{self.name}:{name}:{lines}"]

    def attach(self, name):
        self.calls.append("attach")
        raise SystemExit(0)


class Fakes:
    def __init__(self, runtime="podman"):
        self.tmux: dict[str | None, FakeBackend] = {}
        self.containers: dict[str, FakeBackend] = {}
        self.detected = 0
        self.runtime = runtime

    def tmux_factory(self, *, binary, socket):
        return self.tmux.setdefault(socket, FakeBackend("tmux", socket))

    def container_factory(self, runtime):
        return self.containers.setdefault(runtime, FakeBackend("container", runtime))

    def detect(self, preferred):
        self.detected += 1
        if self.runtime is None:
            raise ContainerRuntimeNotFoundError("no container runtime found")
        return self.runtime


SPECS = {
    "astro-dev": SessionSpec("astro-dev", "tmux", ("python", "-m", "astro.bot"),
                             command_text="python -m astro.bot"),
    "astro-prod": SessionSpec("astro-prod", "container", image="astro-bot"),
    "sock-bot": SessionSpec("sock-bot", "tmux", ("sleep", "9"), socket_name="side"),
}


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def manager(fakes: Fakes, warnings: list[str] | None = None, **config) -> SessionManager:
    config.setdefault("sessions", SPECS)
    ops = OpsConfig(path=Path("/x/kstlib.conf.yml"), base_dir=Path("/x"), **config)
    return SessionManager(
        ops, tmux_factory=fakes.tmux_factory, container_factory=fakes.container_factory,
        detect=fakes.detect, warn=(warnings.append if warnings is not None else print),
    )


def test_nothing_is_built_until_needed(fakes):
    manager(fakes)
    assert fakes.tmux == {} and fakes.containers == {} and fakes.detected == 0


def test_list_shows_defined_sessions_before_start(fakes):
    rows = manager(fakes).list()
    assert [(r.name, r.backend, r.state, r.defined) for r in rows] == [
        ("astro-dev", "tmux", State.DEFINED, True),
        ("astro-prod", "container", State.DEFINED, True),
        ("sock-bot", "tmux", State.DEFINED, True),
    ]


def test_list_calls_each_server_and_runtime_once(fakes):
    manager(fakes).list()
    assert sorted(fakes.tmux, key=str) == [None, "side"]
    assert all(b.calls == ["list"] for b in fakes.tmux.values())
    assert fakes.containers["podman"].calls == ["list"]
    assert fakes.detected == 1


def test_list_merges_live_sessions_by_name_and_backend(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev", managed=True)
    m.tmux(None).add("someone-else")
    m.tmux("side").add("sock-bot")
    m.tmux(None).add("sock-bot")  # same name, other server: not the configured one
    m.container("podman").add("astro-prod", State.EXITED, exit_code=3)
    m.container("podman").add("astro-dev")  # tmux-defined, started as a container
    rows = {(r.name, r.backend, r.socket): r for r in m.list()}
    assert rows[("astro-dev", "tmux", None)].state == State.RUNNING
    assert rows[("astro-dev", "tmux", None)].defined is True
    assert rows[("astro-prod", "container", None)].exit_code == 3
    assert rows[("astro-prod", "container", None)].defined is True
    assert rows[("sock-bot", "tmux", "side")].defined is True
    assert rows[("sock-bot", "tmux", None)].defined is False
    assert rows[("someone-else", "tmux", None)].defined is False
    assert rows[("astro-dev", "container", None)].defined is False
    assert len(rows) == 6


def test_list_backend_filter_never_touches_the_other_backend(fakes):
    rows = manager(fakes).list(backend="tmux")
    assert {r.backend for r in rows} == {"tmux"}
    assert fakes.containers == {} and fakes.detected == 0


def test_list_backend_filter_is_validated(fakes):
    with pytest.raises(ValidationError, match="backend"):
        manager(fakes).list(backend="vm")


def test_list_without_a_container_runtime_warns_only_when_the_config_needs_one():
    warnings: list[str] = []
    no_runtime = Fakes(runtime=None)
    rows = manager(no_runtime, warnings).list()
    assert len(rows) == 3 and len(warnings) == 1 and "no container runtime" in warnings[0]
    warnings.clear()
    manager(Fakes(runtime=None), warnings, sessions={"a": SPECS["astro-dev"]}).list()
    assert warnings == []


def test_runtime_is_detected_once_per_manager(fakes):
    m = manager(fakes)
    m.list()
    m.status("astro-prod")
    m.list()
    assert fakes.detected == 1


def test_configured_runtime_is_not_detected(fakes):
    manager(fakes, container_runtime="docker").list()
    assert fakes.detected == 0 and list(fakes.containers) == ["docker"]


def test_status_of_a_defined_session(fakes):
    status = manager(fakes).status("astro-dev")
    assert status.state == State.DEFINED and status.defined
    assert status.command == "python -m astro.bot"


def test_status_stops_at_the_configured_backend_when_it_answers(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev")
    assert m.status("astro-dev").state == State.RUNNING
    assert fakes.containers == {}


def test_live_state_wins_over_the_config(fakes):
    m = manager(fakes)
    m.container("podman").add("astro-dev", image="astro-bot")
    status = m.status("astro-dev")
    assert (status.backend, status.state, status.image) == ("container", State.RUNNING,
                                                            "astro-bot")
    assert status.defined is False  # the config defines it as tmux


def test_unknown_name_is_not_found_with_a_hint(fakes):
    with pytest.raises(SessionNotFoundError, match="kstlib ops list"):
        manager(fakes).status("nobody")


def test_unconfigured_live_container_is_found(fakes):
    m = manager(fakes)
    m.container("podman").add("happy_turing")  # docker-style name, not a session name
    assert m.status("happy_turing").backend == "container"


def test_invalid_config_entry_says_why(fakes):
    m = manager(fakes, invalid={"bad": "image: invalid image reference 'UPPER/x'"})
    with pytest.raises(InvalidSessionError, match="UPPER/x"):
        m.status("bad")
    with pytest.raises(InvalidSessionError):
        m.start("bad")


def test_hostile_names_are_refused(fakes):
    with pytest.raises(ValidationError):
        manager(fakes).status("-t;rm")


def test_start_uses_the_config_and_marks_managed(fakes):
    status = manager(fakes).start("astro-dev")
    assert status.managed and status.defined and status.backend == "tmux"
    assert fakes.tmux[None].started[0].command == ("python", "-m", "astro.bot")


def test_start_with_image_override(fakes):
    manager(fakes).start("astro-prod", image="astro-bot:v2")
    assert fakes.containers["podman"].started[0].image == "astro-bot:v2"


def test_start_tmux_session_as_container(fakes):
    status = manager(fakes).start("astro-dev", backend="container", image="astro-bot")
    assert status.backend == "container" and status.defined is False
    started = fakes.containers["podman"].started[0]
    assert (started.backend, started.image) == ("container", "astro-bot")


def test_start_as_container_while_running_in_tmux_is_refused(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev")
    with pytest.raises(SessionAlreadyRunningError, match="tmux"):
        m.start("astro-dev", backend="container", image="astro-bot")


def test_start_override_values_are_validated(fakes):
    with pytest.raises(ValidationError, match="UPPER"):
        manager(fakes).start("astro-prod", image="UPPER/x")
    with pytest.raises(ValidationError, match="';'"):
        manager(fakes).start("astro-dev", command="sleep 1; rm -rf /")


def test_start_unknown_name_needs_something_to_run(fakes):
    with pytest.raises(SessionNotFoundError, match="--command/--image"):
        manager(fakes).start("adhoc")
    status = manager(fakes).start("adhoc", command="sleep 5")
    assert status.backend == "tmux" and status.defined is False


def test_stop_returns_to_defined(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev")
    status = m.stop("astro-dev", timeout=3, force=True)
    assert status.state == State.DEFINED
    assert "stop:3:True" in fakes.tmux[None].calls


def test_stop_of_a_defined_session_is_not_running(fakes):
    with pytest.raises(SessionNotRunningError, match="not running"):
        manager(fakes).stop("astro-dev")


def test_stop_finds_the_session_where_it_runs(fakes):
    m = manager(fakes)
    m.container("podman").add("astro-dev")
    m.stop("astro-dev")
    assert "astro-dev" not in m.container("podman").live


def test_restart_stops_then_starts(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev")
    status = m.restart("astro-dev")
    assert status.state == State.RUNNING
    assert fakes.tmux[None].calls.count("start") == 1
    assert any(c.startswith("stop") for c in fakes.tmux[None].calls)


def test_logs_of_a_live_session(fakes):
    m = manager(fakes)
    m.tmux(None).add("astro-dev")
    assert m.logs("astro-dev", 5) == ["tmux:astro-dev:5"]


def test_logs_after_stop_come_from_the_kept_file(fakes, tmp_path, monkeypatch):
    from kstlib_tasks import logstore

    path = logstore.log_path("container", "podman", "astro-dev")
    path.parent.mkdir(parents=True)
    path.write_text("bye\n")
    assert manager(fakes).logs("astro-dev") == ["container:astro-dev:None"]


def test_logs_of_a_never_started_session(fakes):
    with pytest.raises(SessionNotRunningError, match="never started"):
        manager(fakes).logs("astro-dev")


def test_attach_needs_a_running_session(fakes):
    m = manager(fakes)
    with pytest.raises(SessionNotRunningError):
        m.attach("astro-dev")
    m.tmux(None).add("astro-dev", State.EXITED, exit_code=1)
    with pytest.raises(SessionNotRunningError, match="exit code 1"):
        m.attach("astro-dev")
    m.tmux(None).add("astro-dev")
    with pytest.raises(SystemExit):
        m.attach("astro-dev")


def test_start_in_tmux_while_running_as_container_is_refused(fakes):
    m = manager(fakes)
    m.container("podman").add("astro-dev")
    with pytest.raises(SessionAlreadyRunningError, match="container"):
        m.start("astro-dev")
    assert "start" not in m.tmux(None).calls


def test_start_ignores_a_missing_other_backend():
    no_runtime = Fakes(runtime=None)
    assert manager(no_runtime).start("astro-dev").state == State.RUNNING


def test_backend_override_drops_the_host_working_dir(fakes):
    specs = {"w": SessionSpec("w", "tmux", ("sleep", "9"), working_dir="/host/only")}
    manager(fakes, sessions=specs).start("w", backend="container", image="busybox")
    assert fakes.containers["podman"].started[0].working_dir is None


def test_backend_override_runs_the_images_own_command(fakes):
    """The seed's `start astro-dev --backend container --image astro-bot`: the host command
    (`python -m astro.bot`) is not carried into the image, whose CMD runs the bot."""
    manager(fakes).start("astro-dev", backend="container", image="astro-bot")
    started = fakes.containers["podman"].started[0]
    assert started.command == () and started.command_text is None
    assert started.env == SPECS["astro-dev"].env


def test_backend_override_keeps_a_command_given_again(fakes):
    manager(fakes).start("astro-dev", backend="container", image="astro-bot",
                         command="python3 /app/astro_bot.py", working_dir="/app")
    started = fakes.containers["podman"].started[0]
    assert started.command == ("python3", "/app/astro_bot.py")
    assert started.working_dir == "/app"


def test_same_backend_keeps_the_configured_command(fakes):
    manager(fakes).start("astro-dev", backend="tmux")
    assert fakes.tmux[None].started[0].command == ("python", "-m", "astro.bot")


def test_a_start_that_exits_at_once_is_an_error_with_its_last_line(fakes):
    class Crashing(FakeBackend):
        def start(self, spec):
            self.add(spec.name, State.EXITED, exit_code=127)
            return self.live[spec.name]

        def logs(self, name, lines=None):
            return ["exec nosuchcmd failed: No such file or directory", ""]

    fakes.containers["podman"] = Crashing("container", "podman")
    with pytest.raises(SessionNotRunningError) as caught:
        manager(fakes).start("astro-prod")
    assert str(caught.value) == (
        "session 'astro-prod' exited at once with code 127: exec nosuchcmd failed: No such "
        "file or directory (see: kstlib ops logs astro-prod)")


def test_a_start_that_ends_cleanly_at_once_is_fine(fakes):
    class OneShot(FakeBackend):
        def start(self, spec):
            self.add(spec.name, State.EXITED, exit_code=0)
            return self.live[spec.name]

    fakes.tmux[None] = OneShot("tmux", None)
    assert manager(fakes).start("astro-dev").state == State.EXITED


def _started_on_socket(socket: str) -> None:
    """What a tmux start with -L leaves behind: its log folder and its server's socket."""
    import os

    from kstlib_tasks import logstore
    from kstlib_tasks.backends.tmux import socket_path

    logstore.log_path("tmux", socket, "astro-dev").parent.mkdir(parents=True)
    os.makedirs(os.path.dirname(socket_path(socket)), exist_ok=True)
    Path(socket_path(socket)).touch()


def test_a_session_started_on_another_socket_is_found(fakes):
    """`start astro-dev -L mysock`: status, stop and list look on that server too."""
    _started_on_socket("mysock")
    m = manager(fakes)
    m.tmux("mysock").add("astro-dev")
    assert m.status("astro-dev").socket == "mysock"
    rows = [r for r in m.list(backend="tmux") if r.name == "astro-dev"]
    assert len(rows) == 1 and rows[0].state == State.RUNNING and rows[0].defined
    m.stop("astro-dev")
    assert "astro-dev" not in m.tmux("mysock").live


def test_list_prefers_the_configured_socket_for_the_config_row(fakes):
    _started_on_socket("other")
    m = manager(fakes)
    m.tmux("other").add("sock-bot")
    m.tmux("side").add("sock-bot")
    rows = [r for r in m.list(backend="tmux") if r.name == "sock-bot"]
    assert [(r.socket, r.defined) for r in rows] == [("side", True), ("other", False)]
