"""The tmux backend: development sessions by exact name, with output and exit status kept.

Every call goes through :class:`~kstlib_tasks.runner.Runner` (``sh``, argv lists only) and the
calls are few, because each one costs a few milliseconds: ``status`` and ``list`` are one
``list-panes`` each, ``start`` is one lookup plus ONE invocation that chains every command with
tmux's ``;`` separator (plus one ``kill-session`` when it replaces an exited leftover), ``stop``
is a lookup, ``send-keys``, a short poll and ``kill-session``.

Why it is built the way it is (each point was checked against tmux 3.3a):

* **Exact targets.** ``-t astro`` would match ``astro-dev`` by prefix, so sessions are always
  ``=name`` and panes/windows ``=name:``; once a pane is known, its id (``%12``) is used, which is
  exact by construction. ``list-panes -s -t =name`` (without the colon) and ``display-message``
  with any missing target both silently fall back to another session or pane, so neither is
  ever used to probe for existence.
* **Atomic start.** ``new-session ; set-option remain-on-exit on ; set-option @kstlib ... ;
  pipe-pane ... ; list-panes`` is one client message, which the server runs in one pass of its
  command queue. The death of the child and its output are only noticed later in the event loop,
  so even a command that exits at once keeps its exit status and has all of its output in the
  log.
* **No intermediate shell.** tmux runs a one-word command through ``sh -c`` but execs two or more
  words directly; the command is therefore run as ``env -- ARGV...``: ``env`` execs the program
  in place, so ``pane_pid`` IS the command's process (what ``status`` reports and what gets the
  signals), and a program that cannot be executed leaves a clear ``env: ...`` line in the log and
  exit status 126/127 instead of tmux's silent exit 1.
* **tmux's own parsing of arguments.** Any argument that ENDS with ``;`` is taken as a command
  separator (``\\;`` escapes it), and ``-c`` and ``pipe-pane`` arguments are format-expanded
  (``#`` must be ``##``). :func:`tmux_args` and :func:`escape_format` take care of both, so
  values reach the process exactly as given.
* **Managed sessions** carry the pane options ``@kstlib`` and ``@kstlib_command``. Being pane
  options they mark the very pane that runs the command, so a user who attaches and opens more
  windows does not change what ``status`` reports; they are read back in the same single
  ``list-panes`` call as everything else.
* **Logs** are the pane's output piped (``pipe-pane``) into ``python logstore.py PATH``, which
  appends to the per-user state file with rotation (see :mod:`kstlib_tasks.logstore`, bound by
  ``KSTLIB_LOG_MAX_BYTES``, default 1 MiB, at most about twice that on disk). The file is reset
  at each start and kept after the session ends or is stopped. A marker file per start, removed
  by the copier's shell once it has written everything, lets ``stop`` return only when the log
  is complete (even for a session stopped before the copier's Python had started). Sessions
  not started by kstlib have no such file; their logs come from ``capture-pane``, without blank
  screen padding. The terminal echoes the C-c of a graceful stop as ``^C`` into the log.
* **tmux 3.3a sometimes misses a pane's SIGCHLD** (the pane shows dead without a status and
  the process stays a zombie of the server): the exit code is then read from the zombie's
  ``/proc/PID/stat`` (Linux), see :meth:`TmuxBackend._complete`.
* **Environment.** The pane gets the tmux server's environment (as any tmux window does) plus
  the spec's ``env`` and the caller's ``PATH``: the command is found where the caller would find
  it, however old the server is, and the start-time check for a missing program agrees with what
  the pane will do.
"""

from __future__ import annotations

import glob
import os
import secrets
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from .. import logstore
from ..errors import (
    BackendError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
    ValidationError,
)
from ..models import BackendName, SessionSpec, SessionStatus, State
from ..runner import Result, Runner, first_line

MANAGED_OPTION = "@kstlib"
COMMAND_OPTION = "@kstlib_command"
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
    ("current", "#{pane_current_command}"),
    ("command", "#{?#{" + MANAGED_OPTION + "},#{" + COMMAND_OPTION + "},#{pane_start_command}}"),
)
PANE_FORMAT = SEP.join(fmt for _, fmt in _FIELDS)

_POLL_FIRST = 0.01
_POLL_MAX = 0.1
_KILL_WAIT = 5.0
_SETTLE = 1.0
_DRAIN_WAIT = 3.0  # after SIGKILL the pane must be dead quickly; bounded so stop never hangs


# --------------------------------------------------------------------------- pure helpers


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


def program_argv(command: Sequence[str]) -> list[str]:
    """What the pane runs: ``env -- ARGV`` (see the module docstring), nothing for the shell."""
    return ["env", "--", *command] if command else []


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


def iso_utc(epoch: str | int | None) -> str | None:
    """``2026-11-25T14:06:11Z`` from a Unix time (same shape as the container backend)."""
    try:
        value = int(epoch) if epoch is not None else 0
    except ValueError:
        return None
    if value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@dataclass(frozen=True)
class PaneInfo:
    """One row of ``list-panes``: the facts a status is made of, plus the pane id to target."""

    session: str
    pane_id: str
    pid: int | None
    dead: bool
    exit_code: int | None
    in_mode: bool
    focus: bool
    managed: bool
    created: int | None
    current_command: str
    command: str

    def to_status(self, socket: str | None) -> SessionStatus:
        """The shared status shape; a dead pane has no pid (its process is gone)."""
        backend: BackendName = "tmux"
        return SessionStatus(
            name=self.session,
            backend=backend,
            state=State.EXITED if self.dead else State.RUNNING,
            pid=None if self.dead else self.pid,
            exit_code=self.exit_code if self.dead else None,
            created_at=iso_utc(self.created),
            managed=self.managed,
            command=self.command or self.current_command or None,
            socket=socket,
        )


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


def already_running(name: str) -> SessionAlreadyRunningError:
    return SessionAlreadyRunningError(f"session '{name}' is already running (tmux)", session=name)


def last_lines(lines: list[str], count: int | None) -> list[str]:
    """The last ``count`` lines (all when None, none for 0)."""
    if count is None:
        return lines
    return lines[-count:] if count > 0 else []


# --------------------------------------------------------------------------- the backend


class TmuxBackend:
    """Sessions on one tmux server (``-L socket``, or the default server)."""

    name: BackendName = "tmux"

    def __init__(self, binary: str = "tmux", socket: str | None = None, *,
                 timeout: float = 30.0):
        # Cheap on purpose: built for every configured socket, even when never called.
        self.binary = binary
        self.socket = socket
        self.runner = Runner(binary, ("-L", socket) if socket else (), timeout=timeout)

    # ----------------------------------------------------------------- calls

    def _call(self, *commands: Sequence[str]) -> Result:
        """Run tmux commands in one invocation; the caller inspects the outcome.

        A server exits when its last session goes; a client that connects in that instant gets
        "server exited unexpectedly" and nothing of its commands ran. That is exactly what a
        ``restart`` of the only session does, so such a call is made once more (it then finds
        no server, or starts a new one for ``new-session``).
        """
        argv = tmux_args(*commands)
        result = self.runner.run(*argv, check=False)
        if result.exit_code != 0 and "server exited unexpectedly" in result.stderr:
            result = self.runner.run(*argv, check=False)
        return result

    def _failure(self, what: str, result: Result, name: str | None = None) -> BackendError:
        detail = first_line(result.stderr) or first_line(result.stdout) or "no output"
        return BackendError(f"tmux {what} failed ({result.exit_code}): {detail}", session=name)

    def _call_unless_gone(self, command: Sequence[str], name: str | None = None) -> Result | None:
        """One tmux command on a target that may have gone: None then, BackendError for any
        other failure (a session can end between two calls: that is not an error)."""
        result = self._call(command)
        if result.exit_code == 0:
            return result
        if not_found(result.stderr):
            return None
        raise self._failure(command[0], result, name)

    def _find(self, name: str) -> PaneInfo | None:
        """The pane standing for session ``name`` exactly, or None (one call)."""
        result = self._call_unless_gone(
            ["list-panes", "-s", "-t", f"={name}:", "-F", PANE_FORMAT], name
        )
        if result is None:
            return None
        pane = session_panes(parse_panes(result.stdout)).get(name)
        return self._complete(pane) if pane is not None else None

    def _pane(self, pane_id: str) -> PaneInfo | None:
        """Re-read one pane by id; None once it is gone."""
        result = self._call_unless_gone(["list-panes", "-t", pane_id, "-F", PANE_FORMAT])
        if result is None:
            return None
        for pane in parse_panes(result.stdout):
            if pane.pane_id == pane_id:
                return self._complete(pane)
        return None

    def _complete(self, pane: PaneInfo) -> PaneInfo:
        """Fill in the exit code tmux failed to learn, from the unreaped process itself.

        tmux 3.3a sometimes misses the SIGCHLD of a pane's process (seen reliably with a
        process that handles the C-c of ``send-keys`` and exits a little later): the pane is
        dead, ``pane_dead_status`` stays empty and the process stays a zombie of the server.
        A zombie keeps its pid (no reuse) and its wait status is in ``/proc`` (Linux).
        """
        if not pane.dead or pane.exit_code is not None or pane.pid is None:
            return pane
        try:
            stat = Path(f"/proc/{pane.pid}/stat").read_text()
        except OSError:
            return pane
        code = zombie_exit_code(stat)
        return replace(pane, exit_code=code) if code is not None else pane

    def log_path(self, name: str) -> Path:
        """The file keeping the output of ``name`` on this server."""
        return logstore.log_path("tmux", self.socket, name)

    # ----------------------------------------------------------------- Backend protocol

    def status(self, name: str) -> SessionStatus | None:
        """Live status of ``name`` (running or exited), None when no such session exists."""
        pane = self._find(name)
        return pane.to_status(self.socket) if pane is not None else None

    def list(self) -> list[SessionStatus]:
        """Every session of the server, kstlib's or not, from one ``list-panes -a`` call."""
        result = self._call(["list-panes", "-a", "-F", PANE_FORMAT])
        if result.exit_code != 0:
            if no_server(result.stderr):
                return []
            raise self._failure("list-panes", result)
        return [self._complete(pane).to_status(self.socket) for pane in
                session_panes(parse_panes(result.stdout)).values()]

    def start(self, spec: SessionSpec) -> SessionStatus:
        """Start ``spec`` detached in one tmux call; an exited leftover of that name is removed
        first (its log copier drained) and replaced.

        Raises SessionAlreadyRunningError when it runs, ValidationError when the program cannot
        be found (nothing is started then).
        """
        name = spec.name
        current = self._find(name)
        if current is not None and not current.dead:
            raise already_running(name)
        cwd = spec.working_dir or os.getcwd()
        env = {"PATH": os.environ.get("PATH", os.defpath), **spec.env}
        if spec.command:
            check_program(spec, env["PATH"], cwd)
        log = self.log_path(name)
        if current is not None:
            # Remove the exited leftover first and let its log copier finish, so that none of
            # its output can land in the new run's log.
            self._kill_session(name)
            wait_drained(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        logstore.reset(log)
        log.touch()  # `logs` works (empty) even before the first output arrives
        marker = new_pipe_marker(log)

        pane = f"={name}:"
        new_session = ["new-session", "-d", "-s", name, "-c", escape_format(cwd)]
        for key, value in env.items():
            new_session += ["-e", f"{key}={value}"]
        program = program_argv(spec.command)
        if program:
            new_session += ["--", *program]
        commands: list[Sequence[str]] = [
            new_session,
            ["set-option", "-p", "-t", pane, "remain-on-exit", "on"],
            ["set-option", "-p", "-t", pane, MANAGED_OPTION, "1"],
            ["set-option", "-p", "-t", pane, COMMAND_OPTION, command_text(spec.command)],
            ["pipe-pane", "-t", pane, escape_format(pipe_command(log, marker))],
            ["list-panes", "-t", pane, "-F", PANE_FORMAT],
        ]
        result = self._call(*commands)
        if result.exit_code != 0:
            marker.unlink(missing_ok=True)
            if "duplicate session" in result.stderr:
                raise already_running(name)
            # Nothing of that name was live before this call: whatever exists now is ours.
            self._call(["kill-session", "-t", f"={name}"])
            raise self._failure("new-session", result, name)
        started = parse_panes(result.stdout)
        if started:
            return self._complete(started[0]).to_status(self.socket)
        found = self._find(name)
        if found is None:
            raise BackendError("tmux started the session but it vanished at once", session=name)
        return found.to_status(self.socket)

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop ``name`` and remove the session; returns its last status (exited, exit code).

        Graceful: C-c to the command's pane, then poll until the process is gone (at most
        ``timeout`` seconds), so a SIGINT handler can finish its clean-up. Force, or a process
        still alive after ``timeout``: SIGKILL to its process group. A tmux ``kill-session``
        alone would only send SIGHUP, which a process can ignore and outlive.
        """
        pane = self._find(name)
        if pane is None:
            raise SessionNotRunningError(f"session '{name}' is not running (tmux)", session=name)
        last: PaneInfo | None = pane
        if not pane.dead and not force:
            commands: list[Sequence[str]] = []
            if pane.in_mode:  # a pane left in copy mode would swallow the C-c
                commands.append(["send-keys", "-t", pane.pane_id, "-X", "cancel"])
            commands.append(["send-keys", "-t", pane.pane_id, "C-c"])
            result = self._call(*commands)
            if result.exit_code != 0 and not not_found(result.stderr):
                raise self._failure("send-keys", result, name)
            last = self._wait_dead(pane.pane_id, timeout)
        if (last is not None and not last.dead and last.pid is not None
                and kill_group(last.pid)):
            last = self._wait_dead(last.pane_id, _KILL_WAIT)
        self._kill_session(name)
        wait_drained(self.log_path(name))
        final = last or pane
        return final.to_status(self.socket).with_changes(
            state=State.EXITED, pid=None, exit_code=final.exit_code if final.dead else None
        )

    def _kill_session(self, name: str) -> None:
        """Remove session ``name``; already gone is fine."""
        self._call_unless_gone(["kill-session", "-t", f"={name}"], name)

    def _wait_dead(self, pane_id: str, timeout: float) -> PaneInfo | None:
        """Poll the pane until its process is gone or ``timeout`` passes; its last reading.

        None means the pane itself vanished (remain-on-exit turned off by hand): gone as well.
        Intervals grow from 10 ms to 100 ms, so a quick exit is noticed quickly.

        tmux marks a pane dead when its terminal closes, which can be a moment before it reaps
        the process and learns the exit status: a dead pane without a status is polled a little
        longer (at most ``_SETTLE`` seconds, for tmux versions that never tell a signal).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        settle: float | None = None
        interval = _POLL_FIRST
        while True:
            pane = self._pane(pane_id)
            if pane is None or (pane.dead and pane.exit_code is not None):
                return pane
            now = time.monotonic()
            if pane.dead:
                settle = settle if settle is not None else now + _SETTLE
                if now >= settle:
                    return pane
                remaining = settle - now
            else:
                remaining = deadline - now
            if remaining <= 0:
                return pane
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, _POLL_MAX)

    def logs(self, name: str, lines: int | None = None) -> list[str]:
        """The last ``lines`` lines of output: from the log file for kstlib's sessions (also
        after exit and stop), from the pane's screen and history for the others."""
        pane = self._find(name)
        path = self.log_path(name)
        if pane is not None and not pane.managed:
            return self._capture(pane, lines)
        if pane is None and not logstore.exists(path):
            raise SessionNotRunningError(
                f"session '{name}' is not running and has no saved output (tmux)", session=name
            )
        return logstore.tail(path, lines)

    def _capture(self, pane: PaneInfo, lines: int | None) -> list[str]:
        result = self._call_unless_gone(
            ["capture-pane", "-p", "-J", "-S", "-", "-t", pane.pane_id], pane.session
        )
        if result is None:
            raise SessionNotRunningError(
                f"session '{pane.session}' is not running (tmux)", session=pane.session
            )
        captured = strip_blank_tail([line.rstrip() for line in result.stdout.splitlines()])
        return last_lines(captured, lines)

    def attach(self, name: str) -> NoReturn:
        """Replace this process with ``tmux attach-session -t =name`` (``switch-client`` when
        already inside a client of this same server); Ctrl+B D detaches."""
        if self._find(name) is None:
            raise SessionNotRunningError(f"session '{name}' is not running (tmux)", session=name)
        if inside_server(self.socket):
            self.runner.exec(*tmux_args(["switch-client", "-t", f"={name}"]))
        self.runner.exec(*tmux_args(["attach-session", "-t", f"={name}"]))


# --------------------------------------------------------------------------- OS-side helpers


def check_program(spec: SessionSpec, path: str, cwd: str) -> None:
    """Refuse to start a command whose program cannot be found, with a clear reason.

    Looked up the way ``env`` in the pane will: in ``path`` for a bare name, relative to the
    working directory for a path. Failures only visible at exec time (a bad ``#!`` line) still
    end as an ``exited`` session with ``env``'s message in the log.
    """
    program = spec.command[0]
    if "/" in program:
        candidate = os.path.join(cwd, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return
        reason = f"'{program}' is not an executable file (in {cwd})"
    else:
        if shutil.which(program, path=path) is not None:
            return
        reason = f"'{program}' not found in PATH"
    raise ValidationError("command", reason, session=spec.name)


def pipe_command(log: Path, marker: Path) -> str:
    """The shell command ``pipe-pane`` runs: the log store copying the pane's output.

    The file itself is run (it needs only the standard library), so it works whatever the pane's
    directory and whether or not the package is installed; the caller's size bound is passed
    along because the server's environment may predate it. When the copier has written
    everything (end of input: the session is gone) the shell removes ``marker``; see
    :func:`wait_drained`.
    """
    argv = [
        "env",
        f"KSTLIB_LOG_MAX_BYTES={logstore.max_bytes()}",
        sys.executable,
        str(Path(logstore.__file__).resolve()),
        str(log),
    ]
    return f"{shlex.join(argv)}; rm -f {shlex.quote(str(marker))}"


def new_pipe_marker(log: Path) -> Path:
    """Create the file that says "a copier may still be writing ``log``" (one per start).

    Created before tmux starts the copier, so it also covers the ~50 ms the copier's Python
    needs to start: a session that printed and was stopped at once still has its output.
    """
    marker = log.with_name(f"{log.name}.pipe-{secrets.token_hex(4)}")
    marker.touch()
    return marker


def wait_drained(log: Path, timeout: float = _DRAIN_WAIT) -> None:
    """Wait until every copier of ``log`` has finished writing (its marker removed).

    Called once the session is gone, so each copier is reading its last bytes. Bounded: a
    marker left by a copier that was killed outright is removed after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    interval = _POLL_FIRST
    while True:
        markers = list(log.parent.glob(f"{glob.escape(log.name)}.pipe-*"))
        if not markers:
            return
        if time.monotonic() >= deadline:
            for marker in markers:
                marker.unlink(missing_ok=True)
            return
        time.sleep(interval)
        interval = min(interval * 1.5, _POLL_MAX)


def kill_group(pid: int) -> bool:
    """SIGKILL the process group led by ``pid`` (its process, or it alone); True if sent.

    Only called while tmux still reports the pane alive, i.e. before tmux reaped ``pid``, so
    the pid cannot have been reused by another process.
    """
    for send in (os.killpg, os.kill):
        try:
            send(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            continue
        except PermissionError:
            return False
    return False


def socket_path(socket: str | None) -> str:
    """Where tmux puts the socket of ``-L socket`` (``$TMUX_TMPDIR/tmux-UID/NAME``)."""
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.realpath(os.path.join(base, f"tmux-{os.getuid()}", socket or "default"))


def inside_server(socket: str | None) -> bool:
    """True inside a tmux client of the server this backend talks to.

    Without ``-L`` tmux itself uses the server named in ``$TMUX``, so any ``$TMUX`` counts;
    with ``-L`` only when ``$TMUX`` names that socket (elsewhere ``switch-client`` cannot reach
    the session, and tmux's own refusal to nest is the right message).
    """
    current = os.environ.get("TMUX", "")
    if not current:
        return False
    if socket is None:
        return True
    return os.path.realpath(current.split(",")[0]) == socket_path(socket)
