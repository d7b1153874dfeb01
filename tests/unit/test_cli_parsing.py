"""The kstlib Program and the generated invoke collections, without any backend.

Parsing is exercised step by step (parse_core, parse_tasks...) so that nothing runs; the error
paths run the whole program with a manager stub that raises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Context, Program
from invoke.exceptions import Exit, ParseError

from kstlib_tasks import cli, invoke_tasks
from kstlib_tasks.errors import SessionAlreadyRunningError, SessionNotFoundError
from kstlib_tasks.invoke_tasks import ConfigSource, KTask, namespace
from kstlib_tasks.program import KstlibProgram


def parse(*argv: str) -> KstlibProgram:
    """Run the program's parsing steps (not the tasks) on ``kstlib ARGV``."""
    program = KstlibProgram()
    program.create_config()
    program.parse_core(["kstlib", *argv])
    program.parse_collection()
    program.parse_tasks()
    program.update_config()
    return program


def task_args(program: KstlibProgram) -> tuple[str, dict]:
    [context] = program.tasks
    return context.name, context.as_kwargs


def test_seed_syntax_is_merged_into_the_ops_task():
    name, kwargs = task_args(parse("ops", "start", "astro-dev"))
    assert name == "ops.start"
    assert kwargs["name"] == "astro-dev"


def test_dotted_form_works_too():
    assert task_args(parse("ops.status", "astro-dev"))[0] == "ops.status"


@pytest.mark.parametrize("verb", invoke_tasks.VERBS)
def test_every_verb_is_reachable(verb):
    argv = ["ops", verb] if verb == "list" else ["ops", verb, "x"]
    assert task_args(parse(*argv))[0] == f"ops.{verb}"


def test_config_before_the_command_is_ours_not_invokes():
    program = parse("--config", "my.yml", "ops", "start", "x")
    assert task_args(program) == ("ops.start", task_args(program)[1])
    assert program.source.explicit == "my.yml"
    assert program.config._runtime_path is None  # never loaded as invoke's config


def test_config_after_the_command_is_accepted():
    program = parse("ops", "list", "--config", "other.yml")
    assert program.source.explicit == "other.yml"
    assert task_args(program)[0] == "ops.list"


def test_invokes_short_config_flag_is_gone():
    with pytest.raises(ParseError, match="'-f'"):
        parse("-f", "my.yml", "ops", "list")


def test_start_flags_short_and_long():
    _, kwargs = task_args(parse(
        "ops", "start", "astro-dev", "-b", "container", "-i", "astro-bot:v2", "-e", "A=1",
        "--env", "B=2", "-v", "/a:/b", "-p", "8080", "-p", "9090:90", "-w", "/tmp",
        "-L", "sock", "-c", "sleep 1",
    ))
    assert kwargs == {
        "name": "astro-dev", "backend": "container", "image": "astro-bot:v2",
        "env": ["A=1", "B=2"], "volume": ["/a:/b"], "port": ["8080", "9090:90"],
        "workdir": "/tmp", "socket": "sock", "command": "sleep 1",
    }


def test_seed_examples_parse():
    assert task_args(parse("ops", "start", "astro-prod", "--image", "astro-bot:v2"))[1][
        "image"] == "astro-bot:v2"
    kwargs = task_args(parse("ops", "start", "astro-dev", "--backend", "container",
                             "--image", "astro-bot"))[1]
    assert (kwargs["backend"], kwargs["image"]) == ("container", "astro-bot")
    assert task_args(parse("ops", "logs", "astro-prod", "--lines", "50"))[1]["lines"] == 50


def test_stop_and_logs_short_flags_are_validated_numbers():
    assert task_args(parse("ops", "stop", "x", "-f", "-t", "2.5"))[1] == {
        "name": "x", "force": True, "timeout": 2.5}
    assert task_args(parse("ops", "logs", "x", "-n", "7"))[1] == {"name": "x", "lines": 7}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["ops", "logs", "x", "-n", "x"], "lines"),
        (["ops", "logs", "x", "--lines", "-3"], "lines"),
        (["ops", "stop", "x", "-t", "abc"], "timeout"),
    ],
)
def test_bad_numbers_are_one_parse_error(argv, words):
    with pytest.raises(ParseError) as info:
        parse(*argv)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_help_swallowed_by_the_positional_name_becomes_the_commands_help():
    assert parse("ops", "start", "--help").args.help.value == "ops.start"
    assert parse("ops", "logs", "-h").args.help.value == "ops.logs"


def test_help_before_the_command():
    program = KstlibProgram()
    program.create_config()
    program.parse_core(["kstlib", "--help", "ops", "start"])
    assert program.args.help.value == "ops.start"


@pytest.mark.parametrize("argv", [["ops"], ["ops", "--help"]])
def test_bare_ops_shows_the_general_help(argv):
    program = KstlibProgram()
    program.create_config()
    program.parse_core(["kstlib", *argv])
    assert program.args.help.value is True


def test_unknown_ops_command_is_a_parse_error():
    with pytest.raises(ParseError, match="unknown command 'ops bogus'"):
        parse("ops", "bogus")


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_command_help_output_documents_every_flag(capsys):
    code, out, _ = run_main(capsys, "ops", "start", "--help")
    assert code == 0
    assert "Usage: kstlib [--config PATH] ops start NAME" in out
    for flag in ("-b", "-c", "-i", "-e", "-v", "-p", "-w", "-L", "--backend", "--command",
                 "--image", "--env", "--volume", "--port", "--workdir", "--socket"):
        assert flag in out


def test_general_help(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert "ops start NAME" in out and "--config" in out
    assert "--echo" not in out and "--dry" not in out


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip().startswith("kstlib ")


def test_missing_name_is_one_line(capsys):
    code, out, err = run_main(capsys, "ops", "stop")
    assert code != 0 and out == ""
    assert err.strip() == "kstlib: 'ops stop' needs a session NAME (see: kstlib ops stop --help)"


@pytest.mark.parametrize(("argv", "line"), [
    (["ops", "start", "astro-dev", "--bogus"],
     "kstlib: unknown option or extra argument '--bogus' (see: kstlib ops start --help)"),
    (["ops", "stop", "astro-dev", "extra"],
     "kstlib: unknown option or extra argument 'extra' (see: kstlib ops stop --help)"),
    (["ops", "start", "astro-dev", "-b"],
     "kstlib: option --backend needs a value (see: kstlib ops start --help)"),
    (["ops", "logs", "astro-dev", "-n"],
     "kstlib: option --lines needs a value (see: kstlib ops logs --help)"),
])
def test_usage_errors_say_what_and_where_to_read(capsys, argv, line):
    """Not invoke's "No idea what '--bogus' is!" or "Flag <Argument backend> needed value"."""
    code, out, err = run_main(capsys, *argv)
    assert code != 0 and out == ""
    assert err.strip() == line


def test_bad_int_through_main_is_one_line(capsys):
    code, _, err = run_main(capsys, "ops", "logs", "x", "-n", "x")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


class StubManager:
    """Raises what it was given for every verb."""

    def __init__(self, error: BaseException):
        self.error = error

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
    assert code == invoke_tasks.UNEXPECTED_EXIT
    assert err.strip().splitlines() == [
        "unexpected error: RuntimeError: boom (set KSTLIB_DEBUG=1 for details)"]


def test_missing_explicit_config_is_an_error_naming_it(capsys, tmp_path):
    missing = tmp_path / "nope.yml"
    code, _, err = run_main(capsys, "--config", str(missing), "ops", "list")
    assert code != 0
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


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(CONFIG)
    return path


def test_namespace_has_one_collection_per_valid_session_plus_ops(config_file, capsys):
    ns = namespace(config=config_file)
    err = capsys.readouterr().err
    assert sorted(ns.collections) == ["astro-dev", "astro-prod", "ops"]
    assert sorted(ns.collections["astro-dev"].tasks) == [
        "attach", "logs", "restart", "start", "status", "stop"]
    assert sorted(ns.collections["ops"].tasks) == sorted(invoke_tasks.VERBS)
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
    assert info.value.code != 0
    assert info.value.message is None  # already reported once


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


def test_stock_invoke_bad_int_is_one_line(config_file, capsys):
    ns = namespace(config=config_file)
    capsys.readouterr()  # the config's warnings
    with pytest.raises(SystemExit) as info:
        Program(namespace=ns).run(["inv", "astro-dev.logs", "-n", "x"])
    assert info.value.code != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lines" in err


def test_session_description_is_in_the_task_help(tmp_path) -> None:
    (tmp_path / "kstlib.conf.yml").write_text(
        "ops:\n  sessions:\n    astro-dev:\n      command: python3 -m astro.bot\n"
        "      description: the astro bot, in development mode\n"
    )
    ns = namespace(search_from=tmp_path)
    doc = ns.collections["astro-dev"].tasks["start"].__doc__
    assert "the astro bot, in development mode" in doc
    assert "tmux: python3 -m astro.bot" in doc.splitlines()[0]  # the first line stays the summary
