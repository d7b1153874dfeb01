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
* **The caller's environment.** A pane gets the tmux SERVER's environment, i.e. that of whoever
  started the server first. Instead, the command's whole environment (the caller's, minus
  tmux's own ``TMUX``/``TMUX_PANE``, plus the config's ``env`` and ``--env``) is written to a
  private file and the pane runs :mod:`~.supervise`'s script, which starts the command with
  ``env -i`` and that file: the command sees exactly that environment, whatever started the
  server. Without a restart policy it execs the command, so ``pane_pid`` IS the command's
  process (what ``status`` reports and what gets the signals); with one, it stays as the pane's
  process and restarts the command, and its state file names the command's pid.
* **tmux's own parsing of arguments.** Any argument that ENDS with ``;`` is taken as a command
  separator (``\\;`` escapes it), and ``-c`` and ``pipe-pane`` arguments are format-expanded
  (``#`` must be ``##``): :func:`~.panes.tmux_args` and :func:`~.panes.escape_format`.
* **Managed sessions** carry pane options (``@kstlib``, the command as written, the fingerprint of
  what was started, the run id). Being pane options they mark the very pane that runs the
  command, and they are read back in the same single ``list-panes`` call as everything else.
* **Logs** are the pane's output piped (``pipe-pane``) into a small copier
  (:mod:`kstlib_tasks.backends.tmux.capture`) appending to the per-user state file with
  rotation. A marker file per start, removed once the copier has written everything, lets
  ``stop`` return only when the log is complete.
* **Graceful stop** sends C-c to the pane (SIGINT to its foreground process group), waits for the
  command, then signals (SIGTERM, later SIGKILL) whatever is left of its process group within
  the same timeout: a script's background children (``cmd &`` ignores SIGINT) do not outlive
  the session. A child that called ``setsid`` left the group and is out of reach.
* **tmux 3.3a sometimes misses a pane's SIGCHLD** (the pane shows dead without a status and
  the process stays a zombie of the server): the exit code is then read from the zombie's
  ``/proc/PID/stat`` (Linux), see :meth:`TmuxBackend._complete`.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ... import logstore
from ...errors import BackendError, KstlibError, ValidationError
from ...models import SessionStatus, State
from ...runner import Result, Runner, first_line
from ..base import (
    Backend,
    Launch,
    Lines,
    folder_problem,
    iso_utc,
    last_lines,
    program_problem,
    wait_until,
)
from . import supervise
from .panes import (
    COMMAND_OPTION,
    FINGERPRINT_OPTION,
    MANAGED_OPTION,
    PANE_FORMAT,
    PaneInfo,
    command_text,
    env_file_text,
    escape_format,
    no_server,
    not_found,
    parse_panes,
    session_panes,
    socket_path,
    strip_blank_tail,
    tmux_args,
    zombie_exit_code,
)

_KILL_WAIT = 5.0
_SETTLE = 1.0
_DRAIN_WAIT = 3.0  # after SIGKILL the pane must be dead quickly; bounded so stop never hangs


def scope_key(socket: str | None) -> str:
    """The log folder of a tmux server: its socket's name plus a digest of its full path.

    Two servers of the same name under different ``TMUX_TMPDIR`` are different servers and must
    never write into one file.
    """
    path = socket_path(socket)
    digest = hashlib.sha256(path.encode()).hexdigest()[:10]
    return f"{os.path.basename(path)}-{digest}"


class TmuxBackend(Backend):
    """Sessions on one tmux server: ``-L NAME``, ``-S PATH`` or the default server."""

    kind = "tmux"

    def __init__(self, socket: str | None = None, *, binary: str = "tmux",
                 timeout: float = 30.0):
        # Cheap on purpose: built for every configured socket, even when never called.
        super().__init__(socket)
        self.binary = binary
        if socket and socket.startswith("/"):
            base: tuple[str, ...] = ("-S", socket)
        else:
            base = ("-L", socket) if socket else ()
        self.runner = Runner(binary, base, timeout=timeout)

    @property
    def log_key(self) -> str:
        return scope_key(self.scope)

    def where(self) -> str:
        return "tmux" if self.scope is None else f"tmux {os.path.basename(self.scope)}"

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
        return self.unless_gone(self._call(command), not_found,
                                lambda result: self._failure(command[0], result, name))

    def _find(self, name: str) -> PaneInfo | None:
        """The pane standing for session ``name`` exactly, or None (one call)."""
        result = self._call_unless_gone(
            ["list-panes", "-s", "-t", f"={name}:", "-F", PANE_FORMAT], name
        )
        if result is None:
            return None
        pane = session_panes(parse_panes(result.stdout)).get(name)
        return self._complete(pane) if pane is not None else None

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
        return pane._replace(exit_code=code) if code is not None else pane

    def _file(self, name: str, suffix: str) -> Path:
        """A per-session state file beside its log (env, supervisor state, stop request)."""
        log = self.log_path(name)
        return log.with_name(f"{log.stem}.{suffix}")

    # ----------------------------------------------------------------- statuses

    def _to_status(self, pane: PaneInfo) -> SessionStatus:
        """The shared status shape; a dead pane has no pid (its process is gone)."""
        pid = None if pane.dead else pane.pid
        restarts = None
        note = None
        recorded: dict[str, Any] | None = None
        if pane.managed:
            state = supervise.read_state(self._file(pane.session, "run"))
            restarts = 0  # until the supervisor has written its first state
            if state is not None:
                restarts = state.restarts
                if not pane.dead:
                    pid = state.pid  # the command's; None while it waits to be restarted
            note = logstore.capture_error(self.log_path(pane.session))
            fingerprint = _json_object(pane.fingerprint)
            if fingerprint is not None:
                overrides = _json_object(_read(self._file(pane.session, "overrides")))
                recorded = {"fp": fingerprint, "ov": overrides or {}}
        return SessionStatus(
            name=pane.session,
            backend=self.kind,
            state=State.EXITED if pane.dead else State.RUNNING,
            scope=self.scope,
            pid=pid,
            exit_code=pane.exit_code if pane.dead else None,
            created_at=iso_utc(pane.created),
            managed=pane.managed,
            command=pane.command or pane.current_command or None,
            restarts=restarts,
            recorded=recorded,
            details={"socket": self.scope},
            note=note,
        )

    def status(self, name: str) -> SessionStatus | None:
        """Live status of ``name`` (running or exited), None when no such session exists."""
        pane = self._find(name)
        return self._to_status(pane) if pane is not None else None

    def list(self) -> list[SessionStatus]:
        """Every session of the server, kstlib's or not, from one ``list-panes -a`` call."""
        result = self._call(["list-panes", "-a", "-F", PANE_FORMAT])
        if result.exit_code != 0:
            if no_server(result.stderr):
                return []
            raise self._failure("list-panes", result)
        return [self._to_status(self._complete(pane)) for pane in
                session_panes(parse_panes(result.stdout)).values()]

    # ----------------------------------------------------------------- start

    def start(self, launch: Launch) -> SessionStatus:
        """Start detached in one tmux call; an exited leftover of that name is removed first
        (its log copier drained) and replaced.

        Raises SessionAlreadyRunningError when it runs, ValidationError when the working
        directory or the program cannot be used (nothing is started then).
        """
        with self._name_lock(launch.spec.name):
            return self._start(launch)

    @contextlib.contextmanager
    def _name_lock(self, name: str, *, required: bool = True) -> Iterator[None]:
        """One start or stop of ``name`` at a time, across processes and threads.

        Two starts that both saw no session would otherwise both rewrite its env, state and
        log files, the loser's after the winner's command read them; a start landing while a
        stop finishes would have its new files removed by that stop. A held ``flock`` is
        released by the kernel even when the process is killed. A stop takes it best effort
        (``required=False``): a read-only or full state folder must not prevent a stop.
        """
        import fcntl

        path = self._file(name, "lock")
        try:
            logstore.private_dir(path.parent)
            fd = logstore.open_private(path, append=True)
        except OSError as exc:
            if not required:
                yield
                return
            raise BackendError(
                f"cannot write the state files of '{name}': {exc.strerror or exc} "
                f"({exc.filename})", session=name) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _start(self, launch: Launch) -> SessionStatus:
        spec = launch.spec
        name = spec.name
        cwd = spec.working_dir or os.getcwd()
        unusable = folder_problem(cwd)
        if unusable:
            raise ValidationError("working_dir", unusable, session=name)
        program = list(launch.argv) or [launch.env.get("SHELL") or "/bin/sh"]
        problem = program_problem(program, launch.env.get("PATH", os.defpath), cwd)
        if problem:
            raise ValidationError("command", problem, session=name)
        current = None if launch.fresh else self._find(name)
        if current is not None and not current.dead:
            raise self.already_running(name)
        log = self.log_path(name)
        if current is not None:
            # Remove the exited leftover first and let its log copier finish, so that none of
            # its output can land in the new run's log.
            self._kill_session(name)
            wait_drained(log)
        env_file = self._file(name, "env")
        try:
            logstore.prepare(log)
            for suffix in ("run", "stop"):
                self._file(name, suffix).unlink(missing_ok=True)
            write_private(env_file, env_file_text(dict(launch.env)))
            write_private(self._file(name, "overrides"), json.dumps(dict(launch.overrides)))
        except OSError as exc:  # a symlink planted there, a foreign folder, a full disk
            raise BackendError(
                f"cannot write the state files of '{name}': {exc.strerror or exc} "
                f"({exc.filename})", session=name) from None
        marker = new_pipe_marker(log)

        pane_program = supervise.argv(
            state=self._file(name, "run"), stop=self._file(name, "stop"),
            policy=spec.restart, max_restarts=spec.max_restarts, env_file=env_file,
            command=program)
        pane = f"={name}:"
        fingerprint = json.dumps(dict(launch.fingerprint), sort_keys=True, separators=(",", ":"))
        commands: list[Sequence[str]] = [
            ["new-session", "-d", "-s", name, "-c", escape_format(cwd), "--", *pane_program],
            ["set-option", "-p", "-t", pane, "remain-on-exit", "on"],
            ["set-option", "-p", "-t", pane, MANAGED_OPTION, "1"],
            ["set-option", "-p", "-t", pane, COMMAND_OPTION, command_text(launch.argv)],
            ["set-option", "-p", "-t", pane, FINGERPRINT_OPTION, fingerprint],
            ["pipe-pane", "-t", pane, escape_format(capture_command(log, marker))],
            ["list-panes", "-t", pane, "-F", PANE_FORMAT],
        ]
        result = self._call(*commands)
        if result.exit_code != 0:
            marker.unlink(missing_ok=True)
            if "duplicate session" in result.stderr:
                if launch.fresh:  # appeared since the engine looked: the careful way
                    return self._start(launch._replace(fresh=False))
                raise self.already_running(name)
            # Nothing of that name was live before this call: whatever exists now is ours.
            self._call(["kill-session", "-t", f"={name}"])
            raise self._failure("new-session", result, name)
        started = parse_panes(result.stdout)
        found = self._complete(started[0]) if started else self._find(name)
        if found is None:
            raise BackendError("tmux started the session but it vanished at once", session=name)
        return self._to_status(found)

    # ----------------------------------------------------------------- stop

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop ``name`` and remove the session; returns its last status (exited, exit code).

        Graceful: C-c to the command's pane, then poll until the process is gone (at most
        ``timeout`` seconds), so a SIGINT handler can finish its clean-up; then what is left of
        its process group gets SIGTERM, within the same timeout. Force, or anything still alive
        after ``timeout``: SIGKILL to the process group. A tmux ``kill-session`` alone would only
        send SIGHUP, which a process can ignore and outlive.
        """
        result = self.stop_many([name], timeout=timeout, force=force)[name]
        if isinstance(result, KstlibError):
            raise result
        return result

    def stop_many(self, names: Sequence[str], *, timeout: float = 10.0,
                  force: bool = False) -> dict[str, SessionStatus | KstlibError]:
        """Stop several sessions of this server together, as :meth:`stop` does one: one
        ``list-panes``, one ``send-keys`` call for all, one listing per poll, one
        ``kill-session`` call for all. Each name's lock is held throughout (taken in sorted
        order, so two overlapping stops never wait on each other in a circle)."""
        with contextlib.ExitStack() as locks:
            for name in sorted(set(names)):
                locks.enter_context(self._name_lock(name, required=False))
            return self._stop_many(names, timeout=timeout, force=force)

    def _stop_many(self, names: Sequence[str], *, timeout: float,
                   force: bool) -> dict[str, SessionStatus | KstlibError]:
        results: dict[str, SessionStatus | KstlibError] = {}
        panes = self._sessions()
        todo: dict[str, PaneInfo] = {}
        for name in names:
            pane = panes.get(name)
            if pane is None:
                results[name] = self.not_running(name)
            else:
                todo[name] = pane
        if not todo:
            return results
        deadline = time.monotonic() + max(0.0, timeout)
        for name, pane in todo.items():
            if pane.managed:
                # a supervisor must not restart what is being stopped: stop is final
                touch_private(self._file(name, "stop"))
        last: dict[str, PaneInfo | None] = {p.pane_id: p for p in todo.values()}
        alive = [p for p in todo.values() if not p.dead]
        if alive and not force:
            commands: list[Sequence[str]] = []
            for pane in alive:
                if pane.in_mode:  # a pane left in copy mode would swallow the C-c
                    commands.append(["send-keys", "-t", pane.pane_id, "-X", "cancel"])
                commands.append(["send-keys", "-t", pane.pane_id, "C-c"])
            if self._call(*commands).exit_code != 0:
                # one pane gone in between ends tmux's command list: send to each on its own
                for pane in alive:
                    self._call_unless_gone(["send-keys", "-t", pane.pane_id, "C-c"])
            last.update(self._wait_all_dead([p.pane_id for p in alive], timeout))
        killed = [p for p in last.values() if p is not None and not p.dead and p.pid is not None
                  and kill_group(p.pid)]
        if killed:
            last.update(self._wait_all_dead([p.pane_id for p in killed], _KILL_WAIT))
        for pane in todo.values():
            if pane.pid is not None:
                end_group(pane.pid, deadline=None if force else deadline, leader_gone=pane.dead)
        kills = [["kill-session", "-t", f"={name}"] for name in todo]
        if self._call(*kills).exit_code != 0:
            for name in todo:
                self._kill_session(name)
        for name, pane in todo.items():
            wait_drained(self.log_path(name))
            for suffix in ("env", "run", "stop", "overrides"):
                self._file(name, suffix).unlink(missing_ok=True)
            final_pane = last.get(pane.pane_id) or pane
            final = self._to_status(final_pane)
            results[name] = final.with_changes(
                state=State.EXITED, pid=None,
                exit_code=final.exit_code if final_pane.dead else None)
        return results

    def _sessions(self) -> dict[str, PaneInfo]:
        """The pane standing for each session of the server (one ``list-panes -a``)."""
        result = self._call(["list-panes", "-a", "-F", PANE_FORMAT])
        if result.exit_code != 0:
            if no_server(result.stderr):
                return {}
            raise self._failure("list-panes", result)
        return {name: self._complete(pane) for name, pane in
                session_panes(parse_panes(result.stdout)).items()}

    def _wait_all_dead(self, pane_ids: Sequence[str],
                       timeout: float) -> dict[str, PaneInfo | None]:
        """Poll (one listing per round) until each pane's process is gone or ``timeout``
        passes; the last reading of each (None: the pane itself vanished).

        tmux marks a pane dead when its terminal closes, which can be a moment before it reaps
        the process and learns the exit status: a dead pane without a status is polled a little
        longer (at most ``_SETTLE`` seconds, for tmux versions that never tell a signal).
        """
        seen: dict[str, PaneInfo | None] = {}
        pending = set(pane_ids)
        settle: dict[str, float] = {}

        def all_gone() -> bool | None:
            result = self._call(["list-panes", "-a", "-F", PANE_FORMAT])
            now_panes = {p.pane_id: p for p in parse_panes(result.stdout)} if (
                result.exit_code == 0) else {}
            now = time.monotonic()
            for pane_id in list(pending):
                found = now_panes.get(pane_id)
                pane = self._complete(found) if found is not None else None
                seen[pane_id] = pane
                if pane is None or (pane.dead and pane.exit_code is not None):
                    pending.discard(pane_id)
                elif pane.dead:
                    settle.setdefault(pane_id, now + _SETTLE)
                    if now >= settle[pane_id]:
                        pending.discard(pane_id)
            return True if not pending else None

        if wait_until(all_gone, timeout) is None and settle:
            wait_until(all_gone, max(settle.values()) - time.monotonic())
        return seen

    def _kill_session(self, name: str) -> None:
        """Remove session ``name``; already gone is fine."""
        self._call_unless_gone(["kill-session", "-t", f"={name}"], name)

    # ----------------------------------------------------------------- logs, attach

    def live_logs(self, name: str, lines: int | None) -> Lines | None:
        """kstlib's sessions: the log file (also while running); others: the pane's screen
        and history; None when there is no such session."""
        pane = self._find(name)
        if pane is None:
            return None
        if pane.managed:
            return logstore.tail(self.log_path(name), lines)
        return self._capture(pane, lines)

    def _capture(self, pane: PaneInfo, lines: int | None) -> Lines:
        result = self._call_unless_gone(
            ["capture-pane", "-p", "-J", "-S", "-", "-t", pane.pane_id], pane.session
        )
        if result is None:
            raise self.not_running(pane.session)
        captured = strip_blank_tail([line.rstrip() for line in result.stdout.splitlines()])
        return last_lines(captured, lines)

    def attach(self, name: str) -> NoReturn:
        """Replace this process with ``tmux attach-session -t =name`` (``switch-client`` when
        already inside a client of this same server); Ctrl+B D detaches."""
        if self._find(name) is None:
            raise self.not_running(name)
        if inside_server(self.scope):
            self.runner.exec(*tmux_args(["switch-client", "-t", f"={name}"]))
        self.runner.exec(*tmux_args(["attach-session", "-t", f"={name}"]))


# --------------------------------------------------------------------------- OS-side helpers


def capture_command(log: Path, marker: Path) -> str:
    from . import capture  # only a start needs it

    return capture.command(log, marker)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def write_private(path: Path, text: str) -> None:
    """``text`` into a 0600 file (never through a symlink), replacing what was there."""
    logstore.private_dir(path.parent)
    fd = logstore.open_private(path)
    try:
        os.write(fd, text.encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)


def touch_private(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(logstore.open_private(path, append=True))


def new_pipe_marker(log: Path) -> Path:
    """Create the file that says "a copier may still be writing ``log``" (one per start).

    Created before tmux starts the copier, so it also covers the time the copier needs to
    start: a session that printed and was stopped at once still has its output.
    """
    import secrets

    marker = log.with_name(f"{log.name}.pipe-{secrets.token_hex(4)}")
    touch_private(marker)
    return marker


def wait_drained(log: Path, timeout: float = _DRAIN_WAIT) -> None:
    """Wait until every copier of ``log`` has finished writing (its marker removed).

    Called once the session is gone, so each copier is reading its last bytes. Bounded: a
    marker left by a copier that was killed outright is removed after ``timeout``.
    """
    def drained() -> bool | None:
        return None if list(log.parent.glob(f"{glob.escape(log.name)}.pipe-*")) else True

    if wait_until(drained, timeout) is None:
        for marker in log.parent.glob(f"{glob.escape(log.name)}.pipe-*"):
            marker.unlink(missing_ok=True)


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


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from ``/proc`` (Linux)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def end_group(pgid: int, *, deadline: float | None, leader_gone: bool = False) -> None:
    """What is left of a finished command's process group: SIGTERM, then SIGKILL at
    ``deadline`` (at once when None). A group with no member left is not touched, so an id
    reused by an unrelated group later is never signalled.

    ``leader_gone``: the pane was already dead when the stop began, so tmux reaped its process
    long ago. Its leftovers (a ``cmd &`` that outlived it) keep the group alive, and while they
    do the id cannot be reused; but once they ended, a new process may have got that pid and
    lead a group of its own. A live process of exactly that pid therefore means another group:
    it is left alone."""
    members = group_members(pgid)
    if not members or (leader_gone and pgid in members):
        return
    if deadline is not None:
        with _suppress():
            os.killpg(pgid, signal.SIGTERM)
        if wait_until(lambda: None if group_members(pgid) else True,
                      deadline - time.monotonic()) is not None:
            return
    with _suppress():
        os.killpg(pgid, signal.SIGKILL)
    wait_until(lambda: None if group_members(pgid) else True, _KILL_WAIT)


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError, PermissionError)


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
