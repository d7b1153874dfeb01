"""The ``kstlib`` command's own parser (``cli.parse``/``parse_verb``), its help, and the
generated invoke collections, without any backend.

Parsing is pure (nothing runs); the error paths run ``cli.main`` with a manager stub that
raises, so that the one line and the exit code are what a user sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Context, Program
from invoke.exceptions import Exit

from kstlib_tasks import cli, errors, verbs
from kstlib_tasks.errors import SessionAlreadyRunningError, SessionNotFoundError, UsageError
from kstlib_tasks.frontend import ConfigSource
from kstlib_tasks.invoke_tasks import KTask, namespace
from kstlib_tasks.opsconfig import OpsConfig


def parse(*argv: str) -> cli.Parsed:
    return cli.parse(list(argv))


def args_of(*argv: str) -> dict:
    """The handler's keyword arguments, without the flags left at their defaults."""
    parsed = parse(*argv)
    return {k: v for k, v in parsed.args.items() if v not in (None, [], False)}


def usage_error(*argv: str) -> str:
    with pytest.raises(UsageError) as info:
        parse(*argv)
    assert info.value.exit_code == errors.USAGE
    return info.value.line("kstlib")


# ----------------------------------------------------------------- the command words


def test_seed_syntax_names_the_verb_and_its_session():
    parsed = parse("ops", "start", "astro-dev")
    assert parsed.verb == "start" and parsed.args["name"] == "astro-dev"
    assert parsed.config is None and not parsed.help and not parsed.version


@pytest.mark.parametrize("verb", verbs.names())
def test_every_verb_of_the_table_is_reachable(verb):
    takes = verbs.table()[verb].names
    argv = ["ops", verb] if takes in ("none", "any") else ["ops", verb, "x"]
    assert parse(*argv).verb == verb


def test_verbs_taking_several_names_get_them_all_in_order():
    assert parse("ops", "logs", "b", "a").args["names"] == ["b", "a"]
    assert parse("ops", "up").args["names"] == []  # up/down without targets: everything
    assert parse("ops", "down", "db", "web", "--force").args["names"] == ["db", "web"]


# ----------------------------------------------------------------- global options anywhere


@pytest.mark.parametrize("argv", [
    ("--config", "my.yml", "ops", "start", "x"),
    ("ops", "--config", "my.yml", "start", "x"),
    ("ops", "start", "x", "--config", "my.yml"),
    ("ops", "start", "--config=my.yml", "x"),
])
def test_config_is_taken_wherever_it_is(argv):
    parsed = parse(*argv)
    assert parsed.config == "my.yml"
    assert parsed.verb == "start" and parsed.args["name"] == "x"


def test_debug_version_and_help_anywhere():
    assert parse("ops", "list", "--debug").debug
    assert parse("--debug", "ops", "list").debug
    assert parse("ops", "list", "-V").version and parse("--version").version
    assert parse("ops", "stop", "x", "-h").help


def test_invokes_short_config_flag_is_gone():
    assert usage_error("-f", "my.yml", "ops", "list") == "unknown option '-f' (see: kstlib --help)"
    assert "'-f'" in usage_error("ops", "list", "-f", "my.yml")


# ----------------------------------------------------------------- flags


def test_start_flags_short_and_long():
    assert args_of(
        "ops", "start", "astro-dev", "-b", "container", "-i", "astro-bot:v2", "-e", "A=1",
        "--env", "B=2", "-v", "/a:/b", "-p", "8080", "-p", "9090:90", "-w", "/tmp",
        "-L", "sock", "-c", "sleep 1",
    ) == {
        "name": "astro-dev", "backend": "container", "image": "astro-bot:v2",
        "env": ["A=1", "B=2"], "volume": ["/a:/b"], "port": ["8080", "9090:90"],
        "workdir": "/tmp", "socket": "sock", "command": "sleep 1",
    }


def test_every_flag_is_given_to_the_handler_with_its_default():
    assert parse("ops", "stop", "x").args == {"name": "x", "force": False, "timeout": None}
    assert parse("ops", "list").args == {"json": False, "backend": None}


def test_seed_examples_parse():
    assert args_of("ops", "start", "astro-prod", "--image", "astro-bot:v2")["image"] == (
        "astro-bot:v2")
    found = args_of("ops", "start", "astro-dev", "--backend", "container", "--image", "astro-bot")
    assert (found["backend"], found["image"]) == ("container", "astro-bot")
    assert args_of("ops", "logs", "astro-prod", "--lines", "50")["lines"] == "50"


@pytest.mark.parametrize("form", [("--lines", "5"), ("--lines=5",), ("-n", "5"), ("-n5",),
                                  ("-n=5",)])
def test_a_value_given_every_gnu_way(form):
    assert args_of("ops", "logs", "x", *form) == {"names": ["x"], "lines": "5"}


def test_numbers_stay_text_for_the_shared_rules():
    """Validated by frontend.run_verb, with the same words for kstlib and inv."""
    assert args_of("ops", "stop", "x", "-f", "-t", "2.5") == {"name": "x", "force": True,
                                                               "timeout": "2.5"}
    assert args_of("ops", "logs", "x", "-n", "abc")["lines"] == "abc"


def test_repeatable_env_in_every_form_keeps_its_order():
    found = args_of("ops", "start", "x", "-e", "A=1", "--env", "B=2", "--env=C=3", "-eD=4",
                    "-e", "E=a=b")
    assert found["env"] == ["A=1", "B=2", "C=3", "D=4", "E=a=b"]


def test_a_value_may_look_like_an_option():
    assert args_of("ops", "start", "x", "--command", "-x")["command"] == "-x"
    assert args_of("ops", "start", "x", "-c", "-x")["command"] == "-x"
    # the global options are taken first, wherever they are: attach such a value with '='
    assert args_of("ops", "start", "x", "--command=--version")["command"] == "--version"


def test_double_dash_ends_the_options():
    assert parse("ops", "start", "--", "-x").args["name"] == "-x"
    assert parse("ops", "logs", "a", "--", "-n", "b").args["names"] == ["a", "-n", "b"]
    assert parse("ops", "logs", "a", "--", "--help").help is False  # not the global --help


def test_a_boolean_takes_no_value():
    assert usage_error("ops", "list", "--json=1") == (
        "option --json takes no value (see: kstlib ops list --help)")


# ----------------------------------------------------------------- usage errors


def test_missing_name():
    assert usage_error("ops", "stop") == (
        "'ops stop' needs a session NAME (see: kstlib ops stop --help)")
    assert usage_error("ops", "logs") == (
        "'ops logs' needs at least one NAME (see: kstlib ops logs --help)")


@pytest.mark.parametrize(("argv", "line"), [
    (["ops", "start", "astro-dev", "--bogus"],
     "unknown option '--bogus' (see: kstlib ops start --help)"),
    (["ops", "logs", "astro-dev", "--lnes", "5"],
     "unknown option '--lnes' (did you mean '--lines'?) (see: kstlib ops logs --help)"),
    (["ops", "start", "astro-dev", "--imgae=v2"],
     "unknown option '--imgae=v2' (did you mean '--image'?) (see: kstlib ops start --help)"),
    (["ops", "stop", "astro-dev", "-x"], "unknown option '-x' (see: kstlib ops stop --help)"),
    (["ops", "stop", "astro-dev", "extra"],
     "unknown option or extra argument 'extra' (see: kstlib ops stop --help)"),
    (["ops", "list", "x"], "unknown option or extra argument 'x' (see: kstlib ops list --help)"),
    (["ops", "start", "astro-dev", "-b"],
     "option --backend needs a value (see: kstlib ops start --help)"),
    (["ops", "logs", "astro-dev", "-n"],
     "option --lines needs a value (see: kstlib ops logs --help)"),
    (["ops", "list", "--config"], "option --config needs a value (see: kstlib --help)"),
    (["--bogus"], "unknown option '--bogus' (see: kstlib --help)"),
])
def test_usage_errors_say_what_and_where_to_read(argv, line):
    assert usage_error(*argv) == line


def test_unknown_commands_suggest_the_closest():
    assert usage_error("osp", "list") == (
        "unknown command 'osp' (did you mean 'ops'?) (see: kstlib --help)")
    strat = usage_error("ops", "strat", "x")
    assert strat.startswith("unknown command 'ops strat' (did you mean 'start'?)")
    assert "see: kstlib --help" in strat
    bogus = usage_error("ops", "zzz")
    assert bogus.startswith("unknown command 'ops zzz' (commands: list, status, start")
    assert "did you mean" not in bogus


@pytest.mark.parametrize("argv", [
    ["ops", "stop"],
    ["ops", "start", "x", "--bogus"],
    ["ops", "lgos", "x"],
    ["deploy"],
    ["ops", "logs", "x", "-n"],
    ["ops", "list", "--json=yes"],
    ["-f", "my.yml", "ops", "list"],
])
def test_every_usage_error_is_exit_2_and_one_line(capsys, argv):
    code, out, err = run_main(capsys, *argv)
    assert code == errors.USAGE and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("kstlib: ")
    assert "Traceback" not in err


# ----------------------------------------------------------------- help and version


@pytest.mark.parametrize("argv", [["ops"], ["ops", "--help"], ["--help"], [], ["-h", "ops"]])
def test_the_general_help(argv):
    parsed = parse(*argv)
    assert parsed.verb is None and (parsed.help or not argv)


@pytest.mark.parametrize("argv", [("ops", "start", "--help"), ("--help", "ops", "start"),
                                  ("ops", "start", "x", "-h"), ("ops", "start", "-h", "--bogus")])
def test_a_commands_help_is_asked_for_anywhere(argv):
    parsed = parse(*argv)
    assert parsed.verb == "start" and parsed.help


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_command_help_documents_every_flag_and_starts_nothing(capsys, monkeypatch):
    def no_manager(self):
        raise AssertionError("--help must not load the config or reach a backend")

    monkeypatch.setattr(ConfigSource, "manager", no_manager)
    monkeypatch.setattr(ConfigSource, "load", no_manager)
    code, out, err = run_main(capsys, "ops", "start", "--help")
    assert code == 0 and err == ""
    assert "Usage: kstlib [--config PATH] ops start NAME" in out
    for flag in ("-b", "-c", "-i", "-e", "-v", "-p", "-w", "-L", "--backend", "--command",
                 "--image", "--env", "--volume", "--port", "--workdir", "--socket", "--wait"):
        assert flag in out
    code, out, _ = run_main(capsys, "ops", "start", "astro-dev", "--help")
    assert code == 0 and "ops start NAME" in out


def test_general_help(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert "ops start NAME" in out and "--config" in out
    for verb in verbs.names():
        assert f"ops {verb}" in out
    assert "--echo" not in out and "--dry" not in out  # none of invoke's core options


def test_a_command_without_options_says_so(capsys):
    code, out, _ = run_main(capsys, "ops", "attach", "--help")
    assert code == 0 and "Options:" in out and "none" in out


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip().startswith("kstlib")


# ----------------------------------------------------------------- errors through main


class StubManager:
    """Raises what it was given for every verb (an empty config for the handlers to read)."""

    def __init__(self, error: BaseException):
        self.error = error
        self.config = OpsConfig()

    def __getattr__(self, name):
        def verb(*args, **kwargs):
            raise self.error

        return verb


def with_manager(monkeypatch, error: BaseException) -> None:
    monkeypatch.setattr(ConfigSource, "manager", lambda self: StubManager(error))


def test_errors_become_one_line_and_their_exit_code(capsys, monkeypatch):
    with_manager(monkeypatch, SessionAlreadyRunningError("session 'x' is already running (tmux)"))
    code, out, err = run_main(capsys, "ops", "start", "x")
    assert code == SessionAlreadyRunningError.exit_code
    assert err == "session 'x' is already running (tmux)\n"
    assert out == ""


def test_ctrl_c_exits_130(capsys, monkeypatch):
    with_manager(monkeypatch, KeyboardInterrupt())
    code, _, err = run_main(capsys, "ops", "logs", "x")
    assert code == 130
    assert "Traceback" not in err


def test_unexpected_errors_are_one_line_too(capsys, monkeypatch):
    monkeypatch.delenv("KSTLIB_DEBUG", raising=False)
    with_manager(monkeypatch, RuntimeError("boom"))
    code, _, err = run_main(capsys, "ops", "status", "x")
    assert code == errors.UNEXPECTED
    assert err.strip().splitlines() == [
        "unexpected error: RuntimeError: boom (set KSTLIB_DEBUG=1 for details)"]


def test_bad_numbers_through_main_are_one_line_exit_2(capsys):
    code, _, err = run_main(capsys, "ops", "logs", "x", "-n", "x")
    assert code == errors.USAGE
    assert err.strip().splitlines() == ["lines: expected a whole number, got 'x'"]
    code, _, err = run_main(capsys, "ops", "stop", "x", "-t", "abc")
    assert code == errors.USAGE and "timeout" in err and len(err.strip().splitlines()) == 1


def test_missing_explicit_config_is_an_error_naming_it(capsys, tmp_path):
    missing = tmp_path / "nope.yml"
    code, _, err = run_main(capsys, "--config", str(missing), "ops", "list")
    assert code == errors.USAGE
    assert str(missing) in err or "nope.yml" in err
    assert len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------- generated invoke collections

CONFIG = """\
ops:
  sessions:
    astro-dev:
      command: "python -m astro.bot"
    astro-prod:
      backend: container
      image: "astro-bot"
    broken:
      image: "UPPER/x"
      backend: container
    ops:
      command: "sleep 1"
"""

PER_SESSION = sorted(v.name for v in verbs.table().values() if v.per_session)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(CONFIG)
    return path


def test_namespace_has_one_collection_per_valid_session_plus_ops(config_file, capsys):
    ns = namespace(config=config_file)
    err = capsys.readouterr().err
    assert sorted(ns.collections) == ["astro-dev", "astro-prod", "ops"]
    assert sorted(ns.collections["astro-dev"].tasks) == PER_SESSION
    assert {"start", "stop", "restart", "status", "logs", "attach"} <= set(PER_SESSION)
    assert sorted(ns.collections["ops"].tasks) == sorted(verbs.names())
    assert "broken" in err  # the loader's warning says why it has no tasks
    assert "session 'ops' gets no invoke tasks" in err


def test_session_help_shows_backend_and_command_or_image(config_file):
    ns = namespace(config=config_file)
    assert "tmux: python -m astro.bot" in ns.collections["astro-dev"].tasks["start"].__doc__
    assert "container: image astro-bot" in ns.collections["astro-prod"].tasks["status"].__doc__


def test_namespace_resolves_a_relative_config_from_the_callers_folder(config_file, monkeypatch,
                                                                      tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ns = namespace(config="kstlib.conf.yml", search_from=config_file.parent)
    assert "astro-dev" in ns.collections


def test_namespace_can_be_extended(config_file):
    from invoke import task

    @task
    def deploy(c):
        """Deploy."""

    ns = namespace(config=config_file)
    ns.add_task(deploy)
    assert "deploy" in ns.task_names


def test_tasks_of_two_sessions_are_not_deduplicated(config_file):
    ns = namespace(config=config_file)
    a = ns.collections["astro-dev"].tasks["start"]
    b = ns.collections["astro-prod"].tasks["start"]
    assert isinstance(a, KTask) and a != b


def test_broken_config_leaves_the_repos_own_tasks_usable(tmp_path, capsys):
    path = tmp_path / "kstlib.conf.yml"
    path.write_text("ops:\n  sessions: [\n")
    ns = namespace(config=path)
    err = capsys.readouterr().err
    assert "YAML" in err and len(err.strip().splitlines()) == 1
    assert list(ns.collections) == ["ops"]
    with pytest.raises(Exit) as info:
        ns.collections["ops"].tasks["list"](Context())
    assert info.value.code == errors.USAGE
    assert info.value.message is None  # already reported once
    assert capsys.readouterr().err == ""


def test_inv_positional_help_prints_the_task_help(config_file, capsys):
    ns = namespace(config=config_file)
    ns.collections["ops"].tasks["start"](Context(), name="--help")
    out = capsys.readouterr().out
    assert "ops.start" in out and "--image" in out


def test_stock_invoke_program_runs_a_generated_task(config_file, capsys, monkeypatch):
    with_manager(monkeypatch, SessionNotFoundError("no session named 'zzz'"))
    ns = namespace(config=config_file)
    capsys.readouterr()  # the config's warnings
    with pytest.raises(SystemExit) as info:
        Program(namespace=ns).run(["inv", "ops.status", "zzz"])
    assert info.value.code == 1
    assert capsys.readouterr().err == "no session named 'zzz'\n"


def test_stock_invoke_bad_int_is_one_line_exit_2(config_file, capsys):
    ns = namespace(config=config_file)
    capsys.readouterr()  # the config's warnings
    with pytest.raises(SystemExit) as info:
        Program(namespace=ns).run(["inv", "astro-dev.logs", "-n", "x"])
    assert info.value.code == errors.USAGE
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["lines: expected a whole number, got 'x'"]


def test_session_description_is_in_the_task_help(tmp_path) -> None:
    (tmp_path / "kstlib.conf.yml").write_text(
        "ops:\n  sessions:\n    astro-dev:\n      command: python3 -m astro.bot\n"
        "      description: the astro bot, in development mode\n"
    )
    ns = namespace(search_from=tmp_path)
    doc = ns.collections["astro-dev"].tasks["start"].__doc__
    assert "the astro bot, in development mode" in doc
    assert "tmux: python3 -m astro.bot" in doc.splitlines()[0]  # the first line stays the summary
