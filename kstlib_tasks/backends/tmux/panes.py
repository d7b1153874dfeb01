"""Pure helpers of the tmux backend: tmux's argument rules and its ``list-panes`` output.

No process is started here, so all of it is unit-tested on captured text. Why each rule exists
is in the docstring of :mod:`kstlib_tasks.backends.tmux.backend`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from typing import NamedTuple

MANAGED_OPTION = "@kstlib"
COMMAND_OPTION = "@kstlib_command"
FINGERPRINT_OPTION = "@kstlib_fp"  # what was started (field digests, JSON), for drift
SEP = "\x1f"  # ASCII unit separator: tmux prints it as is and no name or number contains it

# (field, tmux format); the free-text command is last so that it may contain anything.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("session", "#{session_name}"),
    ("created", "#{session_created}"),
    ("pane_id", "#{pane_id}"),
    ("pid", "#{pane_pid}"),
    ("dead", "#{pane_dead}"),
    ("dead_status", "#{pane_dead_status}"),
    ("dead_signal", "#{pane_dead_signal}"),
    ("in_mode", "#{pane_in_mode}"),
    ("focus", "#{&&:#{window_active},#{pane_active}}"),
    ("managed", "#{" + MANAGED_OPTION + "}"),
    ("fp", "#{" + FINGERPRINT_OPTION + "}"),
    ("current", "#{pane_current_command}"),
    ("command", "#{?#{" + MANAGED_OPTION + "},#{" + COMMAND_OPTION + "},#{pane_start_command}}"),
)
PANE_FORMAT = SEP.join(fmt for _, fmt in _FIELDS)



def escape_arg(arg: str) -> str:
    """Protect an argument from tmux's command-line parser.

    tmux treats any argument ending with ``;`` as the end of a command (``echo "a;"`` would be
    cut in two); a trailing ``\\;`` stands for a literal ``;``.
    """
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def escape_format(text: str) -> str:
    """Protect text that tmux format-expands (``new-session -c``, ``pipe-pane``'s command)."""
    return text.replace("#", "##")


def tmux_args(*commands: Sequence[str]) -> list[str]:
    """One argv running several tmux commands in a single invocation (``a ; b ; c``)."""
    argv: list[str] = []
    for command in commands:
        if argv:
            argv.append(";")
        argv.extend(escape_arg(arg) for arg in command)
    return argv


def command_text(command: Sequence[str]) -> str:
    """The command as one shell-quoted line, kept in a pane option and shown by ``status``.

    Line breaks (refused by the validators anyway) are escaped so that the listing stays one
    line per pane.
    """
    return shlex.join(command).replace("\r", "\\r").replace("\n", "\\n")


def exit_code_of(status: str, signal_number: str) -> int | None:
    """The exit code of a dead pane; death by signal N reads as 128+N, as in a shell."""
    if status.strip().lstrip("-").isdigit():
        return int(status)
    if signal_number.strip().isdigit():
        return 128 + int(signal_number)
    return None


def exit_code_from_wait_status(status: int) -> int | None:
    """A waitpid() status as a shell would report it (128+N for death by signal N)."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return None


def zombie_exit_code(stat: str) -> int | None:
    """The exit code of a zombie from the text of its ``/proc/PID/stat``; None otherwise.

    Field 3 is the state (``Z`` for a process that ended but was not reaped yet) and field 52
    the wait status (Linux 3.5+). The command name (field 2) may hold spaces and parentheses,
    so fields are counted after its last ``)``.
    """
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 50 or fields[0] != "Z" or not fields[49].isdigit():
        return None
    return exit_code_from_wait_status(int(fields[49]))


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


class PaneInfo(NamedTuple):
    """One row of ``list-panes``: the facts a status is made of, plus the pane id to target."""

    session: str
    pane_id: str
    pid: int | None
    dead: bool
    exit_code: int | None
    in_mode: bool
    focus: bool
    managed: bool
    fingerprint: str
    created: int | None
    current_command: str
    command: str


def plain_command(text: str) -> str:
    """tmux's ``pane_start_command`` (its own quoting of the argv) as a readable command.

    A session made by hand with ``tmux new 'sleep 120'`` has one argument, shown quoted
    (``"sleep 120"``): that one string is the shell command. Several arguments are shell-joined.
    """
    try:
        # tmux writes `$` as `\$` even inside double quotes, where shlex keeps the backslash
        words = shlex.split(text.replace("\\$", "$"))
    except ValueError:
        return text
    if len(words) == 1:
        return words[0]
    return shlex.join(words) if words else ""


def parse_pane_line(line: str) -> PaneInfo | None:
    """Parse one ``PANE_FORMAT`` line; None for anything that is not one (never raises)."""
    parts = line.split(SEP, len(_FIELDS) - 1)
    if len(parts) != len(_FIELDS):
        return None
    row = dict(zip((name for name, _ in _FIELDS), parts, strict=True))
    if not row["session"] or not row["pane_id"].startswith("%"):
        return None
    dead = row["dead"] == "1"
    return PaneInfo(
        session=row["session"],
        pane_id=row["pane_id"],
        pid=_int(row["pid"]),
        dead=dead,
        exit_code=exit_code_of(row["dead_status"], row["dead_signal"]) if dead else None,
        in_mode=row["in_mode"] == "1",
        focus=row["focus"] == "1",
        managed=row["managed"] == "1",
        fingerprint=row["fp"],
        created=_int(row["created"]),
        current_command=row["current"],
        command=row["command"] if row["managed"] == "1" else plain_command(row["command"]),
    )


def parse_panes(text: str) -> list[PaneInfo]:
    """Every pane of a ``list-panes -F PANE_FORMAT`` output, in tmux's order."""
    panes = (parse_pane_line(line) for line in text.splitlines())
    return [pane for pane in panes if pane is not None]


def session_panes(panes: Iterable[PaneInfo]) -> dict[str, PaneInfo]:
    """The pane that stands for each session, in tmux's session order.

    The pane kstlib started wins (the user may have opened other windows in the session since);
    otherwise the active pane of the active window, which is what ``=name:`` targets.
    """
    chosen: dict[str, PaneInfo] = {}
    for pane in panes:
        best = chosen.get(pane.session)
        if best is None or _rank(pane) > _rank(best):
            chosen[pane.session] = pane
    return chosen


def _rank(pane: PaneInfo) -> int:
    return 2 if pane.managed else 1 if pane.focus else 0


def no_server(stderr: str) -> bool:
    """True when the call failed only because no tmux server runs on that socket."""
    return "no server running" in stderr or "error connecting to" in stderr


def not_found(stderr: str) -> bool:
    """True when the call failed because the session or pane does not exist (any more)."""
    # "no current target": a server that is still up but has no session left at all
    return (no_server(stderr) or "can't find" in stderr or "no such" in stderr
            or "no current target" in stderr)


def strip_blank_tail(lines: list[str]) -> list[str]:
    """Drop the empty screen rows below the last output line (capture-pane pads the screen)."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def env_file_text(env: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    """The environment as ``export NAME='value'`` lines, for ``sh`` to read with ``.``.

    Single quotes keep every byte but NUL (refused by validation) as it is; a ``'`` inside is
    written ``'\\''``. Names that are not shell identifiers cannot be exported by ``sh`` and are
    left out (``BASH_FUNC_x%%`` and the like, which only bash reads).
    """
    items = env.items() if isinstance(env, dict) else env
    lines = []
    for key, value in items:
        if not _IDENTIFIER(key):
            continue
        quoted = value.replace("'", "'\\''")
        lines.append(f"export {key}='{quoted}'")
    return "\n".join(lines) + "\n"


def _IDENTIFIER(name: str) -> bool:
    return bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c.isascii() and (c.isalnum() or c == "_") for c in name)


def socket_path(socket: str | None) -> str:
    """Where the server of ``-L socket`` listens (``$TMUX_TMPDIR/tmux-UID/NAME``); a socket
    given as a path is that path."""
    if socket and socket.startswith("/"):
        return os.path.realpath(socket)
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.realpath(os.path.join(base, f"tmux-{os.getuid()}", socket or "default"))
