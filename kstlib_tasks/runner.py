"""The one choke point for every tmux, podman and docker call.

All external commands go through :class:`Runner`, built on the ``sh`` library with the defaults
that matter here baked in once: no pseudo-terminal (``_tty_out=False``, so no pagers and no
80-column wrapping), the caller's whole environment plus additions (``sh``'s ``_env`` replaces it),
a timeout, and argv lists only. A missing binary becomes :class:`BackendNotFoundError` with an
install hint; a failed call becomes :class:`BackendError` quoting the first line of its stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import sh

from .errors import BackendError, BackendNotFoundError, EngineNotAnsweringError

log = logging.getLogger(__name__)

INSTALL_HINTS = {
    "tmux": "install it with: apt-get install tmux",
    "podman": "install it with: apt-get install podman runc",
    "docker": "install it with: apt-get install docker.io",
}


@dataclass(frozen=True)
class Result:
    """What a finished command printed and how it ended."""

    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Runner:
    """Runs one binary with fixed leading arguments (e.g. ``tmux -L sock``)."""

    def __init__(
        self,
        binary: str,
        base_args: Iterable[str] = (),
        *,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ):
        self.binary = binary
        self.base_args = tuple(base_args)
        self.timeout = timeout
        self.extra_env = dict(env or {})
        self._command: sh.Command | None = None

    def _resolve(self) -> sh.Command:
        # Looked up lazily so that building a Runner (at import or config time) costs nothing.
        if self._command is None:
            try:
                self._command = sh.Command(self.binary)
            except sh.CommandNotFound:
                name = os.path.basename(self.binary)
                hint = INSTALL_HINTS.get(name, f"install it or fix PATH ({name})")
                raise BackendNotFoundError(
                    f"'{self.binary}' not found in PATH", hint=hint
                ) from None
        return self._command

    def argv(self, *args: str) -> list[str]:
        """The full argv a call would run; for logs, exec and messages."""
        return [self.binary, *self.base_args, *args]

    def run(
        self,
        *args: str,
        timeout: float | None = None,
        check: bool = True,
    ) -> Result:
        """Run and wait. With ``check``, a non-zero exit code raises BackendError."""
        command = self._resolve()
        full = [*self.base_args, *args]
        log.debug("run: %s", shlex.join(self.argv(*args)))
        env = {**os.environ, **self.extra_env} if self.extra_env else None
        limit = timeout if timeout is not None else self.timeout
        kwargs: dict[str, Any] = {
            "_tty_out": False,
            "_return_cmd": True,
            "_ok_code": list(range(256)),
            "_decode_errors": "replace",
            # Not sh's `_timeout`: its watcher thread sleeps in 0.1 s steps and the call waits
            # for it, which made every call ~100 ms instead of ~7 ms. A Timer that kills the
            # process is cancelled at once when the command ends.
            "_bg": True,
            "_bg_exc": False,
        }
        if env is not None:
            kwargs["_env"] = env
        running = command(*full, **kwargs)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError):  # it may have ended just now
                running.kill()

        timer = threading.Timer(limit, expire) if limit else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        killed: int | None = None
        try:
            running.wait()
        except sh.ErrorReturnCode as exc:
            # every exit code is "ok" above: only a signal gets here (a timeout's kill, or one
            # sent by someone else, which must end as a one-line error, never a traceback)
            if not expired.is_set():
                killed = -exc.exit_code if exc.exit_code < 0 else exc.exit_code
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise BackendError(
                f"'{shlex.join(self.argv(*args))}' did not answer within {limit:g}s"
            )
        if killed is not None:
            raise BackendError(
                f"'{shlex.join(self.argv(*args))}' was killed by signal {killed}"
            )
        result = Result(
            stdout=_text(running.stdout),
            stderr=_text(running.stderr),
            exit_code=running.exit_code,
        )
        if not result.ok and engine_down(result.stderr):
            said = first_line(result.stderr)
            for prefix in (f"{os.path.basename(self.binary)}: ", "Error: ", "error: "):
                said = said.removeprefix(prefix)
            raise EngineNotAnsweringError(
                f"{os.path.basename(self.binary)}: the engine does not answer: {said}",
                hint="start it, or fix DOCKER_HOST / CONTAINER_HOST")
        if check and not result.ok:
            raise BackendError(
                f"'{shlex.join(self.argv(*args))}' failed ({result.exit_code}): "
                f"{first_line(result.stderr) or first_line(result.stdout) or 'no output'}"
            )
        return result

    def exec(self, *args: str) -> NoReturn:
        """Replace the current process (attach needs the real terminal, which sh cannot give)."""
        self._resolve()
        argv = self.argv(*args)
        log.debug("exec: %s", shlex.join(argv))
        if self.extra_env:
            os.execvpe(argv[0], argv, {**os.environ, **self.extra_env})
        os.execvp(argv[0], argv)


# What the docker and podman clients say when there is no engine behind their socket: no
# command can do anything then, whatever it was (exit code 3, like a missing program).
_ENGINE_DOWN = ("cannot connect to the docker daemon", "cannot connect to podman",
                "is the docker daemon running", "error during connect")


def engine_down(stderr: str) -> bool:
    low = stderr.lower()
    return any(marker in low for marker in _ENGINE_DOWN)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def first_line(text: str) -> str:
    """The first non-empty line, stripped: what goes into a one-line error."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
