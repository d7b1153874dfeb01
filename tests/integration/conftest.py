"""Fixtures of the end-to-end tests driving a temp project as a user would (cli_project)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_project import FRONTS, Project


@pytest.fixture
def project(tmp_path: Path, unique_name: Callable[[str], str]) -> Project:
    return Project(tmp_path / "p", unique_name)


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    """Each test runs once through `kstlib ops ...` and once through `inv ...`."""
    return str(request.param)
