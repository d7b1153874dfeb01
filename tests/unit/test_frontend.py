"""frontend.run_verb: the one place where exceptions become one line and an exit code, for the
``kstlib`` command and the invoke tasks alike; and the handlers on fake backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Program

from kstlib_tasks import cli, errors
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.errors import (
    BackendError,
    BackendNotFoundError,
    ConfigError,
    ContainerRuntimeNotFoundError,
    ImageNotFoundError,
    InvalidSessionError,
    KstlibError,
    SessionAlreadyRunningError,
    SessionNotFoundError,
    SessionNotRunningError,
    Suggest,
    UsageError,
    ValidationError,
)
from kstlib_tasks.frontend import ConfigSource, Front, run_verb
from kstlib_tasks.invoke_tasks import namespace
from kstlib_tasks.manager import SessionManager
from kstlib_tasks.models import SessionSpec, State
from kstlib_tasks.opsconfig import OpsConfig
from tests.fakes import FakeWorld, stand_in_programs


@pytest.fixture(autouse=True)
def podman_and_docker(tmp_path: Path) -> Iterator[None]:
    old = os.environ["PATH"]
    os.environ["PATH"] = stand_in_programs(tmp_path / "bin", "podman", "docker")
    yield
    os.environ["PATH"] = old


class Source(ConfigSource):
    """A config source that hands out a given manager (no file is read)."""

    def __init__(self, manager: object):
        super().__init__()
        self._given = manager

    def manager(self):  # type: ignore[override]
        return self._given

    def load(self) -> OpsConfig:
        return getattr(self._given, "config", OpsConfig())


class Raising:
    """A manager whose every verb raises ``error``."""

    def __init__(self, error: BaseException):
        self.error = error
        self.config = OpsConfig()

    def __getattr__(self, name):
        def verb(*args, **kwargs):
            raise self.error

        return verb


def front(manager: object, name: str = "kstlib") -> Front:
    return Front(Source(manager), name)


SPECS = {
    "bot": SessionSpec("bot", "tmux", ("sleep", "60"), command_text="sleep 60"),
    "prod": SessionSpec("prod", "container", options=ContainerOptions(image_ref="img")),
}


def fake_manager(world: FakeWorld) -> SessionManager:
    config = OpsConfig(path=Path("/x/kstlib.conf.yml"), base_dir=Path("/x"), sessions=SPECS)
    return SessionManager(config, factory=world)


STATUS = {"name": "x", "json": False}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("error", "code"), [
    (UsageError("bad command line"), 2),
    (ConfigError("kstlib.conf.yml:3: YAML syntax error"), 2),
    (ValidationError("image", "invalid image reference 'UPPER/x'", session="x"), 2),
    (InvalidSessionError("kstlib.conf.yml:9: session 'x': image: nope"), 2),
    (SessionNotFoundError("no session named 'x'"), 1),
    (SessionAlreadyRunningError("session 'x' is already running (tmux)"), 1),
    (SessionNotRunningError("session 'x' is not running (tmux)"), 1),
    (ImageNotFoundError("image 'img' not found on podman (kstlib never pulls)"), 1),
    (BackendError("podman ps failed: cannot connect"), 1),
    (BackendNotFoundError("'tmux' not found in PATH"), 3),
    (ContainerRuntimeNotFoundError("no container runtime found"), 3),
])
def test_every_error_is_its_exit_code_and_one_line(capsys, error, code):
    assert error.exit_code == code  # the table of errors.py
    assert run_verb(front(Raising(error)), "status", STATUS) == code
    out, err = capsys.readouterr()
    assert out == "" and err == error.line() + "\n"


def test_the_exit_code_table():
    assert (errors.OK, errors.FAILED, errors.USAGE, errors.BACKEND_MISSING, errors.TIMEOUT,
            errors.UNEXPECTED, errors.INTERRUPTED) == (0, 1, 2, 3, 4, 70, 130)


def test_an_error_line_stays_one_line_and_shows_no_control_characters(capsys):
    error = BackendError("tmux said:\nsecond line \x1b[31mred")
    assert run_verb(front(Raising(error)), "status", STATUS) == errors.FAILED
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "\x1b" not in err
    assert "second line" in err


def test_a_verb_of_names_named_nothing_is_a_usage_error(capsys):
    """`inv ops.logs ,` is an empty list once split: exit 2 and a line, never max() of nothing;
    for a verb whose empty list means "all" (`up`), it goes through."""
    world = FakeWorld()
    assert run_verb(front(fake_manager(world)), "logs", {"names": [], "lines": None}) == 2
    assert capsys.readouterr().err == "'logs' needs at least one session NAME\n"
    assert run_verb(front(fake_manager(world)), "wait", {"names": []}) == 2


def test_ctrl_c_is_130(capsys):
    assert run_verb(front(Raising(KeyboardInterrupt())), "status", STATUS) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_an_unexpected_exception_is_70_and_one_line(capsys, monkeypatch):
    monkeypatch.delenv("KSTLIB_DEBUG", raising=False)
    assert run_verb(front(Raising(RuntimeError("boom"))), "status", STATUS) == 70
    assert capsys.readouterr().err.splitlines() == [
        "unexpected error: RuntimeError: boom (set KSTLIB_DEBUG=1 for details)"]


def test_kstlib_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("KSTLIB_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        run_verb(front(Raising(RuntimeError("boom"))), "status", STATUS)


def test_a_reader_that_left_is_not_an_error(capsys):
    assert run_verb(front(Raising(BrokenPipeError())), "status", STATUS) == errors.OK
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", ["kstlib", "inv"])
@pytest.mark.parametrize(("verb", "args", "field"), [
    ("logs", {"names": ["x"], "lines": "abc", "follow": False}, "lines"),
    ("logs", {"names": ["x"], "lines": "-3", "follow": False}, "lines"),
    ("stop", {"name": "x", "force": False, "timeout": "soon"}, "timeout"),
])
def test_a_bad_number_is_2_on_both_fronts(capsys, name, verb, args, field):
    manager = Raising(AssertionError("a bad value must be refused before any backend call"))
    assert run_verb(front(manager, name), verb, args) == errors.USAGE
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{field}: expected ")


def test_logs_n_abc_through_both_real_front_ends(capsys, tmp_path):
    assert cli.run(["ops", "logs", "x", "-n", "abc"]) == errors.USAGE
    assert capsys.readouterr().err == "lines: expected a whole number, got 'abc'\n"
    (tmp_path / "kstlib.conf.yml").write_text("ops:\n  sessions:\n    x:\n      command: sleep 9\n")
    ns = namespace(search_from=tmp_path)
    for argv in (["inv", "ops.logs", "x", "-n", "abc"], ["inv", "x.logs", "-n", "abc"]):
        with pytest.raises(SystemExit) as info:
            Program(namespace=ns).run(argv)
        assert info.value.code == errors.USAGE
        assert capsys.readouterr().err == "lines: expected a whole number, got 'abc'\n"


# --------------------------------------------------------------------------- hints per front


@pytest.mark.parametrize(("name", "hint"), [("kstlib", "(see: kstlib ops list)"),
                                            ("inv", "(see: inv ops.list)")])
def test_hints_name_the_front_end_in_use(capsys, name, hint):
    code = run_verb(front(fake_manager(FakeWorld()), name), "status", {"name": "bto",
                                                                       "json": False})
    assert code == errors.FAILED
    err = capsys.readouterr().err
    assert err.startswith("no session named 'bto' (did you mean 'bot'?)")
    assert err.rstrip().endswith(hint)


def test_an_already_running_hint_per_front(capsys):
    world = FakeWorld()
    world.at("container", "podman").add("bot")
    for name, hint in (("kstlib", "stop it first: kstlib ops stop bot"),
                       ("inv", "stop it first: inv bot.stop")):
        args = {"name": "bot", "wait": False, "timeout": None}
        assert run_verb(front(fake_manager(world), name), "start", args) == errors.FAILED
        assert hint in capsys.readouterr().err


def test_suggest_spells_both_fronts():
    assert Suggest("stop", "x").spell() == "kstlib ops stop x"
    assert Suggest("stop", "x").spell("inv") == "inv x.stop"
    assert Suggest("list").spell("inv") == "inv ops.list"
    error = KstlibError("session 'x' is gone", hint=Suggest("logs", "x"))
    assert error.line() == "session 'x' is gone (see: kstlib ops logs x)"
    assert error.line("inv") == "session 'x' is gone (see: inv x.logs)"
    assert str(error) == error.line()


# --------------------------------------------------------------------------- the handlers


def test_start_is_0_and_a_warning_when_the_session_already_exited(capsys):
    world = FakeWorld()
    world.at("tmux").will("bot", exit_code=2, output=["bot: missing token"])
    args = {"name": "bot", "wait": False, "timeout": None}
    assert run_verb(front(fake_manager(world)), "start", args) == errors.OK
    out, err = capsys.readouterr()
    assert out.startswith("started bot (tmux")
    assert err == "warning: session 'bot' already exited with code 2: bot: missing token\n"


def test_stop_waits_10_seconds_unless_told_and_validates_the_timeout(capsys):
    world = FakeWorld()
    tmux = world.at("tmux")
    tmux.add("bot")
    assert run_verb(front(fake_manager(world)), "stop",
                    {"name": "bot", "force": False, "timeout": None}) == errors.OK
    tmux.add("bot")
    assert run_verb(front(fake_manager(world)), "stop",
                    {"name": "bot", "force": True, "timeout": "2.5"}) == errors.OK
    assert [c for c in tmux.calls if c[0] == "stop"] == [("stop", "bot", 10.0, False),
                                                         ("stop", "bot", 2.5, True)]
    assert capsys.readouterr().out.splitlines() == ["stopped bot (tmux)"] * 2


def test_status_json_and_list_json_are_pure_json_on_stdout(capsys):
    import json

    world = FakeWorld()
    world.at("tmux").add("bot")
    assert run_verb(front(fake_manager(world)), "status", {"name": "bot", "json": True}) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "running"
    assert run_verb(front(fake_manager(world)), "list", {"json": True, "backend": None}) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["state"]) for r in rows] == [("bot", "running"), ("prod", "defined")]


def test_logs_of_several_sessions_are_prefixed(capsys):
    world = FakeWorld()
    world.at("tmux").add("bot", output=["one", "two"])
    world.at("container", "podman").add("prod", output=["three"])
    args = {"names": ["bot", "prod"], "lines": "1", "follow": False}
    assert run_verb(front(fake_manager(world)), "logs", args) == errors.OK
    assert capsys.readouterr().out.splitlines() == ["bot  | two", "prod | three"]


def test_a_config_that_cannot_be_loaded_is_reported_once(capsys, tmp_path):
    bad = tmp_path / "kstlib.conf.yml"
    bad.write_text("ops:\n  sessions: [\n")
    source = ConfigSource(bad)
    first = Front(source, "kstlib")
    assert run_verb(first, "list", {"json": False, "backend": None}) == errors.USAGE
    assert run_verb(first, "status", STATUS) == errors.USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]  # each verb says it once, the same way
    source.error_reported = True  # namespace() printed it already: not again
    assert run_verb(first, "list", {"json": False, "backend": None}) == errors.USAGE
    assert capsys.readouterr().err == ""


def test_live_state_reaches_the_status_handler(capsys):
    world = FakeWorld()
    world.at("tmux").add("bot", State.EXITED, exit_code=3)
    assert run_verb(front(fake_manager(world)), "status", {"name": "bot", "json": False}) == 0
    assert "exited (exit code 3)" in capsys.readouterr().out
