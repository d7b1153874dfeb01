"""The two front ends as their users see them: hints spelled for the front end in use, and
``$VAR`` in commands expanded by kstlib (no shell) before the program runs.
"""

from __future__ import annotations

import ast
import os

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import KSTLIB, PYTHON_IMAGE, retry_until

pytestmark = pytest.mark.skipif(not os.access(KSTLIB, os.X_OK), reason="kstlib not installed")


# --------------------------------------------------------------------------- hints


def test_hints_name_the_front_end_in_use(project: Project, tmux_available: None) -> None:
    project.write("ops:\n  sessions:\n    @dev@:\n      command: \"@tool@ forever\"\n"
                  "    @web@:\n      command: \"@tool@ forever\"\n")
    dev, web = project.name("dev"), project.name("web")
    spelled = {"kstlib": {"stop": f"kstlib ops stop {dev}", "start": f"kstlib ops start {dev}",
                          "list": "kstlib ops list"},
               "inv": {"stop": f"inv {dev}.stop", "start": f"inv {dev}.start",
                       "list": "inv ops.list"}}
    for front in FRONTS:
        never = project.verb(front, "logs", [dev]).one_line_error()
        assert never.endswith(f"has no output yet (never started) ({spelled[front]['start']})")
        unknown = project.verb(front, "status", [dev + "x"], own_task=False).one_line_error()
        assert unknown.endswith(f"(see: {spelled[front]['list']})"), unknown
        # several sessions: each one's trouble is a warning, spelled the same way
        several = project.verb(front, "logs", [dev, web])
        assert several.code == 1 and several.err.splitlines() == [
            f"warning: session '{n}' has no output yet (never started) "
            f"({spelled[front]['start'].replace(dev, n)})" for n in (dev, web)], several.err
    project.kstlib("ops", "start", dev).ok()
    for front in FRONTS:
        line = project.verb(front, "start", [dev]).one_line_error()
        assert line == (f"session '{dev}' is already running (tmux) (stop it first: "
                        f"{spelled[front]['stop']})")
        other = {"kstlib": "inv", "inv": "kstlib ops"}[front]
        assert other not in line
    project.kstlib("ops", "stop", dev, "-f").ok()


# --------------------------------------------------------------------------- $VAR


EXPANDED = """\
ops:
  container_runtime: {runtime}
  sessions:
    @vars@:
      command: "@tool@ args $PORT ${{KT_NO_X:-dflt}} $$ cost$$5 ${{KT_CALLER:-no}} $1"
      env:
        PORT: "8123"
    @box@:
      backend: container
      image: "{image}"
      command: "python3 -u /t/e2e_tool.py args $PORT ${{KT_NO_X:-dflt}} $$ ${{KT_CALLER:-no}}"
      volumes: ["./e2e_tool.py:/t/e2e_tool.py:ro"]
      env:
        PORT: "8124"
    @unset@:
      command: "python3 e2e_tool.py args $KT_NOT_SET_ANYWHERE"
"""


def args_printed(project: Project, name: str) -> list[str]:
    out = retry_until(lambda: project.kstlib("ops", "logs", name).ok().out.strip(), timeout=60)
    return list(ast.literal_eval(out.splitlines()[-1]))


def test_variables_in_a_command_reach_the_program_expanded(project: Project, front: str,
                                                          tmux_available: None) -> None:
    """``$PORT`` from the config's env, a default for an unset variable, ``$$`` a literal
    ``$``, the caller's environment under the config's, ``$1`` kept as written; and an unset
    variable without a default fails the start (exit 2, naming it) and starts nothing."""
    project.write(EXPANDED.format(runtime="podman", image=PYTHON_IMAGE))
    names = {k: project.name(k) for k in ("vars", "unset")}
    env = {**os.environ, "KT_CALLER": "from-caller"}
    env.pop("KT_NO_X", None)
    project.verb(front, "start", [names["vars"]], env=env).ok()
    assert args_printed(project, names["vars"]) == ["8123", "dflt", "$", "cost$5",
                                                    "from-caller", "$1"]
    done = project.verb(front, "start", [names["unset"]], env=env)
    assert done.code == 2
    assert done.one_line_error() == (f"session '{names['unset']}': command: variable "
                                     "$KT_NOT_SET_ANYWHERE is not set")
    assert project.state(names["unset"]) == "defined"
    # a value given for this start only is used for the expansion too
    project.verb(front, "restart", [names["vars"]], "-e", "PORT=9999", env=env).ok()
    assert args_printed(project, names["vars"])[0] == "9999"
    project.kstlib("ops", "stop", names["vars"]).ok()


@pytest.mark.containers
def test_variables_in_a_container_command_are_expanded_by_kstlib(project: Project,
                                                                 runtime: str) -> None:
    project.write(EXPANDED.format(runtime=runtime, image=PYTHON_IMAGE))
    box = project.name("box")
    env = {**os.environ, "KT_CALLER": "from-caller"}
    env.pop("KT_NO_X", None)
    project.kstlib("ops", "start", box, env=env).ok()
    assert args_printed(project, box) == ["8124", "dflt", "$", "from-caller"]
    project.kstlib("ops", "stop", box).ok()
