"""The config loader: lookup order, YAML with lines, YAML 1.1 traps, per-entry validation.

Spec: issue 2, "Config file" and "Deep defense". A bad entry is one warning line
``file:line: session 'name': field: reason`` and is skipped; the valid entries keep working.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from kstlib_tasks import backends, config_parser
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.config import OpsConfig, find_config, load_config, parse_config
from kstlib_tasks.errors import ConfigError, InvalidSessionError, ValidationError
from kstlib_tasks.manager import SessionManager

NAME = "kstlib.conf.yml"


def write(folder: Path, text: str, name: str = NAME) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> OpsConfig:
    """Write ``text`` as kstlib.conf.yml in a fresh folder, chdir there, load without printing."""
    write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    return load_config(warn=False)


def config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, monkeypatch, text)
    line = str(info.value)
    assert "\n" not in line and "Traceback" not in line
    return line


def no_config_above(folder: Path) -> bool:
    return not any((p / NAME).exists() for p in (folder, *folder.parents))


# =========================================================================== lookup order


def test_lookup_explicit_beats_env_beats_upward(tmp_path: Path, monkeypatch) -> None:
    upward = write(tmp_path / "project", "ops: {sessions: {up: {command: x}}}\n")
    deep = tmp_path / "project" / "a" / "b"
    deep.mkdir(parents=True)
    from_env = write(tmp_path / "env", "ops: {sessions: {env: {command: x}}}\n")
    explicit = write(tmp_path / "explicit", "ops: {sessions: {exp: {command: x}}}\n", "my.yml")
    monkeypatch.chdir(deep)

    assert find_config() == upward
    assert list(load_config(warn=False).sessions) == ["up"]

    monkeypatch.setenv("KSTLIB_CONFIG", str(from_env))
    assert find_config() == from_env
    assert list(load_config(warn=False).sessions) == ["env"]

    assert find_config(explicit) == explicit
    assert list(load_config(explicit, warn=False).sessions) == ["exp"]
    assert list(load_config(str(explicit), warn=False).sessions) == ["exp"]


def test_lookup_nearest_file_wins(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "ops: {sessions: {outer: {command: x}}}\n")
    inner = write(tmp_path / "sub", "ops: {sessions: {inner: {command: x}}}\n")
    (tmp_path / "sub" / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "sub" / "deeper")
    assert find_config() == inner
    assert find_config(cwd=tmp_path) == tmp_path / NAME


def test_lookup_relative_explicit_path(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "conf", "ops: {}\n", "x.yml")
    monkeypatch.chdir(tmp_path)
    assert find_config("conf/x.yml") == path


def test_explicit_missing_path_is_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path, "ops: {}\n")  # a file upward must not be used as a fallback
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nope" / "missing.yml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, warn=False)
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)
    assert info.value.exit_code != 0


def test_env_missing_path_is_error_naming_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KSTLIB_CONFIG", str(tmp_path / "gone.yml"))
    with pytest.raises(ConfigError) as info:
        find_config()
    assert str(tmp_path / "gone.yml") in str(info.value)
    assert "KSTLIB_CONFIG" in str(info.value)


def test_explicit_directory_is_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        find_config(tmp_path)


def test_nothing_found_is_empty_config(tmp_path: Path, monkeypatch) -> None:
    assert no_config_above(tmp_path), "a kstlib.conf.yml above the test folder spoils this test"
    monkeypatch.chdir(tmp_path)
    assert find_config() is None
    result = load_config()
    assert result.path is None
    assert dict(result.sessions) == {}
    assert result.warning_lines() == []
    assert result.spec("anything") is None


def test_empty_env_var_is_ignored(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "ops: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KSTLIB_CONFIG", "")
    assert find_config() == path


# =========================================================================== paths


def test_relative_paths_resolve_against_config_folder(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    write(
        project,
        """
        ops:
          sessions:
            web:
              backend: container
              image: busybox
              command: python -m http.server
              working_dir: site
              volumes:
                - ./data:/data
                - sub/dir:/sub:ro
                - named:/named
                - /abs:/abs
            home:
              command: x
              working_dir: ~/somewhere
            here:
              command: x
              working_dir: .
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = load_config(project / NAME, warn=False)
    web = result.spec("web")
    assert web is not None
    assert web.working_dir == str(project / "site")
    assert web.options.volumes == (
        f"{project}/data:/data",
        f"{project}/sub/dir:/sub:ro",
        "named:/named",
        "/abs:/abs",
    )
    assert result.sessions["home"].working_dir == os.path.expanduser("~/somewhere")
    assert result.sessions["here"].working_dir == str(project)
    assert result.base_dir == project


# =========================================================================== valid entries


def test_valid_sessions_load_in_file_order(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          default_backend: container
          tmux_binary: /usr/bin/tmux
          container_runtime: podman
          sessions:
            zeta:
              backend: tmux
              command: "python -m http.server 8000"
              env: {PORT: 8080, DEBUG: 0, RATIO: 1.5, NAME: astro, EMPTY: ""}
              socket_name: kt
              description: A web server
            alpha:
              image: localhost/busybox:latest
              command: [sleep, "60"]
              ports: [8080, "8081:81", "127.0.0.1:9000:90/udp"]
              runtime: docker
              init: false
        """,
    )
    assert list(result.sessions) == ["zeta", "alpha"]
    assert result.warning_lines() == []
    assert result.default_backend == "container"
    # backend ops keys are settings, read by the backend that owns them
    assert result.setting("tmux_binary") == "/usr/bin/tmux"
    assert result.setting("container_runtime") == "podman"
    zeta, alpha = result.sessions["zeta"], result.sessions["alpha"]
    assert zeta.backend == "tmux"
    assert zeta.command == ("python", "-m", "http.server", "8000")
    assert zeta.command_text == "python -m http.server 8000"
    assert dict(zeta.env) == {
        "PORT": "8080", "DEBUG": "0", "RATIO": "1.5", "NAME": "astro", "EMPTY": ""
    }
    assert zeta.options == TmuxOptions(socket_name="kt")
    assert zeta.image is None
    assert zeta.description == "A web server"
    assert zeta.source == "6"
    assert result.source(zeta) == "kstlib.conf.yml:6"
    assert alpha.backend == "container"  # the ops default
    assert alpha.command == ("sleep", "60")
    assert alpha.command_text == "sleep 60"
    assert alpha.options == ContainerOptions(
        image_ref="localhost/busybox:latest",
        ports=("8080", "8081:81", "127.0.0.1:9000:90/udp"),
        runtime="docker",
        init=False,
    )
    assert alpha.image == "localhost/busybox:latest"
    assert result.source(alpha) == "kstlib.conf.yml:12"


def test_defaults_when_ops_is_minimal(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    a:\n      command: x\n")
    spec = result.sessions["a"]
    assert (spec.backend, spec.options) == ("tmux", TmuxOptions())
    assert (result.setting("tmux_binary"), result.setting("container_runtime")) == ("tmux", None)
    assert (spec.restart, spec.max_restarts, spec.ready, spec.depends_on, spec.groups) == (
        "no", 5, None, (), ()
    )
    # a tmux session runs in the config's folder unless told otherwise
    assert spec.working_dir == str(tmp_path.resolve())


def test_container_session_keeps_the_image_workdir(tmp_path: Path, monkeypatch) -> None:
    body = "ops:\n  sessions:\n    c:\n      backend: container\n      image: busybox\n"
    spec = load(tmp_path, monkeypatch, body).sessions["c"]
    assert spec.working_dir is None
    assert spec.options == ContainerOptions(image_ref="busybox")  # init on by default


def test_null_session_body_is_empty_tmux_session(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    shell:\n")
    assert result.sessions["shell"].command == ()
    assert result.warning_lines() == []


# =========================================================================== warnings with lines

_MIXED = """
ops:
  sessions:
    good-one:
      command: sleep 60
    astro-dev:
      command: echo ok
      env:
        GOOD: "1"
        LD_PRELOAD: /evil.so
    astro-prod:
      backend: container
      image: UPPER/x
      command: sleep 60
    bad_name:
      command: x
    inject:
      command: "echo a; rm -rf /"
    ports-bad:
      backend: container
      image: busybox
      ports:
        - 8080
        - "70000"
    vol-bad:
      backend: container
      image: busybox
      volumes:
        - /ok:/ok
        - ../etc:/etc
    no-image:
      backend: container
      command: x
    good-two:
      command: sleep 1
"""


def test_warnings_name_file_line_session_field_reason(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, _MIXED)
    assert list(result.sessions) == ["good-one", "good-two"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:9: session 'astro-dev': env.LD_PRELOAD: LD_PRELOAD is refused: it "
        "makes programs load foreign code",
        "kstlib.conf.yml:12: session 'astro-prod': image: invalid image reference 'UPPER/x'",
        "kstlib.conf.yml:14: session 'bad_name': name: invalid session name 'bad_name': start "
        "with a letter, then letters, digits or '-' (use '-', invoke turns '_' into '-')",
        "kstlib.conf.yml:17: session 'inject': command: contains shell control syntax ';' (put "
        "it in a script and run that)",
        "kstlib.conf.yml:23: session 'ports-bad': ports[1]: invalid port '70000': ports are "
        "numbers 1-65535",
        "kstlib.conf.yml:29: session 'vol-bad': volumes[1]: volume '../etc:/etc' contains '..'",
        "kstlib.conf.yml:30: session 'no-image': image: required for backend 'container' (set "
        "image: in the config or pass --image)",
    ]
    assert set(result.invalid) == {
        "astro-dev", "astro-prod", "bad_name", "inject", "ports-bad", "vol-bad", "no-image"
    }


def test_invalid_entry_spec_raises_with_reason(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, _MIXED)
    with pytest.raises(InvalidSessionError) as info:
        result.spec("astro-prod")
    text = str(info.value)
    assert "astro-prod" in text
    assert "invalid image reference 'UPPER/x'" in text
    assert "kstlib.conf.yml:12" in text
    assert info.value.exit_code != 0
    assert result.spec("good-one") is result.sessions["good-one"]
    assert result.spec("not-defined") is None


def test_load_config_prints_warnings_to_stderr(tmp_path: Path, monkeypatch, capsys) -> None:
    write(tmp_path, _MIXED)
    monkeypatch.chdir(tmp_path)
    result = load_config()
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == len(result.warning_lines()) == 7
    assert lines[1] == (
        "warning: kstlib.conf.yml:12: session 'astro-prod': image: invalid image reference "
        "'UPPER/x'"
    )


def test_load_config_warn_false_prints_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    write(tmp_path, _MIXED)
    monkeypatch.chdir(tmp_path)
    result = load_config(warn=False)
    assert capsys.readouterr() == ("", "")
    assert len(result.warning_lines()) == 7


def test_load_config_warn_callable(tmp_path: Path, monkeypatch, capsys) -> None:
    write(tmp_path, _MIXED)
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    load_config(warn=seen.append)
    assert len(seen) == 7
    assert capsys.readouterr() == ("", "")


def test_warning_path_shown_relative_to_cwd(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "proj", "ops:\n  sessions:\n    a:\n      image: UPPER/x\n")
    monkeypatch.chdir(tmp_path)
    result = load_config("proj/kstlib.conf.yml", warn=False)
    assert result.warning_lines()[0].startswith("proj/kstlib.conf.yml:4: session 'a': image: ")


def test_several_problems_in_one_entry(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          sessions:
            multi:
              backend: container
              command: "a | b"
              image: UPPER/x
              ports: ["0"]
        """,
    )
    (warning,) = result.warning_lines()
    assert warning.startswith("kstlib.conf.yml:5: session 'multi': command: contains shell")
    assert "(also invalid: image, ports[0])" in warning
    # check lists every problem of the entry, each with its own line
    assert [result.located(p) for p in result.problems] == [
        "kstlib.conf.yml:5: session 'multi': command: contains shell control syntax '|' (put it "
        "in a script and run that)",
        "kstlib.conf.yml:6: session 'multi': image: invalid image reference 'UPPER/x'",
        "kstlib.conf.yml:7: session 'multi': ports[0]: invalid port '0': ports are numbers "
        "1-65535",
    ]


def test_unknown_key_in_session(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n    a:\n      comand: x\n")
    assert result.warning_lines() == [
        "kstlib.conf.yml:4: session 'a': comand: unknown key (did you mean 'command'?)",
    ]


# =========================================================================== YAML traps


def test_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path: Path, monkeypatch) -> None:
    text = config_error(
        tmp_path, monkeypatch, "ops:\n  sessions:\n    a: {command: x\n    b: 1\n"
    )
    assert text.startswith("kstlib.conf.yml:4:")
    assert "YAML syntax error" in text
    line, column = text.split(":")[1:3]
    assert line.isdigit() and column.isdigit()


def test_yaml_tab_indent_error(tmp_path: Path, monkeypatch) -> None:
    text = config_error(tmp_path, monkeypatch, "ops:\n\tsessions: {}\n")
    assert text.startswith("kstlib.conf.yml:2:1: YAML syntax error")


def test_yaml_multiple_documents_refused(tmp_path: Path, monkeypatch) -> None:
    text = config_error(tmp_path, monkeypatch, "ops: {}\n---\nops: {}\n")
    assert text.startswith("kstlib.conf.yml:2:")


def test_duplicate_key_inside_session(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          sessions:
            a:
              command: echo first
              command: echo second
            b:
              command: x
        """,
    )
    assert list(result.sessions) == ["b"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:5: session 'a': command: duplicate key (first at line 4)",
    ]


def test_duplicate_env_key(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path, monkeypatch, "ops:\n  sessions:\n    a:\n      env:\n        A: x\n        A: y\n"
    )
    assert result.warning_lines() == [
        "kstlib.conf.yml:6: session 'a': env.A: duplicate key (first at line 5)",
    ]


def test_duplicate_session_name(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          sessions:
            web:
              command: echo one
            other:
              command: x
            web:
              command: echo two
        """,
    )
    assert list(result.sessions) == ["other"]
    assert result.warning_lines() == [
        "kstlib.conf.yml:7: session 'web': defined twice (also at line 3): rename one",
    ]
    with pytest.raises(InvalidSessionError, match="defined twice"):
        result.spec("web")


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ("ports: [22:22]", 4, "ports[0]", "'22:22' is read as a base-60 number by YAML: quote it"),
        ("ports:\n        - 1:30", 5, "ports[0]", "base-60"),
        ("env: {T: 1:30:00}", 4, "env.T", "base-60"),
        ("env: {DEBUG: yes}", 4, "env.DEBUG", "'yes' is read as a boolean by YAML: quote it"),
        ("env: {DEBUG: no}", 4, "env.DEBUG", "'no' is read as a boolean by YAML: quote it"),
        ("env: {DEBUG: on}", 4, "env.DEBUG", "'on' is read as a boolean by YAML: quote it"),
        ("env: {DEBUG: Off}", 4, "env.DEBUG", "'Off' is read as a boolean by YAML: quote it"),
        ("env: {DEBUG: true}", 4, "env.DEBUG", "value true is not a string: quote it"),
        ("env: {DEBUG: null}", 4, "env.DEBUG", "value null is not a string: quote it"),
        ("env: {DEBUG: ~}", 4, "env.DEBUG", "value null is not a string: quote it"),
        ("env: {DEBUG: }", 4, "env.DEBUG", "value null is not a string: quote it"),
        ("env: {MODE: 0755}", 4, "env.MODE", "'0755' is read as an octal number by YAML: quote it"),
        ("init: yes", 4, "init", "'yes' is read as a boolean by YAML: quote it"),
        ("env: {yes: x}", 4, "env", "'yes' is read as a boolean by YAML: quote it"),
        ("command: !!binary aGVsbG8=", 4, "command", "unsupported YAML tag"),
    ],
)
def test_yaml_11_traps_refused(
    tmp_path: Path, monkeypatch, body: str, line: int, field: str, reason: str
) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        f"ops:\n  sessions:\n    trap:\n      {body}\n    fine:\n      command: x\n",
    )
    assert list(result.sessions) == ["fine"]
    (warning,) = result.warning_lines()
    assert warning.startswith(f"kstlib.conf.yml:{line}: session 'trap': {field}")
    assert reason in warning


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('ports: ["22:22"]', ("22:22",)),
        ("ports: [8080:80]", ("8080:80",)),  # not base-60 (80 > 59): a plain string already
    ],
)
def test_quoted_values_pass(tmp_path: Path, monkeypatch, body: str, expected: tuple) -> None:
    result = load(
        tmp_path, monkeypatch,
        f"ops:\n  sessions:\n    a:\n      {body}\n      backend: container\n      image: x\n",
    )
    assert result.warning_lines() == []
    assert result.sessions["a"].options.ports == expected


def test_quoted_env_values_pass(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          sessions:
            a:
              env: {A: "yes", B: "0755", C: "1:30", D: "true", E: 0x1F, F: 1_000, G: 2001-12-14}
        """,
    )
    assert result.warning_lines() == []
    assert dict(result.sessions["a"].env) == {
        "A": "yes", "B": "0755", "C": "1:30", "D": "true", "E": "0x1F", "F": "1_000",
        "G": "2001-12-14",
    }


def test_merge_keys_refused(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        base: &base
          command: x
        ops:
          sessions:
            a:
              <<: *base
              env: {A: "1"}
        """,
    )
    (warning,) = result.warning_lines()
    assert warning.startswith("kstlib.conf.yml:6: session 'a': ")
    assert "merge keys" in warning


# =========================================================================== wrong types

_CT = "\n      backend: container"  # the keys of the container backend need its entries


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ("\n      - command\n      - x", 4, "entry", "expected a mapping of settings"),
        (" just-a-string", 3, "entry", "expected a mapping of settings"),
        (" 42", 3, "entry", "expected a mapping of settings"),
        ("\n      command: {a: b}", 4, "command", "expected a command string, got a mapping"),
        ("\n      command: [a, [b]]", 4, "command", "expected a string for each command word"),
        ("\n      env: [A, B]", 4, "env", "expected NAME=value"),
        ("\n      env: just-text", 4, "env", "expected a mapping of NAME: value"),
        ("\n      env: {A: [1, 2]}", 4, "env.A", "expected a string value, got a list"),
        ("\n      env: {A: {b: c}}", 4, "env.A", "expected a string value, got a mapping"),
        (_CT + "\n      volumes: {a: b}", 5, "volumes",
         "expected a list of volumes, got a mapping"),
        (_CT + "\n      volumes: [[a]]", 5, "volumes[0]", "expected a volume"),
        (_CT + "\n      ports: {a: b}", 5, "ports", "expected a list of ports"),
        (_CT + "\n      image: [a]", 5, "image", "expected an image reference, got a list"),
        ("\n      working_dir: {a: b}", 4, "working_dir", "expected a directory path"),
        ("\n      backend: [tmux]", 4, "backend", "expected 'tmux', 'container' or 'swarm'"),
        ("\n      description: [a]", 4, "description", "expected a one-line description"),
        (_CT + "\n      init: 1", 5, "init", "expected true or false"),
        ("\n      socket_name: {a: b}", 4, "socket_name", "expected a tmux socket name"),
    ],
)
def test_wrong_types_are_entry_errors(
    tmp_path: Path, monkeypatch, body: str, line: int, field: str, reason: str
) -> None:
    result = load(
        tmp_path, monkeypatch, f"ops:\n  sessions:\n    wrong:{body}\n    ok:\n      command: x\n"
    )
    assert list(result.sessions) == ["ok"]
    (warning,) = result.warning_lines()
    assert warning.startswith(f"kstlib.conf.yml:{line}: session 'wrong': {field}: ")
    assert reason in warning
    with pytest.raises(InvalidSessionError):
        result.spec("wrong")


@pytest.mark.parametrize(
    ("key", "shown"),
    [("'1abc'", "1abc"), ("'a b'", "a b"), ("[a, b]", None), ("'" + "x" * 65 + "'", "x" * 65)],
)
def test_bad_session_keys(tmp_path: Path, monkeypatch, key: str, shown: str | None) -> None:
    result = load(
        tmp_path, monkeypatch, f"ops:\n  sessions:\n    ? {key}\n    : {{command: x}}\n"
        "    ok: {command: x}\n",
    )
    assert list(result.sessions) == ["ok"]
    (warning,) = result.warning_lines()
    assert warning.startswith("kstlib.conf.yml:3: session ")
    assert ": name: " in warning
    if shown is not None:
        assert f"session '{shown}'" in warning


@pytest.mark.parametrize(
    "key",
    [
        '"astro\\n"',
        '"evil\\nkstlib.conf.yml:1: session \'x\': fake"',
        '"\\e[2Jwipe"',
        '"a\\u202eb"',
    ],
)
def test_hostile_session_key_warning_stays_one_line(
    tmp_path: Path, monkeypatch, capsys, key: str
) -> None:
    write(tmp_path, f"ops:\n  sessions:\n    {key}: {{command: x}}\n    ok: {{command: x}}\n")
    monkeypatch.chdir(tmp_path)
    result = load_config()
    assert list(result.sessions) == ["ok"]
    (warning,) = result.warning_lines()
    assert warning.isprintable()
    assert warning.startswith("kstlib.conf.yml:3: session ")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err


def test_hostile_env_key_warning_stays_one_line(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, 'ops:\n  sessions:\n    a:\n      env: {"A\\nB": x}\n')
    (warning,) = result.warning_lines()
    assert warning.isprintable()
    assert warning.startswith("kstlib.conf.yml:4: session 'a': env.")


def test_deeply_nested_value_is_entry_error(tmp_path: Path, monkeypatch) -> None:
    nested = "[" * 400 + "]" * 400
    result = load(
        tmp_path,
        monkeypatch,
        f"ops:\n  sessions:\n    a:\n      env: {nested}\n    ok:\n      command: x\n",
    )
    assert list(result.sessions) == ["ok"]
    (warning,) = result.warning_lines()
    assert warning.startswith("kstlib.conf.yml:4: session 'a': env")


def test_alias_bomb_is_refused_quickly(tmp_path: Path, monkeypatch) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 10**9 leaves once expanded
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\nops:\n  sessions:\n    a:\n      volumes: *a8\n" + (
        "    ok:\n      command: x\n"
    )
    result = load(tmp_path, monkeypatch, text)
    assert list(result.sessions) == ["ok"]
    assert result.warning_lines()[0].startswith("kstlib.conf.yml:")
    assert "session 'a'" in result.warning_lines()[0]


# =========================================================================== file shapes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "other: 1\n",
        "ops:\n",
        "ops: null\n",
        "ops: ~\n",
        "ops:\n  sessions:\n",
        "ops:\n  sessions: null\n",
        "ops:\n  sessions: {}\n",
        "ops: {}\n",
    ],
)
def test_empty_shapes_give_no_sessions(tmp_path: Path, monkeypatch, text: str) -> None:
    result = load(tmp_path, monkeypatch, text)
    assert dict(result.sessions) == {}
    assert result.warning_lines() == []
    assert result.path == tmp_path / NAME
    assert result.default_backend == "tmux"


@pytest.mark.parametrize(
    ("text", "start", "words"),
    [
        ("- a\n- b\n", "kstlib.conf.yml:1:", "expected a mapping with an 'ops:' key"),
        ("just text\n", "kstlib.conf.yml:1:", "expected a mapping"),
        ("ops: [a]\n", "kstlib.conf.yml:1:", "ops: expected a mapping"),
        ("ops: text\n", "kstlib.conf.yml:1:", "ops: expected a mapping"),
        ("ops:\n  sessions: [a, b]\n", "kstlib.conf.yml:2:", "ops.sessions: expected a mapping"),
        ("ops:\n  sessions: text\n", "kstlib.conf.yml:2:", "ops.sessions: expected a mapping"),
        (
            "ops:\n  tmux_binary: tmux\n  default_backend: vm\n",
            "kstlib.conf.yml:3: ops.default_backend: ",
            "unknown backend 'vm' (expected 'tmux', 'container' or 'swarm')",
        ),
        (
            "ops:\n\n  default_backend: yes\n",
            "kstlib.conf.yml:3: ops.default_backend: ",
            "'yes' is read as a boolean by YAML: quote it",
        ),
        (
            "ops:\n  default_backend: [tmux]\n",
            "kstlib.conf.yml:2: ops.default_backend: ",
            "expected 'tmux', 'container' or 'swarm'",
        ),
        (
            "ops:\n  container_runtime: lxc\n",
            "kstlib.conf.yml:2: ops.container_runtime: ",
            "unknown container runtime 'lxc'",
        ),
        (
            "ops:\n  tmux_binary: tmux; id\n",
            "kstlib.conf.yml:2: ops.tmux_binary: ",
            "invalid tmux binary",
        ),
        (
            "ops:\n  sesions: {}\n",
            "kstlib.conf.yml:2: ops.sesions: ",
            "unknown key",
        ),
    ],
)
def test_bad_ops_section_is_config_error(
    tmp_path: Path, monkeypatch, text: str, start: str, words: str
) -> None:
    line = config_error(tmp_path, monkeypatch, text)
    assert line.startswith(start)
    assert words in line


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("ops:\n  sessions:\n    a: {command: x}\n  sessions:\n    b: {command: y}\n", 4),
        ("ops:\n  default_backend: container\n  default_backend: tmux\n", 3),
        ("ops:\n  sessions: {a: {command: x}}\nops:\n  sessions: {b: {command: y}}\n", 3),
    ],
)
def test_duplicate_keys_at_ops_level_refused(
    tmp_path: Path, monkeypatch, text: str, line: int
) -> None:
    error = config_error(tmp_path, monkeypatch, text)
    assert error.startswith(f"kstlib.conf.yml:{line}:")
    assert "duplicate key" in error


def test_unreadable_file_is_config_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / NAME).write_bytes(b"ops:\n  sessions:\n    a: {command: \xff\xfe}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(warn=False)


# =========================================================================== session limit


def test_more_than_50_sessions_keeps_first_50_in_order(tmp_path: Path, monkeypatch) -> None:
    names = [f"s{i:02d}" for i in range(53)]
    body = "".join(f"    {n}:\n      command: sleep {i}\n" for i, n in enumerate(names))
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n" + body)
    assert list(result.sessions) == names[:50]
    (warning,) = result.warning_lines()
    assert warning == (
        f"kstlib.conf.yml:{3 + 2 * 50}: more than 50 sessions: dropped 's50', 's51', 's52'"
    )
    assert result.spec("s52") is None


def test_exactly_50_sessions_no_warning(tmp_path: Path, monkeypatch) -> None:
    body = "".join(f"    s{i}: {{command: x}}\n" for i in range(50))
    result = load(tmp_path, monkeypatch, "ops:\n  sessions:\n" + body)
    assert len(result.sessions) == 50
    assert result.warning_lines() == []


# =========================================================================== OpsConfig


def test_adhoc_spec_uses_defaults(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        "ops:\n  default_backend: container\n  tmux_binary: /opt/tmux\n"
        "  container_runtime: docker\n",
    )
    # ad-hoc specs (a name the config does not define) are built by the session manager
    spec = SessionManager(result).adhoc_spec("scratch")
    assert (spec.name, spec.backend, spec.options) == ("scratch", "container", ContainerOptions())
    assert backends.get("container").configured_scope(spec, result) == "docker"
    tmux = SessionManager(result).adhoc_spec("scratch", backend="tmux")
    assert (tmux.backend, tmux.options) == ("tmux", TmuxOptions())
    assert tmux.working_dir == str(tmp_path.resolve())
    assert SessionManager(OpsConfig()).adhoc_spec("x").backend == "tmux"


@pytest.mark.parametrize(
    ("name", "backend", "expected"),
    [
        ("bad_name", None, "name: invalid session name 'bad_name'"),
        ("a\nb", None, "name: invalid session name 'a\\nb'"),
        ("ok", "vm", "session 'ok': backend: unknown backend 'vm'"),
    ],
)
def test_adhoc_spec_validates(name: str, backend: str | None, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        SessionManager(OpsConfig()).adhoc_spec(name, backend=backend)
    assert str(info.value).startswith(expected)


def test_opsconfig_is_read_only(tmp_path: Path, monkeypatch) -> None:
    result = load(tmp_path, monkeypatch, _MIXED)
    with pytest.raises(TypeError):
        result.sessions["x"] = result.sessions["good-one"]  # type: ignore[index]
    with pytest.raises(TypeError):
        result.invalid["x"] = "y"  # type: ignore[index]


def test_parse_config_direct_uses_path_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "k.yml"
    result = parse_config("ops:\n  sessions:\n    a: {working_dir: w}\n", path)
    assert result.base_dir == (tmp_path / "conf").resolve()
    assert result.sessions["a"].working_dir == str((tmp_path / "conf" / "w").resolve())


def test_loader_is_safe(tmp_path: Path, monkeypatch) -> None:
    # A python tag must never construct an object (composed, not loaded, with the safe parser).
    result = load(
        tmp_path,
        monkeypatch,
        "ops:\n  sessions:\n    a:\n      command: !!python/object/apply:os.system [id]\n",
    )
    assert list(result.sessions) == []
    assert "session 'a': command" in result.warning_lines()[0]
    assert config_parser._Loader.__name__ in ("CSafeLoader", "SafeLoader")


def test_located_names_the_file_only_when_there_is_one(tmp_path: Path, monkeypatch) -> None:
    assert OpsConfig().located((3, "session 'a': x: y")) == "session 'a': x: y"
    config = OpsConfig(path=tmp_path / "p" / NAME, warnings=((3, "w"),))
    monkeypatch.chdir(tmp_path)
    assert config.warning_lines() == [f"p/{NAME}:3: w"]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert config.warning_lines() == [f"{tmp_path}/p/{NAME}:3: w"]  # never ../p/...


def test_problems_lists_the_later_stages_too(tmp_path: Path, monkeypatch) -> None:
    result = load(
        tmp_path,
        monkeypatch,
        """
        ops:
          sessions:
            a:
              backend: container
              ports: ["0"]
              restart: on-failure
              max_restarts: 0
              volumes: [/etc:/etc]
        """,
    )
    assert {text.split(": ")[1] for _, text in result.problems} == {
        "ports[0]", "max_restarts", "volumes[0]", "image"
    }
