"""Renderers: the table people read and the JSON scripts parse."""

from __future__ import annotations

import io
import json

import pytest

from kstlib_tasks import render
from kstlib_tasks.models import SessionStatus, State

ROWS = [
    SessionStatus("astro-dev", "tmux", State.DEFINED, defined=True, details={"socket": None}),
    SessionStatus("astro-prod", "container", State.RUNNING, scope="podman", pid=4242,
                  image="astro-bot:v2", created_at="2026-01-02T03:04:05Z", defined=True,
                  managed=True, details={"runtime": "podman", "id": "cafe"}),
    SessionStatus("crashed", "tmux", State.EXITED, exit_code=3, managed=True, restarts=2),
]


def test_table_has_the_seed_columns_plus_restarts_and_one_line_per_session():
    lines = render.table(ROWS).splitlines()
    assert lines[0].split() == ["Name", "Backend", "State", "PID", "Image", "Exit", "Restarts"]
    assert lines[1].split() == ["astro-dev", "tmux", "defined", "-", "-", "-", "-"]
    assert lines[2].split() == ["astro-prod", "container", "running", "4242", "astro-bot:v2",
                                "-", "-"]
    assert lines[3].split() == ["crashed", "tmux", "exited", "-", "-", "3", "2"]
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
    assert lines[3].startswith("\x1b[31m") and lines[3].endswith(render.RESET)
    assert lines[3].removesuffix(render.RESET).split()[-2:] == ["3", "2"]  # exit code, restarts


def test_exit_code_is_shown_only_once_the_command_ended():
    running = SessionStatus("x", "tmux", State.RUNNING, exit_code=0)
    assert render.row(running)[render.COLUMNS.index("Exit")] == "-"
    stopped = SessionStatus("x", "container", State.STOPPED, exit_code=0)
    assert render.row(stopped)[render.COLUMNS.index("Exit")] == "0"


def test_empty_table_is_just_the_header():
    assert render.table([]).splitlines() == ["Name  Backend  State  PID  Image  Exit  Restarts"]


def test_a_drifted_row_is_marked_and_the_table_says_what_the_mark_means():
    rows = [ROWS[1].with_changes(drifted=True, drift=("image",)), ROWS[0]]
    lines = render.table(rows).splitlines()
    assert lines[1].split()[2] == "running" + render.DRIFT_MARK
    assert lines[2].split()[2] == "defined"
    assert len(lines) == 4 and lines[3].startswith(f"{render.DRIFT_MARK} drifted:")
    not_drifted = [ROWS[1].with_changes(drifted=False), ROWS[1]]  # False and None: no legend
    assert len(render.table(not_drifted).splitlines()) == 3
    assert render.DRIFT_MARK not in render.table(not_drifted)


def test_control_characters_never_reach_the_terminal():
    """A container made by someone else may be called anything."""
    hostile = SessionStatus("evil\x1b[2J", "container", State.RUNNING,
                            image="img\x1b]0;title\x07", command="sh -c 'x'\r\nfake line",
                            details={"node": "n1\x1b[31m"})
    table = render.table([hostile], color=True)
    assert "\x1b[2J" not in table and "\x1b]" not in table and "\x07" not in table
    assert "evil\\x1b[2J" in table
    details = render.details(hostile)
    assert "\x1b" not in details and "\r" not in details
    assert not any(line.startswith("fake line") for line in details.splitlines())
    assert render.printable("plain text") == "plain text"
    assert render.printable("a\u202eb") == "a\\u202eb"  # invisible format characters too


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
    assert data[2]["exit_code"] == 3 and data[2]["restarts"] == 2
    assert data[2]["drift"] == [] and data[2]["drifted"] is None


def test_json_carries_the_backends_details_and_never_the_recorded_fingerprint():
    status = ROWS[1].with_changes(recorded={"fp": {"image": "abc"}, "ov": {}})
    data = json.loads(render.status_json(status))
    assert data["scope"] == "podman" and data["runtime"] == "podman" and data["id"] == "cafe"
    assert "recorded" not in data and "details" not in data
    assert json.loads(render.status_json(ROWS[0]))["socket"] is None


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


def test_details_names_the_scope_the_drift_and_the_backends_own_fields():
    status = ROWS[1].with_changes(drifted=True, drift=("env", "image"),
                                  details={"runtime": "podman", "id": "cafe", "node": "n1"})
    lines = render.details(status).splitlines()
    assert "Backend: container (podman)" in [" ".join(line.split()) for line in lines]
    drifted = next(line for line in lines if line.startswith("Drifted:"))
    assert "env, image" in drifted
    assert any(line.split() == ["Node:", "n1"] for line in lines)
    assert not any(line.startswith(("Runtime:", "Id:")) for line in lines)  # shown elsewhere
    assert "Drifted:" not in render.details(ROWS[1])  # None: not known, not shown
    no = render.details(ROWS[1].with_changes(drifted=False)).splitlines()
    assert any(line.split() == ["Drifted:", "no"] for line in no)
