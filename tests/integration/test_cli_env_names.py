"""The environment a session's command sees, names people mistype, and ``$VAR`` in ready
probes, end to end through the INSTALLED ``kstlib`` and ``inv``, on tmux, podman and docker.

What the command sees is printed by the command itself (``@tool@ env NAME...``), never taken
from kstlib's report. ``$VAR`` in commands is already covered by test_cli_fronts.py; here it is
the probes (exec and http), and an unset variable in a container's command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import KSTLIB, retry_until
from tests.where import Where

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")

SLOW = 90


def seen_env(project: Project, name: str, keys: list[str]) -> dict[str, str | None]:
    """What the command of ``name`` printed for each key (``env`` step): value or None."""
    def printed() -> dict[str, str | None] | None:
        found: dict[str, str | None] = {}
        for line in project.logs(name).splitlines():
            if line.startswith("env: "):
                rest = line[5:]
                if rest.endswith(" unset") and "=" not in rest:
                    found[rest[:-6]] = None
                else:
                    key, _, value = rest.partition("=")
                    found[key] = value
        return found if set(keys) <= set(found) else None

    return retry_until(printed, timeout=SLOW, interval=0.2)


def line_of(project: Project, text: str, file: str = "kstlib.conf.yml") -> int:
    """The line number of the first line of ``file`` containing ``text``."""
    for number, line in enumerate((project.root / file).read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {file}")


def caller(**values: str) -> dict[str, str]:
    """This process's environment with ``values`` set (and every other KT_* removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KT_")}
    env.update(values)
    return env


# --------------------------------------------------------------------------- environment


@pytest.mark.tmux
def test_the_callers_environment_reaches_a_tmux_session_whatever_started_the_server(
        project: Project, tmux_available: None) -> None:
    """The first start (kstlib, with KT_FIRST) starts the tmux server; the second (inv, as if
    typed in a pane of that server: TMUX and TMUX_PANE set) has KT_SECOND and not KT_FIRST,
    and none of tmux's own variables reach the command."""
    project.write("ops:\n  sessions:\n"
                  "    @first@:\n      command: \"@tool@ forever\"\n"
                  "    @second@:\n      command: \"@tool@ env KT_FIRST KT_SECOND TMUX TMUX_PANE"
                  " + forever\"\n")
    first, second = project.name("first"), project.name("second")
    project.kstlib("ops", "start", first, env=caller(KT_FIRST="from-first")).ok()
    server = Path(os.environ["TMUX_TMPDIR"]) / f"tmux-{os.getuid()}" / "default"
    inside = caller(KT_SECOND="from-second", TMUX=f"{server},4242,0", TMUX_PANE="%4242")
    project.inv(f"{second}.start", env=inside).ok()
    assert seen_env(project, second, ["KT_FIRST", "KT_SECOND", "TMUX", "TMUX_PANE"]) == {
        "KT_FIRST": None, "KT_SECOND": "from-second", "TMUX": None, "TMUX_PANE": None}
    project.kstlib("ops", "down").ok()


@pytest.mark.containers
def test_a_container_gets_only_the_config_and_the_command_line_env(project: Project,
                                                                   runtime: str) -> None:
    where = Where(runtime)
    project.write(where.config(where.entry(
        "box", "@tool@ env KT_CALLER KT_CONF KT_CLI PATH + forever", "env:\n  KT_CONF: conf")))
    box = project.name("box")
    mine = caller(KT_CALLER="mine", PATH=f"/kt-caller-only:{os.environ['PATH']}")
    project.kstlib("ops", "start", box, "-e", "KT_CLI=cli", env=mine).ok()
    seen = seen_env(project, box, ["KT_CALLER", "KT_CONF", "KT_CLI", "PATH"])
    assert (seen["KT_CALLER"], seen["KT_CONF"], seen["KT_CLI"]) == (None, "conf", "cli")
    assert "/kt-caller-only" not in str(seen["PATH"])  # the image's PATH, not the caller's
    project.kstlib("ops", "stop", box).ok()


def test_env_precedence(project: Project, where: Where) -> None:
    """caller (tmux only) < ops.env_file < session env_file < env < --env. ``KT_ALL`` is set
    at every level; ``KT_UPn`` at the levels 1..n only, so the value seen is level n's:
    each step of the order is proven on its own."""
    levels = ["caller", "ops-file", "session-file", "env", "cli"]

    def upto(level: int) -> dict[str, str]:
        values = {f"KT_UP{n}": levels[level] for n in range(level + 1, 6)}
        values["KT_ALL"] = levels[level]
        return values

    def dotenv(level: int) -> str:
        return "".join(f"{k}={v}\n" for k, v in upto(level).items())

    (project.root / "ops.env").write_text(dotenv(1))
    (project.root / "session.env").write_text(dotenv(2))
    env_yaml = "env:\n" + "".join(f"  {k}: {v}\n" for k, v in upto(3).items())
    keys = ["KT_ALL", *(f"KT_UP{n}" for n in range(1, 6))]
    project.write(where.config(
        where.entry("prec", f"@tool@ env {' '.join(keys)} + forever",
                    f"env_file: session.env\n{env_yaml}"),
        ops="env_file: ops.env"))
    prec = project.name("prec")
    flags = [w for k, v in upto(4).items() for w in ("-e", f"{k}={v}")]
    project.kstlib("ops", "start", prec, *flags, env=caller(**upto(0))).ok()
    expected: dict[str, str | None] = {f"KT_UP{n}": levels[n - 1] for n in range(1, 6)}
    expected["KT_ALL"] = "cli"
    if where.container:
        expected["KT_UP1"] = None  # a container never gets the caller's environment
    assert seen_env(project, prec, keys) == expected
    project.kstlib("ops", "stop", prec).ok()


def test_a_refused_key_in_an_env_file_skips_that_session(project: Project,
                                                         where: Where) -> None:
    (project.root / "bad.env").write_text("# secrets\nKT_OK=1\nLD_PRELOAD=/tmp/x.so\n")
    project.write(where.config(where.entry("good", "@tool@ forever"),
                               where.entry("bad", "@tool@ forever", "env_file: bad.env")))
    good, bad = project.name("good"), project.name("bad")
    problem = (f"kstlib.conf.yml:{line_of(project, 'env_file: bad.env')}: session '{bad}': "
               "env_file: bad.env:3: LD_PRELOAD: LD_PRELOAD is refused: it makes programs "
               "load foreign code")
    listed = project.kstlib("ops", "list", "--json").ok()
    assert [line for line in listed.err.splitlines() if bad in line] == [f"warning: {problem}"]
    assert bad not in [row["name"] for row in json.loads(listed.out)]
    for front in FRONTS:
        refused = project.verb(front, "start", [bad], own_task=False)
        assert refused.code == 2
        assert refused.one_line_error() == (f"{problem} (invalid entries are skipped: fix it "
                                            "in the config)")
    assert "No idea what" in project.inv(f"{bad}.start").err  # no tasks for it
    assert bad not in where.raw_names()
    project.kstlib("ops", "start", good).ok()  # the other entries keep working
    project.kstlib("ops", "stop", good).ok()


def test_a_missing_env_file_is_an_error_of_that_session(project: Project,
                                                        where: Where) -> None:
    project.write(where.config(where.entry("good", "@tool@ forever"),
                               where.entry("lost", "@tool@ forever", "env_file: [lost.env]")))
    good, lost = project.name("good"), project.name("lost")
    problem = (f"kstlib.conf.yml:{line_of(project, 'env_file: [lost.env]')}: session "
               f"'{lost}': env_file: {project.root}/lost.env: env file not found")
    refused = project.kstlib("ops", "start", lost)
    assert refused.code == 2
    assert refused.one_line_error().startswith(problem)
    assert f"warning: {problem}" in refused.err
    checked = project.kstlib("ops", "check")
    assert checked.code == 2 and problem in checked.out
    project.kstlib("ops", "start", good).ok()
    project.kstlib("ops", "stop", good).ok()


# --------------------------------------------------------------------------- names


def test_a_mistyped_session_name_gets_the_closest_defined_or_live_name(
        project: Project, where: Where) -> None:
    """Every verb taking a name, on both front ends: a typo of a defined session suggests it;
    a typo of a live session that is not in the config (made with the raw tool) suggests
    that one, also when a defined name is close too."""
    project.write(where.config(where.entry("webapp", "@tool@ forever")))
    webapp = project.name("webapp")
    live = project.name("weblive")
    where.raw_start(live, project.root, "sleep", "600")
    defined_typo, live_typo = webapp.replace("webapp", "wepapp"), live.replace("live", "lvie")
    verbs = ("status", "start", "stop", "restart", "logs", "attach", "wait", "up", "down")
    for front in FRONTS:
        for verb in verbs:
            done = project.verb(front, verb, [defined_typo], own_task=False)
            assert done.code == 1, (front, verb, done.err)
            assert f"'{defined_typo}'" in done.err, (front, verb, done.err)
            assert f"(did you mean '{webapp}'?)" in done.err, (front, verb, done.err)
            assert "Traceback" not in done.err
        for verb in ("status", "stop", "restart", "logs", "attach", "wait"):
            done = project.verb(front, verb, [live_typo], own_task=False)
            assert done.code == 1, (front, verb, done.err)
            assert f"'{live_typo}' (did you mean '{live}'?)" in done.err, (front, verb, done.err)
    assert project.state(live) == "running"  # a typo touched nothing
    project.kstlib("ops", "stop", live, "--force").ok()


def test_an_unknown_key_gets_the_closest_valid_key(project: Project, where: Where) -> None:
    typos = {"comand": "command", "max_restart": "max_restarts", "evn": "env"}
    if where.container:
        typos.update(imgae="image", volums="volumes")
    entries = [where.entry("ok", "@tool@ forever")]
    for typo in typos:
        entries.append(where.entry(typo.replace("_", "-"), "@tool@ forever", f"{typo}: x"))
    project.write(where.config(*entries))
    listed = project.kstlib("ops", "list")
    assert listed.code == 0
    for typo, meant in typos.items():
        name = project.name(typo.replace("_", "-"))
        line = (f"kstlib.conf.yml:{line_of(project, f'{typo}: x')}: session '{name}': {typo}: "
                f"unknown key (did you mean '{meant}'?)")
        assert f"warning: {line}" in listed.err.splitlines(), listed.err
        refused = project.inv("ops.start", name)
        assert refused.code == 2 and refused.one_line_error().startswith(line)
    checked = project.kstlib("ops", "check")
    assert checked.code == 2
    assert checked.out.splitlines()[-1] == f"check: {len(typos)} problem(s), 1 valid session(s)"


def test_an_unknown_key_under_ops_is_an_unusable_file(project: Project, where: Where) -> None:
    typo, meant, value = (("container_runtme", "container_runtime", where.name)
                          if where.container else ("default_backnd", "default_backend", "tmux"))
    project.write(where.config(where.entry("ok", "@tool@ forever"), ops=f"{typo}: {value}"))
    ok = project.name("ok")
    line = f"kstlib.conf.yml:2: ops.{typo}: unknown key (did you mean '{meant}'?)"
    for front in FRONTS:
        for verb, names in (("list", []), ("start", [ok]), ("up", []), ("check", [])):
            done = project.verb(front, verb, names, own_task=False)
            assert done.code == 2, (front, verb, done.err)
            if verb == "check":
                assert line in done.out
            else:
                assert done.one_line_error() == line, (front, verb)
    assert ok not in where.raw_names()


# --------------------------------------------------------------------------- $VAR in probes


def test_variables_in_ready_probes_are_expanded(project: Project, where: Where) -> None:
    """``$PORT`` from the config's env, ``${X:-d}`` with X unset, ``$$`` a literal ``$`` and
    a variable of the caller, in an http URL and in exec words: both probes pass only when
    they were expanded as the command was (the command made the file and listens where the
    expanded probe looks)."""
    port = project.port("web")
    listen = "serve $PORT http any" if where.container else "serve $PORT http"
    publish = f'ports: ["127.0.0.1:{port}:{port}"]\n' if where.container else ""
    project.write(where.config(
        where.entry("web", f"@tool@ sleep 1 + {listen}",
                    f"{publish}env:\n  PORT: \"{port}\"\n"
                    "ready:\n  http: \"http://${KT_NO_HOST:-127.0.0.1}:$PORT/h$$\"\n"
                    "  timeout: 60"),
        where.entry("mark", "@tool@ sleep 1 + touch ${KT_FROM_CALLER}-${KT_NO_X:-dflt}$$ "
                    "+ forever",
                    "ready:\n  exec: \"python3 e2e_tool.py need-file "
                    "${KT_FROM_CALLER}-${KT_NO_X:-dflt}$$\"\n  timeout: 60")))
    web, mark = project.name("web"), project.name("mark")
    env = caller(KT_FROM_CALLER="caller")
    done = project.kstlib("ops", "up", "--wait", "--json", env=env).ok()
    results = {r["name"]: r for r in json.loads(done.out)["sessions"]}
    assert set(results) == {web, mark}, done.out
    assert results[web]["ready"] is True and results[mark]["ready"] is True
    assert (project.root / "caller-dflt$").exists()
    assert project.kstlib("ops", "wait", web, mark, env=env).code == 0
    assert project.inv(f"{mark}.wait", env=env).code == 0
    project.kstlib("ops", "down").ok()


def test_an_unset_variable_in_a_probe_is_an_error_naming_it(project: Project,
                                                             where: Where) -> None:
    """At start (exit 2, nothing started), in ``check``, and in ``up``/``wait`` of a session
    already running when the variable is gone: one line naming it, never a traceback."""
    entries = [
        where.entry("pexec", "@tool@ forever",
                    "ready:\n  exec: \"python3 e2e_tool.py need-file $KT_UNSET_EXEC\""),
        where.entry("phttp", "@tool@ forever",
                    "ready:\n  http: \"http://127.0.0.1:${KT_UNSET_PORT}/\""),
    ]
    if where.container:  # (tmux: test_cli_fronts.py)
        entries.append(where.entry("pcmd", "@tool@ args $KT_UNSET_CMD"))
    project.write(where.config(*entries))
    unset = {"pexec": ("ready.exec", "KT_UNSET_EXEC"), "phttp": ("ready.http", "KT_UNSET_PORT")}
    if where.container:
        unset["pcmd"] = ("command", "KT_UNSET_CMD")
    for key, (field, variable) in unset.items():
        name = project.name(key)
        refused = project.kstlib("ops", "start", name, env=caller())
        assert refused.code == 2, (key, refused.err)
        assert refused.one_line_error() == (f"session '{name}': {field}: variable ${variable} "
                                            "is not set"), key
        assert project.state(name) == "defined"
    assert not set(where.raw_names()) & {project.name(k) for k in unset}
    checked = project.kstlib("ops", "check", env=caller())
    assert checked.code == 2
    for key, (field, variable) in unset.items():
        assert any(f"session '{project.name(key)}': {field}: variable ${variable} is not set"
                   in line for line in checked.out.splitlines()), (key, checked.out)

    # started while the variables were set; then waited for without them
    pexec, phttp = project.name("pexec"), project.name("phttp")
    given = caller(KT_UNSET_EXEC="x", KT_UNSET_PORT=str(project.port("none")))
    project.kstlib("ops", "up", pexec, phttp, env=given).ok()
    for argv in (["ops", "up", pexec, phttp, "--wait"], ["ops", "wait", pexec, phttp]):
        done = project.kstlib(*argv, env=caller())
        assert done.code == 2, (argv, done.err)  # the documented code of an unset $VAR
        assert "Traceback" not in done.err and "Exception" not in done.err, done.err
        for name, (field, variable) in ((pexec, unset["pexec"]), (phttp, unset["phttp"])):
            assert (f"{name}: session '{name}': {field}: variable ${variable} is not set"
                    in done.err.splitlines()), (argv, done.err)
    project.kstlib("ops", "down").ok()
