"""Exceptions that carry data, and the one table of exit codes.

Every error the user can provoke derives from :class:`KstlibError`; only the outermost layer
(:func:`kstlib_tasks.frontend.run_verb`, for both the ``kstlib`` command and the invoke tasks)
turns one into a line on stderr and an exit code. The line says what went wrong, for which
session, and what to do; the "what to do" names the front end in use (``kstlib ops stop x`` for a
``kstlib`` user, ``inv x.stop`` for an ``inv`` user), which is why a hint can be a
:class:`Suggest` (a verb and a session) rather than finished text.
"""

from __future__ import annotations

from collections.abc import Callable

# The exit codes, documented in the README; every verb of every front end uses this table.
OK = 0
FAILED = 1  # the operation failed: unknown session, already running, a session failed...
USAGE = 2  # bad command line, invalid value, unusable or untrusted config file
BACKEND_MISSING = 3  # tmux, podman or docker missing, or an engine that does not answer
TIMEOUT = 4  # a session was not ready (or not stopped) within the time given
UNEXPECTED = 70  # a bug: an exception nobody anticipated (EX_SOFTWARE)
INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT (128 + 2); invoke alone would say 1


class Suggest:
    """A command to suggest, spelled by the front end in use (``kstlib`` or ``inv``)."""

    __slots__ = ("name", "verb")

    def __init__(self, verb: str, name: str | None = None):
        self.verb = verb
        self.name = name

    def spell(self, front: str = "kstlib") -> str:
        if front == "inv":
            if self.name is None:
                return f"inv ops.{self.verb}"
            return f"inv {self.name}.{self.verb}"
        return f"kstlib ops {self.verb}" + (f" {self.name}" if self.name else "")


Hint = str | Suggest | Callable[[str], str] | None


def spell_hint(hint: Hint, front: str = "kstlib") -> str | None:
    if hint is None or isinstance(hint, str):
        return hint
    if isinstance(hint, Suggest):
        return f"see: {hint.spell(front)}" if hint.verb in ("list", "logs") else hint.spell(front)
    return hint(front)


class KstlibError(Exception):
    """Base of every error meant for the user (never shown with a traceback)."""

    exit_code = FAILED

    def __init__(self, message: str, *, session: str | None = None, hint: Hint = None):
        self.message = message
        self.session = session
        self.hint = hint
        super().__init__(self.line())

    def line(self, front: str = "kstlib") -> str:
        """The single line shown to the user of front end ``front`` (``kstlib`` or ``inv``)."""
        text = self.message
        if self.session is not None and f"'{self.session}'" not in text:
            text = f"session '{self.session}': {text}"
        hint = spell_hint(self.hint, front)
        if hint:
            text = f"{text} ({hint})"
        return text


class UsageError(KstlibError):
    """The command line itself is wrong (unknown option, missing value, missing NAME)."""

    exit_code = USAGE


class ConfigError(KstlibError):
    """The config file cannot be used at all (missing explicit path, YAML syntax, bad `ops:`,
    a file that is not trusted)."""

    exit_code = USAGE


class ValidationError(KstlibError):
    """A value (from the config file, a CLI option or a task flag) is refused by the validators."""

    exit_code = USAGE

    def __init__(self, field: str, reason: str, *, session: str | None = None,
                 location: str | None = None, hint: Hint = None):
        self.field = field
        self.reason = reason
        self.location = location
        prefix = f"{location}: " if location else ""
        who = f"session '{session}': " if session else ""
        super().__init__(f"{prefix}{who}{field}: {reason}", session=session, hint=hint)


class SessionNotFoundError(KstlibError):
    """The name is neither in the config nor live on any backend."""


class InvalidSessionError(KstlibError):
    """The name is in the config but its entry was refused by validation."""

    exit_code = USAGE


class SessionAlreadyRunningError(KstlibError):
    """Starting a session whose name is already running."""


class SessionNotRunningError(KstlibError):
    """Stopping, attaching or reading a session that is not live."""


class BackendNotFoundError(KstlibError):
    """A backend binary (tmux, podman, docker) is missing, or its engine does not answer."""

    exit_code = BACKEND_MISSING


class EngineNotAnsweringError(BackendNotFoundError):
    """The runtime's program is there but its engine (dockerd, podman's service) is not."""


class ContainerRuntimeNotFoundError(BackendNotFoundError):
    """Neither podman nor docker can be found for a container session."""


class ImageNotFoundError(KstlibError):
    """The image of a container session is not present locally (we never pull)."""


class BackendError(KstlibError):
    """A backend command failed in a way we did not anticipate; the line quotes what it said."""
