"""Exceptions that carry data; only the outermost layer (CLI, invoke task) turns them into text.

Every error the user can provoke derives from :class:`KstlibError`, whose ``str()`` is the one line
shown on stderr: what went wrong, for which session, and what to do about it.
"""

from __future__ import annotations

# Ctrl-C ends every front end with what a shell reports for SIGINT (128 + 2); invoke would say 1.
INTERRUPTED_EXIT = 130


class KstlibError(Exception):
    """Base of every error meant for the user (never shown with a traceback)."""

    exit_code = 1

    def __init__(self, message: str, *, session: str | None = None, hint: str | None = None):
        self.message = message
        self.session = session
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        """The single line shown to the user."""
        text = self.message
        if self.session is not None and f"'{self.session}'" not in text:
            text = f"session '{self.session}': {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class ConfigError(KstlibError):
    """The config file cannot be used at all (missing explicit path, YAML syntax, bad `ops:`)."""

    exit_code = 2


class ValidationError(KstlibError):
    """A value (from the config file, a CLI option or a task flag) is refused by the validators."""

    exit_code = 2

    def __init__(self, field: str, reason: str, *, session: str | None = None,
                 location: str | None = None):
        self.field = field
        self.reason = reason
        self.location = location
        prefix = f"{location}: " if location else ""
        who = f"session '{session}': " if session else ""
        super().__init__(f"{prefix}{who}{field}: {reason}", session=session)


class SessionNotFoundError(KstlibError):
    """The name is neither in the config nor live on any backend."""


class InvalidSessionError(KstlibError):
    """The name is in the config but its entry was refused by validation."""

    exit_code = 2


class SessionAlreadyRunningError(KstlibError):
    """Starting a session whose name is already running on that backend."""


class SessionNotRunningError(KstlibError):
    """Stopping, attaching or reading a session that is not live."""


class BackendNotFoundError(KstlibError):
    """A backend binary (tmux, podman, docker) is missing from PATH."""

    exit_code = 3


class ContainerRuntimeNotFoundError(BackendNotFoundError):
    """Neither podman nor docker can be found for a container session."""


class ImageNotFoundError(KstlibError):
    """The image of a container session is not present locally (we never pull)."""


class BackendError(KstlibError):
    """A backend command failed in a way we did not anticipate; the line quotes what it said."""
