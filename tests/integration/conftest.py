"""Fixtures of the end-to-end tests: a temp project driven as a user would (cli_project), both
front ends, and ``where``: one test on tmux, on podman and on docker (see :mod:`tests.where`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_project import FRONTS, Project
from tests.helpers import in_ci, remove_containers, runtime_problem, tmux_problem
from tests.where import NAMES, Where

_problems: dict[str, str | None] = {}

MARKS = {"tmux": pytest.mark.tmux, "podman": pytest.mark.containers,
         "docker": pytest.mark.containers}


@pytest.fixture
def project(tmp_path: Path, unique_name: Callable[[str], str]) -> Project:
    return Project(tmp_path / "p", unique_name)


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    """Each test runs once through `kstlib ops ...` and once through `inv ...`."""
    return str(request.param)


@pytest.fixture(params=[pytest.param(name, marks=MARKS[name]) for name in NAMES])
def where(request: pytest.FixtureRequest, unique_name: Callable[[str], str]) -> Iterator[Where]:
    """tmux, podman or docker; skipped locally (failed in CI) when missing. Every container of
    this run the test left behind is removed afterwards (tmux: the private server is killed by
    the ``isolated_env`` fixture)."""
    name: str = request.param
    if name not in _problems:
        _problems[name] = tmux_problem() if name == "tmux" else runtime_problem(name)
    problem = _problems[name]
    if problem:
        if in_ci():
            pytest.fail(f"backend missing in CI (never skipped): {problem}", pytrace=False)
        pytest.skip(problem)
    yield Where(name)
    if name != "tmux":
        remove_containers(name, unique_name(""))
