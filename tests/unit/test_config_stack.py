"""The session keys of stacks through the loader: ready, depends_on, groups, restart,
max_restarts, env_file, ``$VAR`` syntax, the dependency graph, and the words of unknown keys.

Every problem is one line ``kstlib.conf.yml:N: session 'x': field: reason``; the entry is
skipped and the others keep working. Real files in tmp_path.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kstlib_tasks.config import load_config
from kstlib_tasks.errors import ConfigError
from kstlib_tasks.graph import Edge
from kstlib_tasks.opsconfig import OpsConfig
from kstlib_tasks.probes import ProbeSpec

NAME = "kstlib.conf.yml"


def load(folder: Path, monkeypatch: pytest.MonkeyPatch, text: str,
         **files: str) -> OpsConfig:
    """Write the config (and env files: name=content) in ``folder``, load it from there."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name.replace("__", ".")).write_text(content)
    (folder / NAME).write_text(textwrap.dedent(text).lstrip("\n"))
    monkeypatch.chdir(folder)
    return load_config(warn=False)


def config_error(folder: Path, monkeypatch: pytest.MonkeyPatch, text: str, **files: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(folder, monkeypatch, text, **files)
    assert info.value.exit_code == 2
    line = str(info.value)
    assert "\n" not in line
    return line


def one_warning(result: OpsConfig) -> str:
    (line,) = result.warning_lines()
    return line


# =========================================================================== valid stack keys


def test_stack_keys_become_spec_fields(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            db:
              command: sleep 60
              ready: {tcp: 5432, timeout: 30, interval: 0.5}
              groups: data
              restart: always
              max_restarts: 0
            migrate:
              command: sleep 1
              depends_on: [db]
              ready: {exec: "pg_isready -h ${DB_HOST:-localhost}"}
              groups: [data, jobs]
            api:
              command: sleep 60
              depends_on: {db: ready, migrate: completed}
              restart: on-failure
              max_restarts: "3"
              ready:
                http: http://127.0.0.1:8080/health
              description: The API
            web:
              command: sleep 60
              restart: no
              ready: {delay: 2}
        """)
    assert result.warning_lines() == []
    assert result.problems == ()
    db, migrate, api, web = (result.sessions[n] for n in ("db", "migrate", "api", "web"))
    assert db.ready == ProbeSpec("tcp", ("127.0.0.1", 5432), timeout=30.0, interval=0.5)
    assert (db.groups, db.restart, db.max_restarts) == (("data",), "always", 0)
    assert migrate.depends_on == (Edge("db", "ready"),)
    assert migrate.ready == ProbeSpec("exec", ("pg_isready", "-h", "${DB_HOST:-localhost}"))
    assert api.depends_on == (Edge("db", "ready"), Edge("migrate", "completed"))
    assert (api.restart, api.max_restarts) == ("on-failure", 3)
    assert api.ready == ProbeSpec("http", "http://127.0.0.1:8080/health")
    assert api.description == "The API"
    assert (web.restart, web.max_restarts, web.ready) == ("no", 5, ProbeSpec("delay", 2.0))
    assert result.groups() == {"data": ["db", "migrate"], "jobs": ["migrate"]}


@pytest.mark.parametrize("written", ["no", "No", "'no'", '"no"', "false"])
def test_restart_no_unquoted_or_quoted(tmp_path: Path, monkeypatch, written: str) -> None:
    result = load(tmp_path, monkeypatch, f"ops:\n  sessions:\n    a:\n      restart: {written}\n")
    assert result.warning_lines() == []
    assert result.sessions["a"].restart == "no"


def test_unquoted_no_still_refused_where_it_is_not_a_policy(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch,
                  "ops:\n  sessions:\n    a:\n      env: {DEBUG: no}\n      restart: no\n")
    assert one_warning(result) == (
        "kstlib.conf.yml:4: session 'a': env.DEBUG: 'no' is read as a boolean by YAML: quote it "
        "(or write true/false)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("restart: yes", "kstlib.conf.yml:4: session 'a': restart: 'yes' is read as a boolean "
                         "by YAML: quote it (or write true/false)"),
        ("restart: true", "kstlib.conf.yml:4: session 'a': restart: true is not a restart "
                          "policy: write on-failure or always"),
        ("restart: allways", "kstlib.conf.yml:4: session 'a': restart: unknown restart policy "
                             "'allways' (did you mean 'always'?)"),
        ("restart: on-failure\n      max_restarts: 0",
         "kstlib.conf.yml:5: session 'a': max_restarts: 0 (no limit) is only allowed with "
         "restart: always"),
        ("max_restarts: 0", "kstlib.conf.yml:4: session 'a': max_restarts: 0 (no limit) is only "
                            "allowed with restart: always"),
        ("max_restarts: 1001", "kstlib.conf.yml:4: session 'a': max_restarts: max_restarts must "
                               "be between 0 and 1000, got 1001"),
        ("max_restarts: 3.5", "kstlib.conf.yml:4: session 'a': max_restarts: expected a whole "
                              "number, got '3.5'"),
        ("ready:\n        tcp: 99999", "kstlib.conf.yml:5: session 'a': ready.tcp: invalid port "
                                       "'99999': ports are numbers 1-65535"),
        ("ready:\n        tcp: 80\n        timout: 5",
         "kstlib.conf.yml:6: session 'a': ready.timout: unknown key (did you mean 'timeout'?)"),
        ("ready: {delay: 90}", "kstlib.conf.yml:4: session 'a': ready.delay: delay 90 s is not "
                               "shorter than the timeout (60 s): raise timeout"),
        ("ready: 8080", "kstlib.conf.yml:4: session 'a': ready: expected a mapping with one of "
                        "tcp, http, log, exec or delay, got a str"),
        ("depends_on:\n        b: redy", "kstlib.conf.yml:5: session 'a': depends_on.b: unknown "
                                         "condition 'redy' (did you mean 'ready'?)"),
        ("depends_on: [b, b]", "kstlib.conf.yml:4: session 'a': depends_on[1]: duplicate "
                               "dependency 'b'"),
        ("groups: [ok, bad_one]", "kstlib.conf.yml:4: session 'a': groups[1]: invalid group name "
                                  "'bad_one': start with a letter, then letters, digits or '-'"),
        ("description: \"two\\nlines\"", "kstlib.conf.yml:4: session 'a': description: "
                                        "description contains a newline"),
        ("description: " + "d" * 201, "kstlib.conf.yml:4: session 'a': description: description "
                                      "longer than 200 characters"),
    ],
)
def test_stack_key_problems_have_their_line(tmp_path: Path, monkeypatch, body: str,
                                            expected: str) -> None:
    result = load(tmp_path, monkeypatch,
                  f"ops:\n  sessions:\n    a:\n      {body}\n    b:\n      command: x\n")
    assert list(result.sessions) == ["b"]
    assert one_warning(result) == expected
    assert [result.located(p) for p in result.problems] == [expected]


# =========================================================================== $VAR syntax


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("command: echo ${X", "command: unterminated '${' in '${X': add the closing '}'"),
        ("command: [echo, '${}']", "command: '${}': empty variable name"),
        ("command: echo ${1A}", "command: '${1A}': invalid variable name '1A' (letters, digits "
                                "and '_', not starting with a digit)"),
        ("command: echo ${A:-${B}}", "command: '${A:-${B}': a default cannot contain '${' (no "
                                     "nesting)"),
        ("ready: {exec: \"check ${Y\"}", "ready.exec: unterminated '${' in '${Y': add the "
                                         "closing '}'"),
    ],
)
def test_variable_syntax_errors(tmp_path: Path, monkeypatch, body: str, expected: str) -> None:
    result = load(tmp_path, monkeypatch,
                  f"ops:\n  sessions:\n    a:\n      {body}\n    b:\n      command: echo $HOME\n")
    assert list(result.sessions) == ["b"]
    assert one_warning(result).startswith("kstlib.conf.yml:4: session 'a': ")
    assert one_warning(result).endswith(expected)


def test_valid_variables_and_dollars_pass(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            a:
              command: echo $HOME ${USER} ${PORT:-8080} $$ 5$ $1
              ready: {exec: "test -n ${TOKEN:-x}"}
        """)
    assert result.warning_lines() == []
    assert result.sessions["a"].command == (
        "echo", "$HOME", "${USER}", "${PORT:-8080}", "$$", "5$", "$1")


# =========================================================================== env_file


def test_env_file_precedence_ops_then_session_then_env(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          env_file: ops.env
          sessions:
            a:
              command: x
              env_file: [a.env, more.env]
              env: {C: from-env}
            b:
              command: x
        """, ops__env="A=ops\nB=ops\nC=ops\nD=ops\n", a__env="B=a\nC=a\nD=a\n",
        more__env="D=more\n")
    a, b = result.sessions["a"], result.sessions["b"]
    assert dict(a.env) == {"A": "ops", "B": "a", "C": "from-env", "D": "more"}
    assert dict(b.env) == {"A": "ops", "B": "ops", "C": "ops", "D": "ops"}
    assert a.env_files == tuple(str(tmp_path / n) for n in ("ops.env", "a.env", "more.env"))
    assert b.env_files == (str(tmp_path / "ops.env"),)
    assert result.env_files == a.env_files
    assert "env_file" not in result.settings


def test_env_file_paths_are_relative_to_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    load(project, monkeypatch, "ops:\n  sessions:\n    a:\n      env_file: conf/a.env\n")
    (project / "conf").mkdir()
    (project / "conf" / "a.env").write_text("A=1\n")
    monkeypatch.chdir(tmp_path)
    result = load_config(project / NAME, warn=False)
    assert dict(result.sessions["a"].env) == {"A": "1"}


def test_env_file_problems_are_the_sessions_own(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            missing:
              command: x
              env_file: gone.env
            refused:
              command: x
              env_file: [ok.env, bad.env]
            broken:
              command: x
              env_file: broken.env
            fine:
              command: x
              env_file: ok.env
        """, ok__env="A=1\n", bad__env="X=1\n\nLD_PRELOAD=/evil.so\n",
        broken__env="A=1\nB='open\n")
    assert list(result.sessions) == ["fine"]
    assert result.warning_lines() == [
        f"kstlib.conf.yml:5: session 'missing': env_file: {tmp_path}/gone.env: env file not "
        "found",
        "kstlib.conf.yml:8: session 'refused': env_file: bad.env:3: LD_PRELOAD: LD_PRELOAD is "
        "refused: it makes programs load foreign code",
        f"kstlib.conf.yml:11: session 'broken': env_file: {tmp_path}/broken.env:2: cannot parse "
        "this line",
    ]


@pytest.mark.parametrize("key", ["PYTHONUSERBASE", "NODE_PATH", "LD_BIND_NOW", "GIT_SSH_COMMAND",
                                 "GIT_CONFIG_COUNT", "1BAD"])
def test_env_file_keys_follow_the_env_rules(tmp_path: Path, monkeypatch, key: str) -> None:
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    a:\n      env_file: x.env\n",
                  x__env=f"OK=1\n{key}=v\n")
    assert one_warning(result).startswith(
        f"kstlib.conf.yml:4: session 'a': env_file: x.env:2: {key}: ")


def test_env_file_value_too_long_names_the_file_and_line(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            big:
              command: x
              env_file: big.env
            fine:
              command: x
        """, big__env="A=1\nBIG=" + "x" * (32 * 1024 + 1) + "\n")
    assert list(result.sessions) == ["fine"]
    assert one_warning(result) == (
        "kstlib.conf.yml:5: session 'big': env_file: big.env:2: BIG: value longer than 32 KiB"
    )


def test_whole_env_too_large_is_one_line(tmp_path: Path, monkeypatch) -> None:
    part = "x" * 30_000
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            huge:
              command: x
              env_file: [h1.env, h2.env]
            inline:
              command: x
              env_file: h1.env
              env: {L0: PART, L1: PART}
            fine:
              command: x
              env_file: h1.env
        """.replace("PART", part), h1__env="".join(f"K{i}={part}\n" for i in range(3)),
        h2__env="".join(f"L{i}={part}\n" for i in range(2)))
    assert list(result.sessions) == ["fine"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:5: session 'huge': env_file: environment larger than 128 KiB in all "
        "(146 KiB)",
        "kstlib.conf.yml:9: session 'inline': env: environment larger than 128 KiB in all "
        "(146 KiB)",
    ]


def test_ops_env_file_problems_refuse_every_entry(tmp_path: Path, monkeypatch) -> None:
    """Every session needs it, so each entry is refused saying why; the file itself stays
    usable (what runs can still be listed and stopped), and a wrongly typed value is still
    an error of the file."""
    sessions = "  sessions:\n    a:\n      command: sleep 1\n    b:\n      command: sleep 1\n"
    for text, files, reason in (
        ("ops:\n  env_file: nope.env\n", {},
         f"{tmp_path}/nope.env: env file not found"),
        ("ops:\n  env_file: [bad.env]\n", {"bad__env": "A=1\nGIT_SSH_COMMAND=evil\n"},
         "bad.env:2: GIT_SSH_COMMAND: GIT_SSH_COMMAND is refused: it makes programs load "
         "foreign code"),
    ):
        result = load(tmp_path, monkeypatch, text + sessions, **files)
        assert dict(result.sessions) == {}
        assert result.warning_lines() == [
            f"kstlib.conf.yml:2: session '{n}': ops.env_file: {reason}" for n in ("a", "b")]
    # the missing file appears: the same config (its cached copy) now has both sessions
    (tmp_path / "nope.env").write_text("FROM_OPS=1\n")
    fixed = load(tmp_path, monkeypatch, "ops:\n  env_file: nope.env\n" + sessions)
    assert [s.env["FROM_OPS"] for s in fixed.sessions.values()] == ["1", "1"]
    assert config_error(tmp_path, monkeypatch, "ops:\n  env_file: {a: 1}\n").startswith(
        "kstlib.conf.yml:2: ops.env_file: ")


def test_an_edited_env_file_is_seen_on_the_next_load(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    a:\n      env_file: a.env\n",
                  a__env="A=1\n")
    assert result.sessions["a"].env["A"] == "1"
    (tmp_path / "a.env").write_text("A=2\n")
    assert load_config(warn=False).sessions["a"].env["A"] == "2"


# =========================================================================== the graph


def test_dependency_problems_skip_those_entries_only(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            api:
              command: x
              depends_on: [db]
            db:
              command: x
              depends_on: [api]
            me:
              command: x
              depends_on: [me]
            unk:
              command: x
              depends_on: [dbb]
            bad:
              backend: container
              image: UPPER/x
            onbad:
              command: x
              depends_on: {bad: started}
            chain:
              command: x
              depends_on: [onbad]
            base:
              command: x
            ok:
              command: x
              depends_on: [base]
        """)
    assert list(result.sessions) == ["base", "ok"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:5: session 'api': depends_on: cycle api -> db -> api",
        "kstlib.conf.yml:8: session 'db': depends_on: cycle db -> api -> db",
        "kstlib.conf.yml:11: session 'me': depends_on: 'me' depends on itself",
        "kstlib.conf.yml:14: session 'unk': depends_on: unknown session 'dbb' (did you mean "
        "'db'?)",
        "kstlib.conf.yml:17: session 'bad': image: invalid image reference 'UPPER/x'",
        "kstlib.conf.yml:20: session 'onbad': depends_on: 'bad' is invalid",
        "kstlib.conf.yml:23: session 'chain': depends_on: 'onbad' is invalid",
    ]
    assert [result.located(p) for p in result.problems] == result.warning_lines()
    assert set(result.invalid) == {"api", "db", "me", "unk", "bad", "onbad", "chain"}
    assert result.names()[:2] == ["base", "ok"]
    assert sorted(result.names()[2:]) == sorted(result.invalid)


def test_group_named_like_a_session(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            api:
              command: x
              groups: [backend, web]
            web:
              command: x
              groups: [backend]
        """)
    assert list(result.sessions) == ["web"]
    assert one_warning(result) == (
        "kstlib.conf.yml:5: session 'api': groups: 'web' is also a session name"
    )
    assert result.groups() == {"backend": ["web"]}


# =========================================================================== unknown keys


def test_unknown_keys_suggest_and_every_problem_is_kept(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, """
        ops:
          sessions:
            api:
              comand: x
              image: busybox
              max_restart: 3
              ready:
                tpc: 80
            fine:
              command: x
        """)
    assert list(result.sessions) == ["fine"]
    assert one_warning(result) == (
        "kstlib.conf.yml:4: session 'api': comand: unknown key (did you mean 'command'?) (also "
        "invalid: image, max_restart, ready.tpc)"
    )
    assert [result.located(p) for p in result.problems] == [
        "kstlib.conf.yml:4: session 'api': comand: unknown key (did you mean 'command'?)",
        "kstlib.conf.yml:5: session 'api': image: unknown key for backend 'tmux' (it is a key "
        "of backend 'container')",
        "kstlib.conf.yml:6: session 'api': max_restart: unknown key (did you mean "
        "'max_restarts'?)",
        "kstlib.conf.yml:8: session 'api': ready.tpc: unknown key (did you mean 'tcp'?)",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("image: busybox", "image: unknown key for backend 'tmux' (it is a key of backend "
                           "'container')"),
        ("volumes: [/srv:/srv]", "volumes: unknown key for backend 'tmux' (it is a key of "
                                 "backend 'container')"),
        ("backend: container\n      image: x\n      socket_name: kt",
         "socket_name: unknown key for backend 'container' (it is a key of backend 'tmux')"),
        ("workdir: /srv", "workdir: unknown key (did you mean 'working_dir'?)"),
        ("envfile: .env", "envfile: unknown key (did you mean 'env_file'?)"),
        ("dependson: [b]", "dependson: unknown key (did you mean 'depends_on'?)"),
        ("Command: x", "Command: unknown key (did you mean 'command'?)"),
    ],
)
def test_unknown_key_words(tmp_path: Path, monkeypatch, body: str, expected: str) -> None:
    result = load(tmp_path, monkeypatch, f"ops:\n  sessions:\n    a:\n      {body}\n")
    assert one_warning(result).endswith(f"session 'a': {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ops:\n  tmux_bin: tmux\n",
         "kstlib.conf.yml:2: ops.tmux_bin: unknown key (did you mean 'tmux_binary'?)"),
        ("ops:\n  sesions: {}\n",
         "kstlib.conf.yml:2: ops.sesions: unknown key (did you mean 'sessions'?)"),
        ("ops:\n  default_backend: tmux\n  envfile: x\n",
         "kstlib.conf.yml:3: ops.envfile: unknown key (did you mean 'env_file'?)"),
        ("ops:\n  container_runtim: podman\n",
         "kstlib.conf.yml:2: ops.container_runtim: unknown key (did you mean "
         "'container_runtime'?)"),
    ],
)
def test_unknown_ops_key_is_a_config_error(tmp_path: Path, monkeypatch, text: str,
                                           expected: str) -> None:
    assert config_error(tmp_path, monkeypatch, text) == expected


@pytest.mark.parametrize("key", ["opps", "Ops", "osp", "op"])
def test_top_level_typo_of_ops_is_reported(tmp_path: Path, monkeypatch, key: str) -> None:
    result = load(tmp_path, monkeypatch, f"other: 1\n{key}:\n  sessions:\n    a: {{}}\n")
    expected = (2, f"{key}: unknown top-level key (did you mean 'ops'? kstlib reads only ops:)")
    assert result.unknown_top == (expected,)
    assert result.warnings == (expected,)
    assert result.warning_lines() == [f"kstlib.conf.yml:{expected[0]}: {expected[1]}"]
    assert dict(result.sessions) == {}


def test_top_level_keys_next_to_ops_are_other_tools_business(tmp_path: Path,
                                                           monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, "opps: 1\nops:\n  sessions:\n    a: {}\ntools: 2\n")
    assert (result.unknown_top, result.warnings) == ((), ())
    assert list(result.sessions) == ["a"]


@pytest.mark.parametrize("key", ["sessions", "default_backend", "container_runtime",
                                 "env_file", "swarm"])
def test_a_key_of_ops_at_the_top_level_is_reported(tmp_path: Path, monkeypatch, key: str) -> None:
    """``sessions:`` indented one level too little: no sessions, and a warning that says so
    (check turns it into a problem), whether ``ops:`` is there or not."""
    for text, line in ((f"ops:\n  default_backend: tmux\n{key}:\n  a: {{}}\n", 3),
                       (f"{key}:\n  a: {{}}\n", 1)):
        result = load(tmp_path, monkeypatch, text)
        expected = (line, f"{key}: a key of ops: written at the top level (indent it under "
                          "ops:; kstlib reads only ops:)")
        assert result.unknown_top == (expected,)
        assert expected in result.warnings
        assert dict(result.sessions) == {}


def test_warnings_are_printed_through_load_config(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / NAME).write_text("opps:\n  sessions: {}\n")
    monkeypatch.chdir(tmp_path)
    load_config()
    assert capsys.readouterr().err == (
        "warning: kstlib.conf.yml:1: opps: unknown top-level key (did you mean 'ops'? kstlib "
        "reads only ops:)\n"
    )


def test_check_sees_every_bad_edge_and_group_of_an_entry(tmp_path: Path, monkeypatch) -> None:
    """The warning names the first problem; the problems check lists are all of them, in the
    order written (an unknown name, itself, another unknown name, then its group)."""
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    d:\n      command: sleep 5\n"
                  "      depends_on: [zz, d, yy]\n      groups: [e]\n    e:\n"
                  "      command: sleep 5\n")
    assert list(result.sessions) == ["e"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:5: session 'd': depends_on: unknown session 'zz'"]
    assert [result.located(p) for p in result.problems] == [
        "kstlib.conf.yml:5: session 'd': depends_on: unknown session 'zz'",
        "kstlib.conf.yml:5: session 'd': depends_on: 'd' depends on itself",
        "kstlib.conf.yml:5: session 'd': depends_on: unknown session 'yy'",
        "kstlib.conf.yml:6: session 'd': groups: 'e' is also a session name",
    ]
