"""Renderers: the table people read and the JSON scripts parse."""

from __future__ import annotations

import io
import json

import pytest

from kstlib_tasks import render
from kstlib_tasks.models import SessionStatus, State

ROWS = [
    SessionStatus("astro-dev", "tmux", State.DEFINED, defined=True),
    SessionStatus("astro-prod", "container", State.RUNNING, pid=4242, image="astro-bot:v2",
                  created_at="2026-01-02T03:04:05Z", defined=True, managed=True, runtime="podman"),
    SessionStatus("crashed", "tmux", State.EXITED, exit_code=3, managed=True),
]


def test_table_has_the_seed_columns_and_one_line_per_session():
    lines = render.table(ROWS).splitlines()
    assert lines[0].split() == ["Name", "Backend", "State", "PID", "Image", "Exit"]
    assert lines[1].split() == ["astro-dev", "tmux", "defined", "-", "-", "-"]
    assert lines[2].split() == ["astro-prod", "container", "running", "4242", "astro-bot:v2", "-"]
    assert lines[3].split() == ["crashed", "tmux", "exited", "-", "-", "3"]
    assert len(lines) == 4


def test_table_columns_are_aligned():
    lines = render.table(ROWS).splitlines()
    starts = {line.index(word) for line, word in zip(lines, ["Backend", "tmux", "container"],
                                                       strict=False)}
    assert len(starts) == 1


def test_plain_table_has_no_escape_codes():
    assert "\x1b" not in render.table(ROWS, color=False)


def test_colored_table_dims_defined_greens_running_reds_exited():
    lines = render.table(ROWS, color=True).splitlines()
    assert "\x1b" not in lines[0]
    assert lines[1].startswith("\x1b[2m") and lines[1].endswith(render.RESET)
    assert lines[2].startswith("\x1b[32m")
    assert lines[3].startswith("\x1b[31m") and lines[3].rstrip(render.RESET).endswith("3")


def test_exit_code_is_shown_only_once_the_command_ended():
    running = SessionStatus("x", "tmux", State.RUNNING, exit_code=0)
    assert render.row(running)[-1] == "-"


def test_empty_table_is_just_the_header():
    assert render.table([]).splitlines() == ["Name  Backend  State  PID  Image  Exit"]


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("tty", "no_color", "term", "expected"),
    [
        (True, None, "xterm", True),
        (False, None, "xterm", False),
        (True, "1", "xterm", False),
        (True, "", "xterm", True),  # no-color.org: an empty NO_COLOR does not count
        (True, None, "dumb", False),
    ],
)
def test_use_color(monkeypatch, tty, no_color, term, expected):
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("TERM", term)
    assert render.use_color(_Stream(tty)) is expected


def test_list_json_is_an_array_of_objects_with_the_documented_fields():
    data = json.loads(render.list_json(ROWS))
    assert isinstance(data, list) and len(data) == 3
    for item in data:
        assert list(item)[: len(render.JSON_FIELDS)] == list(render.JSON_FIELDS)
    assert data[1]["state"] == "running"
    assert data[1]["pid"] == 4242
    assert data[1]["managed"] is True
    assert data[2]["exit_code"] == 3


def test_status_json_is_one_object():
    data = json.loads(render.status_json(ROWS[1]))
    assert isinstance(data, dict)
    assert data["name"] == "astro-prod" and data["backend"] == "container"
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    assert data["defined"] is True


def test_details_shows_state_with_exit_code_and_skips_unknown_fields():
    text = render.details(ROWS[2])
    assert "State:" in text and "exited (exit code 3)" in text
    assert "Image" not in text  # None fields are left out
    assert "\x1b" not in text
