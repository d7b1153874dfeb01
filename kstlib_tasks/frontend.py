"""What both front ends execute: one handler per verb, and the ONE place errors become exit codes.

The ``kstlib`` command (:mod:`kstlib_tasks.cli`) and the invoke tasks
(:mod:`kstlib_tasks.invoke_tasks`) parse their arguments from the same verb table
(:mod:`kstlib_tasks.verbs`) and then call :func:`run_verb`. Hints in error lines name the front
end in use: a ``kstlib`` user is told ``kstlib ops stop x``, an ``inv`` user ``inv x.stop``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import KstlibError, UsageError

if TYPE_CHECKING:
    from .manager import SessionManager
    from .opsconfig import OpsConfig


class ConfigSource:
    """Where the config comes from; loaded once, on first use, warnings printed once.

    The ``kstlib`` command sets :attr:`explicit` after parsing ``--config``, which is why the
    handlers hold this object rather than a loaded config.
    """

    def __init__(self, explicit: str | os.PathLike[str] | None = None, *,
                 cwd: Path | None = None):
        self.explicit = explicit
        self.cwd = cwd
        self.warn = True  # print the config's warnings when loading (check reports its own)
        self._config: OpsConfig | None = None
        self._manager: SessionManager | None = None
        self._error: KstlibError | None = None
        self.error_reported = False

    def load(self) -> OpsConfig:
        if self._error is not None:
            raise self._error
        if self._config is None:
            from .config import load_config

            try:
                self._config = load_config(self.explicit, cwd=self.cwd, warn=self.warn)
            except KstlibError as exc:
                self._error = exc
                raise
        return self._config

    def manager(self) -> SessionManager:
        if self._manager is None:
            from .manager import SessionManager

            self._manager = SessionManager(self.load())
        return self._manager

    def already_reported(self, exc: BaseException) -> bool:
        """True for the load error :func:`~.invoke_tasks.namespace` printed already."""
        return self.error_reported and exc is self._error


class Front:
    """One run of one front end: ``name`` is ``kstlib`` or ``inv``."""

    def __init__(self, source: ConfigSource, name: str = "kstlib"):
        self.source = source
        self.name = name

    def manager(self) -> SessionManager:
        return self.source.manager()


# --------------------------------------------------------------------------- running a verb


def run_verb(front: Front, verb: str, args: dict[str, Any]) -> int:
    """Run one verb; errors become one line on stderr and the exit code of the table."""
    try:
        values = _checked(verb, args)
        code = HANDLERS[verb](front, **values)
        sys.stdout.flush()
        return int(code or 0)
    except KstlibError as exc:
        if not front.source.already_reported(exc):
            _error_line(exc.line(front.name))
        return exc.exit_code
    except KeyboardInterrupt:
        return errors.INTERRUPTED
    except BrokenPipeError:
        # `kstlib ops logs x | head`: the reader left; nothing more to say.
        _silence_stdout()
        return errors.OK
    except Exception as exc:
        if os.environ.get("KSTLIB_DEBUG"):
            raise
        _error_line(f"unexpected error: {type(exc).__name__}: {exc} "
                    "(set KSTLIB_DEBUG=1 for details)")
        return errors.UNEXPECTED


def _error_line(text: str) -> None:
    from .render import printable

    print(printable(text), file=sys.stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except OSError:
        pass


def _checked(verb: str, args: dict[str, Any]) -> dict[str, Any]:
    """Flag values through the shared rules (a bad ``-n abc`` is exit 2 on both fronts)."""
    if args.get("names") == []:
        from .verbs import table

        if table()[verb].names == "many":  # `inv ops.logs ,` names nothing once split
            raise UsageError(f"'{verb}' needs at least one session NAME")
    given = [k for k, v in args.items()
             if k not in ("name", "names") and v not in (None, []) and not isinstance(v, bool)]
    if not given:
        return dict(args)  # nothing to check: the table (and every backend) stays unloaded
    from .verbs import table

    flags = {f.dest: f for f in table()[verb].flags}
    clean = dict(args)
    for dest, value in args.items():
        flag = flags.get(dest)
        if flag is None or flag.field is None or value is None or isinstance(value, bool):
            continue
        from .validation import check

        clean[dest] = check(flag.field, value)
    return clean


# --------------------------------------------------------------------------- output helpers


def out(text: str = "") -> None:
    print(text)


def _out_flushed(text: str) -> None:
    print(text, flush=True)


_PROGRESS = threading.Lock()


def progress(line: str) -> None:
    """One event of a long command, on stderr, as it happens.

    Called from the threads of ``up``/``down``/``wait``: one write per line under a lock
    (``print`` writes the text and the newline separately, so two lines could run together).
    """
    from .render import printable

    with _PROGRESS:
        sys.stderr.write(printable(line) + "\n")
        sys.stderr.flush()


def _color() -> bool:
    from .render import use_color

    return use_color(sys.stdout)


def _describe(status: Any) -> str:
    from . import backends
    from .render import printable

    where = status.backend
    if status.scope:  # in the backend's words: "socket NAME", "runtime podman"...
        details = backends.get(status.backend).scope_details(status.scope)
        where += "".join(f", {key.replace('_', ' ')} {value}"
                         for key, value in details.items() if value)
    if status.pid:
        where += f", pid {status.pid}"
    return printable(f"{status.name} ({where})")


# --------------------------------------------------------------------------- the handlers


def _list(front: Front, json: bool = False, backend: str | None = None) -> int:
    from . import render

    statuses = front.manager().list(backend=backend)
    out(render.list_json(statuses) if json else render.table(statuses, color=_color()))
    return 0


def _status(front: Front, name: str, json: bool = False) -> int:
    from . import render

    status = front.manager().status(name)
    out(render.status_json(status) if json else render.details(status, color=_color()))
    return 0


def _start_flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in ("wait", "timeout", "force", "json")}


def _start(front: Front, name: str, wait: bool = False, timeout: float | None = None,
           **flags: Any) -> int:
    manager = front.manager()
    status = manager.start(name, **_start_flags(flags))
    out(f"started {_describe(status)}")
    if wait:
        from .engine import stack

        return stack.wait(manager, [name], timeout=timeout, json=False, report=progress,
                          front=front.name)
    return 0


def _stop(front: Front, name: str, force: bool = False, timeout: float | None = None) -> int:
    status = front.manager().stop(name, force=force, timeout=10.0 if timeout is None else timeout)
    out(f"stopped {name} ({status.backend})")
    return 0


def _restart(front: Front, name: str, force: bool = False, timeout: float | None = None,
             wait: bool = False, **flags: Any) -> int:
    manager = front.manager()
    status = manager.restart(name, force=force, timeout=10.0 if timeout is None else timeout,
                             **_start_flags(flags))
    out(f"restarted {_describe(status)}")
    if wait:
        from .engine import stack

        return stack.wait(manager, [name], timeout=None, json=False, report=progress,
                          front=front.name)
    return 0


def _logs(front: Front, names: list[str], lines: int | None = None,
          follow: bool = False) -> int:
    from .engine import follow as following

    write = _out_flushed if follow else out
    return following.show(front.manager(), names, lines=lines, follow=follow, write=write,
                          warn=progress, front=front.name)


def _attach(front: Front, name: str) -> int:
    front.manager().attach(name)
    return 0


def _up(front: Front, names: list[str], wait: bool = False, timeout: float | None = None,
        no_recreate: bool = False, json: bool = False) -> int:
    from .engine import stack

    return stack.up(front.manager(), names, wait=wait, timeout=timeout, recreate=not no_recreate,
                    json=json, report=progress, front=front.name)


def _down(front: Front, names: list[str], force: bool = False, timeout: float | None = None,
          json: bool = False) -> int:
    from .engine import stack

    return stack.down(front.manager(), names, force=force,
                      timeout=10.0 if timeout is None else timeout, json=json, report=progress,
                      front=front.name)


def _wait(front: Front, names: list[str], timeout: float | None = None,
          json: bool = False) -> int:
    from .engine import stack

    return stack.wait(front.manager(), names, timeout=timeout, json=json, report=progress,
                      front=front.name)


def _export(front: Front, names: list[str], format: str | None = None,
            output: str | None = None) -> int:
    from .export import build

    if format is None:
        raise UsageError("option --format is required: kubernetes or compose",
                         hint=lambda name: "see: kstlib ops export --help" if name == "kstlib"
                         else "see: inv --help ops.export")
    exported = build(front.source.load(), format, names)
    for note in exported.notes:
        progress(f"note: {note}")
    if output is None or output == "-":
        sys.stdout.write(exported.text)
        return 0
    write_file(Path(output), exported.text)
    progress(f"wrote {output} ({len(exported.sessions)} session"
             f"{'' if len(exported.sessions) == 1 else 's'}: {', '.join(exported.sessions)})")
    return 0


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """``text`` into ``path`` with ``mode``, whole or not at all: written next to it, then
    renamed over it (an existing file keeps its content when writing fails)."""
    import tempfile

    from .errors import KstlibError

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise KstlibError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise KstlibError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check(front: Front, json: bool = False) -> int:
    from .engine import check

    front.source.warn = False
    return check.run(front.source, json=json, write=out)


HANDLERS: dict[str, Callable[..., int]] = {
    "list": _list,
    "status": _status,
    "start": _start,
    "stop": _stop,
    "restart": _restart,
    "logs": _logs,
    "attach": _attach,
    "up": _up,
    "down": _down,
    "wait": _wait,
    "export": _export,
    "check": _check,
}
