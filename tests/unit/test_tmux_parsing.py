"""The tmux backend's pure helpers: argument escaping, listing parsing, exit codes (no tmux)."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest

from kstlib_tasks import logstore
from kstlib_tasks.backends.tmux import (
    PANE_FORMAT,
    SEP,
    TmuxBackend,
    command_text,
    escape_arg,
    escape_format,
    exit_code_from_wait_status,
    exit_code_of,
    inside_server,
    iso_utc,
    last_lines,
    new_pipe_marker,
    no_server,
    not_found,
    parse_pane_line,
    parse_panes,
    pipe_command,
    plain_command,
    program_argv,
    session_panes,
    socket_path,
    strip_blank_tail,
    tmux_args,
    wait_drained,
    zombie_exit_code,
)
from kstlib_tasks.models import State


def row(**fields: str) -> str:
    """One list-panes line in PANE_FORMAT's field order, with sensible defaults."""
    values = {
        "session": "astro", "created": "1795615899", "pane_id": "%3", "pid": "4242",
        "dead": "0", "dead_status": "", "dead_signal": "", "in_mode": "0", "focus": "1",
        "managed": "1", "current": "python", "command": "python -m astro.bot",
    }
    values.update(fields)
    return SEP.join(values.values())


def test_format_and_row_agree_on_the_field_count() -> None:
    assert PANE_FORMAT.count(SEP) == row().count(SEP)


# ------------------------------------------------------------------ escaping


@pytest.mark.parametrize(
    ("arg", "expected"),
    [("plain", "plain"), ("a;", "a\\;"), (";", "\\;"), ("a\\;", "a\\\\;"), ("a;b", "a;b"),
     ("", "")],
)
def test_escape_arg_protects_only_a_trailing_semicolon(arg: str, expected: str) -> None:
    assert escape_arg(arg) == expected


def test_tmux_args_separates_commands_and_escapes_each_argument() -> None:
    argv = tmux_args(["new-session", "-e", "X=1;"], ["set-option", "@a", "b"])
    assert argv == ["new-session", "-e", "X=1\\;", ";", "set-option", "@a", "b"]
    assert tmux_args(["list-panes"]) == ["list-panes"]


def test_escape_format_doubles_hashes() -> None:
    assert escape_format("/srv/work#1/#{x}") == "/srv/work##1/##{x}"


def test_program_argv_avoids_the_shell_and_keeps_the_empty_command() -> None:
    assert program_argv(("cat",)) == ["env", "--", "cat"]
    assert program_argv(("python", "-m", "bot")) == ["env", "--", "python", "-m", "bot"]
    assert program_argv(()) == []


def test_command_text_is_one_quoted_line() -> None:
    assert command_text(("python", "-m", "astro bot")) == "python -m 'astro bot'"
    assert "\n" not in command_text(("a\nb",))
    assert command_text(()) == ""


def test_pipe_command_runs_the_log_store_file_and_removes_its_marker(tmp_path: Path) -> None:
    log = tmp_path / "my dir" / "s.log"
    command = pipe_command(log, tmp_path / "s.log.pipe-1")
    assert "logstore.py" in command and "KSTLIB_LOG_MAX_BYTES=" in command
    assert f"'{log}'" in command
    assert command.endswith(f"; rm -f {tmp_path}/s.log.pipe-1")


def test_wait_drained_returns_once_markers_are_gone_and_clears_stale_ones(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    wait_drained(log, timeout=0)  # nothing to wait for
    marker = new_pipe_marker(log)
    assert marker.exists() and marker.name.startswith("s.log.pipe-")
    wait_drained(log, timeout=0.05)  # a copier killed outright: the marker is stale
    assert not marker.exists()


# ------------------------------------------------------------------ parsing


def test_a_running_managed_pane() -> None:
    pane = parse_pane_line(row())
    assert pane is not None
    status = pane.to_status("dev")
    assert status.name == "astro" and status.backend == "tmux" and status.state is State.RUNNING
    assert status.pid == 4242 and status.exit_code is None and status.managed
    assert status.created_at == "2026-11-25T14:11:39Z"
    assert status.command == "python -m astro.bot" and status.socket == "dev"
    assert status.defined is False


def test_an_exited_pane_has_its_code_and_no_pid() -> None:
    pane = parse_pane_line(row(dead="1", dead_status="3"))
    assert pane is not None
    status = pane.to_status(None)
    assert status.state is State.EXITED and status.exit_code == 3 and status.pid is None


def test_death_by_signal_reads_as_128_plus_n() -> None:
    pane = parse_pane_line(row(dead="1", dead_signal="9"))
    assert pane is not None and pane.exit_code == 137


def test_exit_code_of() -> None:
    assert exit_code_of("0", "") == 0
    assert exit_code_of("", "2") == 130
    assert exit_code_of("", "") is None


def test_unmanaged_pane_shows_tmux_start_command_unquoted() -> None:
    pane = parse_pane_line(row(managed="", command='"sleep 120"'))
    assert pane is not None and not pane.managed and pane.command == "sleep 120"
    shell = parse_pane_line(row(managed="", command="", current="bash"))
    assert shell is not None and shell.to_status(None).command == "bash"


@pytest.mark.parametrize(
    ("text", "expected"),
    [('"sleep 120"', "sleep 120"), ("sleep 120", "sleep 120"), ("", ""),
     ('env -- sh -c "echo \\$FOO"', "env -- sh -c 'echo $FOO'"),
     ('"unterminated', '"unterminated')],
)
def test_plain_command(text: str, expected: str) -> None:
    assert plain_command(text) == expected


def test_the_command_field_may_contain_anything_but_a_newline() -> None:
    pane = parse_pane_line(row(command=f"a{SEP}b\tc ; d"))
    assert pane is not None and pane.command == f"a{SEP}b\tc ; d"


@pytest.mark.parametrize(
    "line", ["", "garbage", SEP.join(["x"] * 5), row(session=""), row(pane_id="3")]
)
def test_malformed_lines_are_skipped(line: str) -> None:
    assert parse_pane_line(line) is None


def test_parse_panes_keeps_order_and_skips_noise() -> None:
    text = "\n".join([row(session="b"), "noise", row(session="a", pane_id="%4"), ""])
    assert [p.session for p in parse_panes(text)] == ["b", "a"]


def test_session_panes_prefers_kstlib_pane_then_the_active_one() -> None:
    panes = parse_panes("\n".join([
        row(session="bot", pane_id="%1", managed="1", focus="0"),
        row(session="bot", pane_id="%2", managed="", focus="1"),  # a window the user opened
        row(session="hand", pane_id="%3", managed="", focus="0"),
        row(session="hand", pane_id="%4", managed="", focus="1"),
        row(session="solo", pane_id="%5", managed="", focus="0"),
    ]))
    chosen = session_panes(panes)
    assert list(chosen) == ["bot", "hand", "solo"]
    assert [chosen[n].pane_id for n in chosen] == ["%1", "%4", "%5"]


def test_iso_utc() -> None:
    assert iso_utc("0") is None and iso_utc("") is None and iso_utc(None) is None
    assert iso_utc(1) == "1970-01-01T00:00:01Z"


# ------------------------------------------------------------------ zombies (tmux 3.3a)


def stat_line(state: str, wait_status: int, comm: str = "python") -> str:
    fields = [state] + ["0"] * 48 + [str(wait_status)]  # fields 3..52
    return f"1234 ({comm}) " + " ".join(fields) + "\n"


def test_zombie_exit_code_reads_field_52() -> None:
    assert zombie_exit_code(stat_line("Z", 5 << 8)) == 5
    assert zombie_exit_code(stat_line("Z", signal.SIGKILL)) == 137
    assert zombie_exit_code(stat_line("Z", 0, comm="we ird) (x")) == 0
    assert zombie_exit_code(stat_line("S", 0)) is None  # still running
    assert zombie_exit_code("1234 (x) Z 1 2") is None  # old kernel: no field 52


def test_exit_code_from_wait_status() -> None:
    assert exit_code_from_wait_status(3 << 8) == 3
    assert exit_code_from_wait_status(signal.SIGINT) == 130


# ------------------------------------------------------------------ errors and environment


def test_error_classification() -> None:
    assert no_server("no server running on /tmp/tmux-0/default")
    assert no_server("error connecting to /tmp/tmux-0/x (No such file or directory)")
    assert not_found("can't find session: astro")
    assert not_found("can't find pane: %9")
    assert not_found("no current target")
    assert not not_found("unknown command: frob")


def test_last_lines_and_blank_tail() -> None:
    assert strip_blank_tail(["a", "", "b", "", "  ", ""]) == ["a", "", "b"]
    assert last_lines(["a", "b", "c"], 2) == ["b", "c"]
    assert last_lines(["a"], 5) == ["a"]
    assert last_lines(["a"], 0) == []
    assert last_lines(["a", "b"], None) == ["a", "b"]


def test_socket_path_and_inside_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    assert socket_path("dev") == str(tmp_path.resolve() / f"tmux-{os.getuid()}" / "dev")
    monkeypatch.delenv("TMUX", raising=False)
    assert not inside_server(None)
    monkeypatch.setenv("TMUX", f"{socket_path('dev')},123,0")
    assert inside_server(None)  # tmux itself uses $TMUX's server when there is no -L
    assert inside_server("dev")
    assert not inside_server("other")


def test_building_a_backend_runs_nothing() -> None:
    backend = TmuxBackend(binary="no-such-tmux-binary", socket="dev")
    assert backend.name == "tmux" and backend.runner.argv("ls") == [
        "no-such-tmux-binary", "-L", "dev", "ls",
    ]


def test_log_store_rotation_stays_bounded_and_keeps_lines_whole(tmp_path: Path) -> None:
    """The copier behind ``pipe-pane``: past the limit the file becomes ``.1``; a line cut by
    a rotation still reads as one line; no file ever holds more than the limit."""
    log = tmp_path / "s.log"
    limit = 4096
    text = "".join(f"line {n:05} " + "x" * 40 + "\r\n" for n in range(1000))  # ~55 kB
    logstore.copy_stream(io.BufferedReader(io.BytesIO(text.encode()), 1000), log, limit)
    assert log.stat().st_size <= limit and logstore.rotated(log).stat().st_size <= limit
    kept = logstore.tail(log)
    assert kept[-1] == f"line 00999 {'x' * 40}"
    assert all(line.endswith("x" * 40) and len(line) == 51 for line in kept[1:])
    numbers = [int(line.split()[1]) for line in kept[1:]]
    assert numbers == list(range(numbers[0], 1000))  # consecutive up to the end
    assert logstore.tail(log, 2) == [f"line {n:05} {'x' * 40}" for n in (998, 999)]


def test_log_store_tail_joins_a_line_split_by_rotation(tmp_path: Path) -> None:
    log = tmp_path / "s.log"
    logstore.rotated(log).write_bytes(b"one\r\ntw")
    log.write_bytes(b"o\r\nthree\r\n")
    assert logstore.tail(log) == ["one", "two", "three"]
    assert logstore.tail(log, 2) == ["two", "three"]
    assert logstore.tail(log, 0) == []
