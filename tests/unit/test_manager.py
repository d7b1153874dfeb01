"""SessionManager on fake backends (tests/fakes.py): routing, merging, laziness, lookups that
agree, one backend's trouble kept to its own sessions, drift, errors and their hints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib_tasks import backends, logstore
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.backends.tmux.panes import socket_path
from kstlib_tasks.errors import (
    BackendError,
    BackendNotFoundError,
    ContainerRuntimeNotFoundError,
    InvalidSessionError,
    SessionAlreadyRunningError,
    SessionNotFoundError,
    SessionNotRunningError,
    ValidationError,
)
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import SessionSpec, State
from kstlib_tasks.opsconfig import OpsConfig
from tests.fakes import Attached, FakeBackend, FakeWorld, stand_in_programs

SPECS = {
    "astro-dev": SessionSpec("astro-dev", "tmux", ("python", "-m", "astro.bot"),
                             command_text="python -m astro.bot", env={"BOT_MODE": "dev"}),
    "astro-prod": SessionSpec("astro-prod", "container",
                              options=ContainerOptions(image_ref="astro-bot")),
    "sock-bot": SessionSpec("sock-bot", "tmux", ("sleep", "9"),
                            options=TmuxOptions(socket_name="side")),
}


@pytest.fixture(autouse=True)
def path_with_both_runtimes(tmp_path: Path) -> Iterator[Path]:
    """Runtime detection looks at PATH: podman and docker 'installed', nothing else.

    Restored by this fixture itself (not monkeypatch), before conftest's clean-up runs tmux.
    """
    old = os.environ["PATH"]
    os.environ["PATH"] = stand_in_programs(tmp_path / "bin", "podman", "docker")
    yield tmp_path / "bin"
    os.environ["PATH"] = old


def no_runtime(tmp_path: Path) -> None:
    """Neither podman nor docker in PATH (restored by the fixture above)."""
    os.environ["PATH"] = stand_in_programs(tmp_path / "empty")


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


def config(**values) -> OpsConfig:
    values.setdefault("sessions", SPECS)
    settings = values.pop("settings", {})
    if "container_runtime" in values:
        settings["container_runtime"] = values.pop("container_runtime")
    return OpsConfig(path=Path("/x/kstlib.conf.yml"), base_dir=Path("/x"), settings=settings,
                     **values)


def manager(world: FakeWorld, warnings: list[str] | None = None, **values) -> SessionManager:
    return SessionManager(config(**values), factory=world,
                          warn=warnings.append if warnings is not None else print)


def started(fake: FakeBackend, index: int = 0) -> SessionSpec:
    """The spec of the ``index``-th start the fake received."""
    launches = [s.launch for s in fake.sessions.values() if s.launch is not None]
    return launches[index].spec  # type: ignore[union-attr]


def rows_by_place(rows) -> dict:
    return {(r.name, r.backend, r.scope): r for r in rows}


def started_on_socket(socket: str) -> None:
    """What a tmux start with -L leaves behind: the scope remembered, its server's socket."""
    backends.get("tmux").remember(socket)
    os.makedirs(os.path.dirname(socket_path(socket)), exist_ok=True)
    Path(socket_path(socket)).touch()


# --------------------------------------------------------------------------- laziness, list


def test_nothing_is_built_until_needed(world):
    manager(world)
    assert world.built == []


def test_list_shows_defined_sessions_before_start(world):
    rows = manager(world).list()
    assert [(r.name, r.backend, r.state, r.defined) for r in rows] == [
        ("astro-dev", "tmux", State.DEFINED, True),
        ("astro-prod", "container", State.DEFINED, True),
        ("sock-bot", "tmux", State.DEFINED, True),
    ]


def test_list_calls_each_server_and_runtime_once(world):
    manager(world).list()
    assert sorted(world.built, key=str) == sorted(
        [("tmux", None), ("tmux", "side"), ("container", "podman")], key=str)
    assert all(fake.calls == [("list",)] for fake in world.places.values())


def test_one_backend_object_per_place_for_a_whole_run(world):
    m = manager(world)
    m.list()
    m.status("astro-prod")
    m.list()
    assert len(world.built) == len(set(world.built))


def test_list_merges_live_sessions_by_name_backend_and_scope(world):
    m = manager(world)
    world.at("tmux").add("astro-dev", managed=True)
    world.at("tmux").add("someone-else")
    world.at("tmux", "side").add("sock-bot")
    world.at("tmux").add("sock-bot")  # same name, other server: not the configured one
    world.at("container", "podman").add("astro-prod", State.EXITED, exit_code=3)
    world.at("container", "podman").add("astro-dev")  # tmux-defined, started as a container
    rows = rows_by_place(m.list())
    assert rows[("astro-dev", "tmux", None)].state == State.RUNNING
    assert rows[("astro-dev", "tmux", None)].defined is True
    assert rows[("astro-prod", "container", "podman")].exit_code == 3
    assert rows[("astro-prod", "container", "podman")].defined is True
    assert rows[("sock-bot", "tmux", "side")].defined is True
    assert rows[("sock-bot", "tmux", None)].defined is False
    assert rows[("someone-else", "tmux", None)].defined is False
    assert rows[("astro-dev", "container", "podman")].defined is False
    assert len(rows) == 6


def test_list_backend_filter_never_touches_the_other_backend(world):
    rows = manager(world).list(backend="tmux")
    assert {r.backend for r in rows} == {"tmux"}
    assert {b for b, _ in world.built} == {"tmux"}


def test_list_backend_filter_is_validated(world):
    with pytest.raises(ValidationError, match="backend"):
        manager(world).list(backend="vm")


def test_list_without_a_container_runtime_warns_only_when_the_config_needs_one(
        world, tmp_path):
    no_runtime(tmp_path)
    warnings: list[str] = []
    rows = manager(world, warnings).list()
    assert len(rows) == 3 and len(warnings) == 1 and "no container runtime" in warnings[0]
    assert {r.name: r.state for r in rows}["astro-prod"] == State.UNKNOWN
    warnings.clear()
    manager(FakeWorld(), warnings, sessions={"a": SPECS["astro-dev"]}).list()
    assert warnings == []


def test_a_configured_runtime_is_the_only_one_looked_at(world):
    manager(world, container_runtime="docker").list()
    assert [s for b, s in world.built if b == "container"] == ["docker"]


# --------------------------------------------------------------------------- status


def test_status_of_a_defined_session(world):
    status = manager(world).status("astro-dev")
    assert status.state == State.DEFINED and status.defined
    assert status.command == "python -m astro.bot"


def test_status_stops_at_the_configured_backend_when_it_answers(world):
    m = manager(world)
    world.at("tmux").add("astro-dev")
    assert m.status("astro-dev").state == State.RUNNING
    assert world.built == [("tmux", None)]


def test_live_state_wins_over_the_config(world):
    m = manager(world)
    world.at("container", "podman").add("astro-dev", image="astro-bot")
    status = m.status("astro-dev")
    assert (status.backend, status.state, status.image) == ("container", State.RUNNING,
                                                            "astro-bot")
    assert status.defined is False  # the config defines it as tmux


def test_a_running_one_wins_over_an_exited_one_elsewhere(world):
    m = manager(world, sessions={})
    world.at("tmux").add("job", State.EXITED, exit_code=1)
    world.at("container", "podman").add("job")
    assert m.status("job").backend == "container"


def test_unknown_name_is_not_found_with_a_hint(world):
    with pytest.raises(SessionNotFoundError) as info:
        manager(world).status("nobody")
    assert info.value.line() == (
        "no session named 'nobody': not defined in kstlib.conf.yml and not running "
        "(see: kstlib ops list)")
    assert info.value.line("inv").endswith("(see: inv ops.list)")


def test_unknown_names_suggest_a_config_name_or_a_live_one(world):
    m = manager(world)
    with pytest.raises(SessionNotFoundError, match=r"'astro-dve' \(did you mean 'astro-dev'\?\)"):
        m.status("astro-dve")
    world.at("container", "podman").add("happy_turing")
    with pytest.raises(SessionNotFoundError, match=r"did you mean 'happy_turing'\?"):
        m.stop("happy_turnig")
    with pytest.raises(SessionNotFoundError, match=r"did you mean 'sock-bot'\?"):
        m.start("sokc-bot")


def test_unconfigured_live_container_is_found(world):
    m = manager(world)
    world.at("container", "podman").add("happy_turing")  # docker-style name, not a session name
    assert m.status("happy_turing").backend == "container"


def test_invalid_config_entry_says_why(world):
    m = manager(world, invalid={"bad": (12, "session 'bad': image: invalid image reference "
                                            "'UPPER/x'")})
    with pytest.raises(InvalidSessionError):
        m.start("bad")
    assert world.built == []  # nothing is built to start a refused entry
    # looked for (something started before the entry broke may run), nothing found: its problem
    with pytest.raises(InvalidSessionError, match=r"kstlib\.conf\.yml:12: .*UPPER/x"):
        m.status("bad")


def test_a_live_session_of_a_refused_entry_can_be_inspected_and_stopped(world):
    world.at("tmux").add("bad", managed=True)
    m = manager(world, invalid={"bad": (12, "session 'bad': command: contains '&&'")})
    status = m.status("bad")
    assert status.state == State.RUNNING and status.defined is False
    assert m.logs("bad") is not None
    m.stop("bad")
    assert "bad" not in world.at("tmux").sessions
    with pytest.raises(InvalidSessionError):
        m.start("bad")


def test_hostile_names_are_refused(world):
    with pytest.raises(ValidationError):
        manager(world).status("-t;rm")
    assert world.built == []


# --------------------------------------------------------------------------- start


def test_start_uses_the_config_and_marks_managed(world):
    status = manager(world).start("astro-dev")
    assert status.managed and status.defined and status.backend == "tmux"
    launch = world.at("tmux").sessions["astro-dev"].launch
    assert launch is not None and launch.argv == ("python", "-m", "astro.bot")
    assert launch.env["BOT_MODE"] == "dev"
    assert launch.env.get("PATH") == os.environ["PATH"]  # tmux: the caller's environment too


def test_a_container_gets_only_the_configs_env(world, monkeypatch):
    monkeypatch.setenv("CALLER_ONLY", "1")
    manager(world).start("astro-prod", env=["EXTRA=2"])
    launch = world.at("container", "podman").sessions["astro-prod"].launch
    assert launch is not None and dict(launch.env) == {"EXTRA": "2"}


def test_start_with_image_override(world):
    manager(world).start("astro-prod", image="astro-bot:v2")
    assert started(world.at("container", "podman")).image == "astro-bot:v2"


def test_start_tmux_session_as_container(world):
    status = manager(world).start("astro-dev", backend="container", image="astro-bot")
    assert status.backend == "container" and status.defined is False
    spec = started(world.at("container", "podman"))
    assert (spec.backend, spec.image) == ("container", "astro-bot")


def test_start_as_container_while_running_in_tmux_is_refused(world):
    m = manager(world)
    world.at("tmux").add("astro-dev")
    with pytest.raises(SessionAlreadyRunningError, match="tmux") as info:
        m.start("astro-dev", backend="container", image="astro-bot")
    assert "stop it first: kstlib ops stop astro-dev" in info.value.line()
    assert "stop it first: inv astro-dev.stop" in info.value.line("inv")


def test_start_in_tmux_while_running_as_container_is_refused(world):
    m = manager(world)
    world.at("container", "podman").add("astro-dev")
    with pytest.raises(SessionAlreadyRunningError, match="container"):
        m.start("astro-dev")
    assert "start" not in world.at("tmux").verbs()


def test_start_of_a_running_session_is_refused_by_its_place(world):
    m = manager(world)
    m.start("astro-dev")
    with pytest.raises(SessionAlreadyRunningError, match="already running"):
        m.start("astro-dev")


def test_start_override_values_are_validated(world):
    with pytest.raises(ValidationError, match="UPPER"):
        manager(world).start("astro-prod", image="UPPER/x")
    with pytest.raises(ValidationError, match="';'"):
        manager(world).start("astro-dev", command="sleep 1; rm -rf /")
    assert world.calls() == []


def test_start_unknown_name_needs_something_to_run(world):
    with pytest.raises(SessionNotFoundError, match="--command/--image"):
        manager(world).start("adhoc")
    status = manager(world).start("adhoc", command="sleep 5")
    assert status.backend == "tmux" and status.defined is False


def test_backend_override_drops_the_host_working_dir(world):
    specs = {"w": SessionSpec("w", "tmux", ("sleep", "9"), working_dir="/host/only")}
    manager(world, sessions=specs).start("w", backend="container", image="busybox")
    assert started(world.at("container", "podman")).working_dir is None


def test_backend_override_runs_the_images_own_command(world):
    """The seed's `start astro-dev --backend container --image astro-bot`: the host command
    (`python -m astro.bot`) is not carried into the image, whose CMD runs the bot."""
    manager(world).start("astro-dev", backend="container", image="astro-bot")
    spec = started(world.at("container", "podman"))
    assert spec.command == () and spec.command_text is None
    assert spec.env == SPECS["astro-dev"].env


def test_backend_override_keeps_a_command_given_again(world):
    manager(world).start("astro-dev", backend="container", image="astro-bot",
                         command="python3 /app/astro_bot.py", workdir="/app")
    spec = started(world.at("container", "podman"))
    assert spec.command == ("python3", "/app/astro_bot.py")
    assert spec.working_dir == "/app"


def test_same_backend_keeps_the_configured_command(world):
    manager(world).start("astro-dev", backend="tmux")
    assert started(world.at("tmux")).command == ("python", "-m", "astro.bot")


def test_a_start_that_exits_at_once_is_a_warning_with_its_last_line(world):
    fake = world.at("container", "podman")
    fake.will("astro-prod", exit_code=127,
              output=["exec nosuchcmd failed: No such file or directory", ""])
    warnings: list[str] = []
    status = manager(world, warnings).start("astro-prod")
    assert status.state == State.EXITED and status.exit_code == 127 and status.managed
    assert warnings == ["warning: session 'astro-prod' already exited with code 127: exec "
                        "nosuchcmd failed: No such file or directory"]


def test_a_start_that_ends_cleanly_at_once_is_fine(world):
    world.at("tmux").will("astro-dev", exit_code=0)
    assert manager(world, []).start("astro-dev").state == State.EXITED


def test_start_ignores_a_missing_other_backend(world, tmp_path):
    no_runtime(tmp_path)
    assert manager(world).start("astro-dev").state == State.RUNNING


def test_start_remembers_where_it_started_something(world):
    manager(world, container_runtime="docker").start("astro-prod")
    assert "docker" in logstore.scopes_used("container")
    manager(world).start("sock-bot")
    assert socket_path("side") in logstore.scopes_used("tmux")


# --------------------------------------------------------------------------- stop, restart


def test_stop_returns_to_defined(world):
    m = manager(world)
    world.at("tmux").add("astro-dev")
    status = m.stop("astro-dev", timeout=3, force=True)
    assert status.state == State.DEFINED
    assert ("stop", "astro-dev", 3, True) in world.at("tmux").calls


def test_stop_of_a_defined_session_is_not_running(world):
    with pytest.raises(SessionNotRunningError, match="not running"):
        manager(world).stop("astro-dev")


def test_stop_finds_the_session_where_it_runs(world):
    m = manager(world)
    world.at("container", "podman").add("astro-dev")
    status = m.stop("astro-dev")
    assert "astro-dev" not in world.at("container", "podman").sessions
    assert (status.state, status.backend, status.defined) == (State.STOPPED, "container", False)


def test_stop_says_when_the_output_was_not_kept(world):
    class Noting(FakeBackend):
        def stop(self, name, *, timeout=10.0, force=False):
            return super().stop(name, timeout=timeout, force=force).with_changes(
                note="output not kept: No space left on device")

    world.places[("tmux", None)] = Noting("tmux", None)
    world.at("tmux").add("astro-dev")
    warnings: list[str] = []
    manager(world, warnings).stop("astro-dev")
    assert warnings == ["warning: session 'astro-dev': output not kept: No space left on device"]


def test_restart_stops_then_starts(world):
    m = manager(world)
    world.at("tmux").add("astro-dev")
    status = m.restart("astro-dev")
    assert status.state == State.RUNNING
    assert world.at("tmux").verbs("astro-dev").count("start") == 1
    verbs = world.at("tmux").verbs("astro-dev")
    assert verbs.index("stop") < verbs.index("start")


def test_restart_of_an_unknown_name_is_not_found(world):
    with pytest.raises(SessionNotFoundError):
        manager(world).restart("nobody")


# --------------------------------------------------------------------------- logs, attach


def test_logs_of_a_live_session(world):
    m = manager(world)
    world.at("tmux").add("astro-dev", output=["one", "two", "three"])
    assert m.logs("astro-dev", 2) == ["two", "three"]
    assert m.logs("astro-dev") == ["one", "two", "three"]


def test_logs_after_stop_come_from_the_kept_file(world):
    m = manager(world)
    world.at("container", "podman").add("astro-prod", output=["hello", "bye"])
    m.stop("astro-prod")
    assert m.logs("astro-prod") == ["hello", "bye"]
    assert m.logs("astro-prod", 1) == ["bye"]


def test_logs_of_a_session_gone_before_this_run_come_from_its_file(world):
    path = logstore.log_path("container", "podman", "astro-prod")
    logstore.save_lines(path, ["kept"])
    assert manager(world).logs("astro-prod") == ["kept"]


def test_logs_of_a_never_started_session(world):
    with pytest.raises(SessionNotRunningError, match="never started") as info:
        manager(world).logs("astro-dev")
    assert info.value.line().endswith("(kstlib ops start astro-dev)")
    assert info.value.line("inv").endswith("(inv astro-dev.start)")


def test_attach_needs_a_running_session(world):
    m = manager(world)
    with pytest.raises(SessionNotRunningError):
        m.attach("astro-dev")
    world.at("tmux").add("astro-dev", State.EXITED, exit_code=1)
    with pytest.raises(SessionNotRunningError, match="exit code 1") as info:
        m.attach("astro-dev")
    assert info.value.line("inv").endswith("(see: inv astro-dev.logs)")
    world.at("tmux").add("astro-dev")
    with pytest.raises(Attached) as attached:
        m.attach("astro-dev")
    assert (attached.value.backend, attached.value.name) == ("tmux", "astro-dev")


# --------------------------------------------------------------------------- sockets, scopes


def test_a_session_started_on_another_socket_is_found(world):
    """`start astro-dev -L mysock`: status, stop and list look on that server too."""
    started_on_socket("mysock")
    m = manager(world)
    world.at("tmux", "mysock").add("astro-dev")
    assert m.status("astro-dev").scope == "mysock"
    status = m.status("astro-dev")
    assert status.state == State.RUNNING and status.defined is False  # not where the entry says
    rows = [(r.scope, r.state, r.defined) for r in m.list(backend="tmux")
            if r.name == "astro-dev"]
    assert rows == [(None, State.DEFINED, True), ("mysock", State.RUNNING, False)]
    m.stop("astro-dev")
    assert "astro-dev" not in world.at("tmux", "mysock").sessions


def test_list_prefers_the_configured_socket_for_the_config_row(world):
    started_on_socket("other")
    m = manager(world)
    world.at("tmux", "other").add("sock-bot")
    world.at("tmux", "side").add("sock-bot")
    rows = [r for r in m.list(backend="tmux") if r.name == "sock-bot"]
    assert [(r.scope, r.defined) for r in rows] == [("side", True), ("other", False)]


def test_a_remembered_socket_path_is_the_configured_server(world):
    """tmux scopes are remembered by path; the configured name and that path are one server."""
    started_on_socket("side")
    m = manager(world)
    world.at("tmux", "side").add("sock-bot")
    assert [(r.scope, r.defined) for r in m.list() if r.name == "sock-bot"] == [("side", True)]
    assert [s for b, s in world.built if b == "tmux"] == [None, "side"]
    assert m.status("sock-bot").defined


# --------------------------------------------------------------------------- lookups agree


def test_a_podman_container_named_like_a_docker_entry_is_not_that_entry(world):
    specs = {"web": SessionSpec("web", "container", ("sleep", "9"),
                                options=ContainerOptions(image_ref="img", runtime="docker"))}
    m = manager(world, sessions=specs)
    world.at("container", "podman").add("web", image="img")
    rows = [(r.name, r.scope, r.state, r.defined) for r in m.list()]
    assert rows == [("web", "docker", State.DEFINED, True),
                    ("web", "podman", State.RUNNING, False)]
    status = m.status("web")
    assert (status.scope, status.state, status.defined) == ("podman", State.RUNNING, False)
    stopped = m.stop("web")
    assert stopped.scope == "podman" and stopped.state == State.STOPPED
    assert world.live() == {}
    assert "stop" not in world.at("container", "docker").verbs()
    assert m.status("web").state == State.DEFINED


def test_the_entrys_own_container_is_the_entry(world):
    specs = {"web": SessionSpec("web", "container", ("sleep", "9"),
                                options=ContainerOptions(image_ref="img", runtime="docker"))}
    m = manager(world, sessions=specs)
    world.at("container", "docker").add("web")
    world.at("container", "podman").add("web")
    assert m.status("web").scope == "docker" and m.status("web").defined
    assert [(r.scope, r.defined) for r in m.list()] == [("docker", True), ("podman", False)]
    assert m.stop("web").state == State.DEFINED
    assert world.live() == {("container", "podman", "web"): State.RUNNING}


def test_a_removed_entrys_live_session_is_still_found(world):
    """Started from an entry that the config no longer has: remembered scopes lead to it."""
    specs = {"side-bot": SessionSpec("side-bot", "tmux", ("sleep", "9"),
                                     options=TmuxOptions(socket_name="edge")),
             "docker-bot": SessionSpec("docker-bot", "container", ("sleep", "9"),
                                       options=ContainerOptions(image_ref="img",
                                                                runtime="docker"))}
    before = manager(world, sessions=specs)
    before.start("side-bot")
    before.start("docker-bot")
    Path(socket_path("edge")).parent.mkdir(parents=True, exist_ok=True)
    Path(socket_path("edge")).touch()  # its server runs
    after = manager(world, sessions={})  # same machine, new config
    for name, scope in (("side-bot", "edge"), ("docker-bot", "docker")):
        status = after.status(name)
        assert (status.state, status.defined, status.scope) == (State.RUNNING, False, scope)
        assert any(r.name == name for r in after.list())
        after.stop(name)
    assert world.live() == {}


# --------------------------------------------------------------------------- failing backends


def test_a_failing_backend_never_affects_sessions_of_another(world):
    world.at("container", "podman").fail(BackendError("podman: cannot connect to service"))
    m = manager(world)
    world.at("tmux").add("astro-dev")
    assert m.status("astro-dev").state == State.RUNNING
    assert m.status("sock-bot").state == State.DEFINED  # looked for elsewhere: not an error
    assert m.start("sock-bot").state == State.RUNNING
    assert m.logs("astro-dev") == []
    assert m.stop("astro-dev").state == State.DEFINED
    assert m.restart("sock-bot").state == State.RUNNING


def test_a_missing_backend_never_affects_sessions_of_another(world):
    world.at("container", "podman").fail(BackendNotFoundError("'podman' not found in PATH"))
    m = manager(world)
    assert m.start("astro-dev").state == State.RUNNING
    assert m.status("astro-dev").state == State.RUNNING
    assert m.stop("astro-dev").state == State.DEFINED


def test_a_failing_backend_is_the_error_of_its_own_sessions(world):
    world.at("container", "podman").fail(BackendError("podman: cannot connect to service"))
    m = manager(world)
    with pytest.raises(BackendError, match="cannot connect"):
        m.status("astro-prod")
    with pytest.raises(BackendError, match="cannot connect"):
        m.start("astro-prod")


def test_list_shows_one_warning_and_unknown_rows_for_a_failing_backend(world):
    world.at("container", "podman").fail(BackendError("podman: cannot connect to service"))
    world.at("tmux").add("astro-dev")
    warnings: list[str] = []
    rows = {r.name: r for r in manager(world, warnings).list()}
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: container podman did not answer")
    assert "cannot connect to service" in warnings[0]
    assert rows["astro-prod"].state == State.UNKNOWN and rows["astro-prod"].note
    assert rows["astro-dev"].state == State.RUNNING and rows["sock-bot"].state == State.DEFINED


def test_an_unknown_name_is_not_found_unless_no_place_answered(world):
    world.at("container", "podman").fail(BackendError("podman broke"))
    with pytest.raises(SessionNotFoundError):  # tmux answered: simply not there
        manager(world, sessions={}).status("nobody")
    world.at("tmux").fail(BackendNotFoundError("'tmux' not found in PATH"))
    with pytest.raises(BackendNotFoundError, match="'tmux' not found"):  # nobody could tell
        manager(world, sessions={}).status("nobody")


def test_no_container_runtime_is_exit_3_for_container_sessions_only(world, tmp_path):
    no_runtime(tmp_path)
    m = manager(world)
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        m.start("astro-prod")
    assert info.value.exit_code == 3 and "neither podman nor docker" in info.value.line()
    assert m.status("astro-dev").state == State.DEFINED


# --------------------------------------------------------------------------- drift


def test_status_reports_no_drift_right_after_a_start(world):
    m = manager(world)
    m.start("astro-prod")
    status = m.status("astro-prod")
    assert status.drifted is False and status.drift == ()


@pytest.mark.parametrize(("change", "field"), [
    ({"env": {"BOT_MODE": "debug"}}, "env"),
    ({"command": ("python", "-m", "astro.other")}, "command"),
    ({"options": TmuxOptions()}, None),  # the socket is where it runs, not what runs
])
def test_a_changed_tmux_entry_is_reported_per_field(world, change, field):
    specs = {"bot": SessionSpec("bot", "tmux", ("python", "-m", "astro.bot"),
                                env={"BOT_MODE": "dev"})}
    manager(world, sessions=specs).start("bot")
    now = manager(world, sessions={"bot": specs["bot"].with_changes(**change)})
    status = now.status("bot")
    assert status.drifted is (field is not None)
    assert status.drift == ((field,) if field else ())


def test_a_changed_image_and_env_are_both_named(world):
    specs = {"prod": SessionSpec("prod", "container", env={"A": "1"},
                                 options=ContainerOptions(image_ref="bot:v1"))}
    manager(world, sessions=specs).start("prod")
    changed = specs["prod"].with_changes(env={"A": "2"},
                                         options=ContainerOptions(image_ref="bot:v2"))
    now = manager(world, sessions={"prod": changed})
    status = now.status("prod")
    assert status.drifted and status.drift == ("env", "image")
    [row] = [r for r in now.list() if r.name == "prod"]
    assert row.drifted and row.drift == ("env", "image")


def test_an_override_given_at_start_is_not_drift(world):
    m = manager(world)
    m.start("astro-prod", image="astro-bot:v2", env=["EXTRA=1"])
    status = m.status("astro-prod")
    assert status.drifted is False
    [row] = [r for r in m.list() if r.name == "astro-prod"]
    assert row.drifted is False


def test_the_config_changing_under_an_override_is_drift_of_that_field_only(world):
    specs = {"prod": SessionSpec("prod", "container", env={"A": "1"},
                                 options=ContainerOptions(image_ref="bot:v1"))}
    manager(world, sessions=specs).start("prod", image="bot:v2")
    changed = specs["prod"].with_changes(env={"A": "2"},
                                         options=ContainerOptions(image_ref="bot:v3"))
    assert manager(world, sessions={"prod": changed}).status("prod").drift == ("env",)


def test_a_session_without_a_recorded_fingerprint_has_no_drift_to_tell(world):
    world.at("tmux").add("astro-dev", managed=True)  # started by an older kstlib, or by hand
    m = manager(world)
    assert m.status("astro-dev").drifted is None
    assert [r.drifted for r in m.list() if r.name == "astro-dev"] == [None]


def test_a_session_that_is_not_the_entrys_is_not_compared(world):
    m = manager(world)
    m.start("astro-dev", backend="container", image="astro-bot")
    assert m.status("astro-dev").drifted is None  # runs as a container: not the tmux entry
