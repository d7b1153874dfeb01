"""The tmux backend's pure helpers (``backends.tmux.panes``): argument escaping, listing
parsing, exit codes; and what the backend makes of a captured listing (no tmux is run)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kstlib_tasks import logstore
from kstlib_tasks.backends.base import iso_utc, last_lines
from kstlib_tasks.backends.tmux import capture, supervise
from kstlib_tasks.backends.tmux.backend import (
    TmuxBackend,
    inside_server,
    new_pipe_marker,
    scope_key,
    wait_drained,
)
from kstlib_tasks.backends.tmux.panes import (
    PANE_FORMAT,
    SEP,
    command_text,
    env_file_text,
    escape_arg,
    escape_format,
    exit_code_from_wait_status,
    exit_code_of,
    no_server,
    not_found,
    parse_pane_line,
    parse_panes,
    plain_command,
    session_panes,
    socket_path,
    strip_blank_tail,
    tmux_args,
    zombie_exit_code,
)
from kstlib_tasks.errors import BackendError
from kstlib_tasks.models import State
from kstlib_tasks.runner import Result


def row(**fields: str) -> str:
    """One list-panes line in PANE_FORMAT's field order, with sensible defaults."""
    values = {
        "session": "astro", "created": "1795615899", "pane_id": "%3", "pid": "4242",
        "dead": "0", "dead_status": "", "dead_signal": "", "in_mode": "0", "focus": "1",
        "managed": "1", "fp": "", "current": "python", "command": "python -m astro.bot",
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


def test_command_text_is_one_quoted_line() -> None:
    assert command_text(("python", "-m", "astro bot")) == "python -m 'astro bot'"
    assert "\n" not in command_text(("a\nb",))
    assert command_text(()) == ""


def test_the_pane_program_gives_the_command_exactly_the_env_file(tmp_path: Path) -> None:
    """Every pane runs supervise.sh: the command sees exactly the environment written (quotes,
    newlines and all), nothing of the environment tmux would have given, and no shell stays
    between it and exec (policy no)."""
    env = {"PATH": os.environ["PATH"], "PLAIN": "1", "QUOTES": "it's \"x\" $HOME `id`",
           "LINES": "a\nb", "EMPTY": "", "BASH_FUNC_f%%": "() { :; }"}
    text = env_file_text(env)
    assert "BASH_FUNC" not in text  # not a shell identifier: left out
    path = tmp_path / "env"
    path.write_text(text)
    def run(command: list[str]) -> tuple[subprocess.Popen[bytes], bytes]:
        argv = supervise.argv(state=tmp_path / "run", stop=tmp_path / "stop", policy="no",
                              max_restarts=0, env_file=path, command=command)
        process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                   env={"PATH": os.environ["PATH"], "TMUX": "/tmp/x,1,0",
                                        "SERVER_ONLY": "leak"})
        out, _ = process.communicate(timeout=30)
        return process, out

    _, out = run(["env", "-0"])  # looked up with the file's PATH
    seen = dict(item.split("=", 1) for item in out.decode().split("\0") if item)
    expected = {k: v for k, v in env.items() if not k.startswith("BASH_FUNC")}
    assert {k: v for k, v in seen.items() if k != "_"} == expected
    process, out = run([sys.executable, "-c", "import os; print(os.getpid())"])
    assert int(out) == process.pid  # exec all the way: the pane's pid is the command's
    state = supervise.read_state(tmp_path / "run")
    assert state is not None and state.pid == process.pid and state.runs == 1


def test_the_log_copier_is_one_exec_of_capture_sh_with_the_size_bound(tmp_path: Path) -> None:
    log = tmp_path / "my dir" / "s.log"
    marker = tmp_path / "s.log.pipe-1"
    command = capture.command(log, marker)
    assert shlex.split(command) == ["exec", "/bin/sh", str(capture.SCRIPT), str(log),
                                    str(logstore.max_bytes()), str(marker)]
    assert capture.SCRIPT.is_file()


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
    assert pane.session == "astro" and pane.pane_id == "%3" and pane.pid == 4242
    assert not pane.dead and pane.exit_code is None and pane.managed
    assert pane.created == 1795615899 and pane.command == "python -m astro.bot"


def test_an_exited_pane_has_its_code() -> None:
    pane = parse_pane_line(row(dead="1", dead_status="3"))
    assert pane is not None and pane.dead and pane.exit_code == 3


def test_death_by_signal_reads_as_128_plus_n() -> None:
    pane = parse_pane_line(row(dead="1", dead_signal="9"))
    assert pane is not None and pane.exit_code == 137


def test_a_live_pane_has_no_exit_code_whatever_tmux_prints() -> None:
    pane = parse_pane_line(row(dead="0", dead_status="0"))
    assert pane is not None and pane.exit_code is None


def test_exit_code_of() -> None:
    assert exit_code_of("0", "") == 0
    assert exit_code_of("", "2") == 130
    assert exit_code_of("", "") is None


def test_unmanaged_pane_shows_tmux_start_command_unquoted() -> None:
    pane = parse_pane_line(row(managed="", command='"sleep 120"'))
    assert pane is not None and not pane.managed and pane.command == "sleep 120"
    shell = parse_pane_line(row(managed="", command="", current="bash"))
    assert shell is not None and shell.command == "" and shell.current_command == "bash"


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


# ------------------------------------------------------------------ the backend on a listing


class CannedRunner:
    """Stands in for the tmux Runner: answers each call with the next canned result."""

    def __init__(self, *results: Result):
        self.results = list(results)
        self.calls: list[tuple[str, ...]] = []

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> Result:
        self.calls.append(args)
        return self.results.pop(0)


def backend_answering(*results: Result, socket: str | None = "dev") -> TmuxBackend:
    backend = TmuxBackend(socket)
    backend.runner = CannedRunner(*results)  # type: ignore[assignment]
    return backend


def ok(*lines: str) -> Result:
    return Result("\n".join(lines) + "\n", "", 0)


def test_status_of_a_running_managed_pane() -> None:
    backend = backend_answering(ok(row()))
    status = backend.status("astro")
    assert status is not None
    assert status.name == "astro" and status.backend == "tmux" and status.state is State.RUNNING
    assert status.pid == 4242 and status.exit_code is None and status.managed
    assert status.created_at == "2026-11-25T14:11:39Z"
    assert status.command == "python -m astro.bot"
    assert status.scope == "dev" and status.details["socket"] == "dev"
    assert status.defined is False
    assert status.recorded is None  # no fingerprint stored: nothing to compare
    [call] = backend.runner.calls  # type: ignore[attr-defined]
    assert call[:4] == ("list-panes", "-s", "-t", "=astro:")  # exact target, one call


def test_an_exited_pane_has_its_code_and_no_pid() -> None:
    status = backend_answering(ok(row(dead="1", dead_status="3")), socket=None).status("astro")
    assert status is not None
    assert status.state is State.EXITED and status.exit_code == 3 and status.pid is None
    assert status.scope is None


def test_an_unmanaged_shell_shows_its_current_command() -> None:
    status = backend_answering(ok(row(managed="", command="", current="bash"))).status("astro")
    assert status is not None and status.command == "bash" and not status.managed


def test_the_stored_fingerprint_is_the_recorded_start() -> None:
    fingerprint = json.dumps({"command": "abc", "env": "def"})
    status = backend_answering(ok(row(fp=fingerprint))).status("astro")
    assert status is not None and status.recorded == {"fp": {"command": "abc", "env": "def"},
                                                      "ov": {}}
    garbled = backend_answering(ok(row(fp="{not json"))).status("astro")
    assert garbled is not None and garbled.recorded is None


def test_status_of_a_name_tmux_does_not_know_is_none() -> None:
    gone = Result("", "can't find session: astro", 1)
    assert backend_answering(gone).status("astro") is None
    no_server_yet = Result("", "no server running on /tmp/tmux-0/dev", 1)
    assert backend_answering(no_server_yet).status("astro") is None


def test_list_is_one_call_for_the_whole_server() -> None:
    backend = backend_answering(ok(row(session="b", pane_id="%1"),
                                   row(session="a", pane_id="%2", dead="1", dead_status="0")))
    statuses = backend.list()
    assert [(s.name, s.state) for s in statuses] == [("b", State.RUNNING), ("a", State.EXITED)]
    assert backend.runner.calls == [("list-panes", "-a", "-F", PANE_FORMAT)]  # type: ignore[attr-defined]


def test_list_of_a_server_that_does_not_run_is_empty_and_other_failures_say_so() -> None:
    no_server_yet = Result("", "error connecting to /tmp/x (No such file)", 1)
    assert backend_answering(no_server_yet).list() == []
    with pytest.raises(BackendError, match=r"list-panes failed.*permission denied"):
        backend_answering(Result("", "permission denied", 1)).list()


def test_building_a_backend_runs_nothing() -> None:
    backend = TmuxBackend("dev", binary="no-such-tmux-binary")
    assert backend.kind == "tmux" and backend.scope == "dev"
    assert backend.runner.argv("ls") == ["no-such-tmux-binary", "-L", "dev", "ls"]
    by_path = TmuxBackend("/tmp/some/sock", binary="tmux")
    assert by_path.runner.argv("ls") == ["tmux", "-S", "/tmp/some/sock", "ls"]
    assert TmuxBackend(None).runner.argv("ls") == ["tmux", "ls"]


def test_two_servers_of_one_name_in_two_folders_keep_separate_logs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path / "a"))
    first = scope_key("dev")
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path / "b"))
    second = scope_key("dev")
    assert first != second and first.startswith("dev-") and second.startswith("dev-")
    assert TmuxBackend("dev").log_path("x").parent.name == second


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
    assert socket_path(None) == str(tmp_path.resolve() / f"tmux-{os.getuid()}" / "default")
    assert socket_path("/run/x/../sock") == "/run/sock"  # a path is that path
    monkeypatch.delenv("TMUX", raising=False)
    assert not inside_server(None)
    monkeypatch.setenv("TMUX", f"{socket_path('dev')},123,0")
    assert inside_server(None)  # tmux itself uses $TMUX's server when there is no -L
    assert inside_server("dev")
    assert not inside_server("other")


# ------------------------------------------------------------------ the log files


def test_log_store_rotation_stays_bounded_and_keeps_lines_whole(tmp_path: Path) -> None:
    """Past the limit the file becomes ``.1``; a line cut by a rotation still reads as one
    line; no file ever holds more than the limit."""
    log = tmp_path / "s.log"
    limit = 4096
    text = "".join(f"line {n:05} " + "x" * 40 + "\r\n" for n in range(1000)).encode()  # ~55 kB
    writer = logstore.BoundedWriter(log, limit)
    for start in range(0, len(text), 1000):
        writer.write(text[start:start + 1000])
    writer.commit()
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
