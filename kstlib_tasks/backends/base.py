"""The contract every backend fulfils, so the manager never needs to know which one it holds."""

from __future__ import annotations

from typing import NoReturn, Protocol

from ..models import BackendName, SessionSpec, SessionStatus


class Backend(Protocol):
    """Start, inspect, read, attach and stop sessions by exact name.

    Methods raise :mod:`kstlib_tasks.errors` exceptions (never sh's) so the front ends can turn
    them into one line.
    """

    name: BackendName

    def start(self, spec: SessionSpec) -> SessionStatus:
        """Start ``spec``; an exited/stopped leftover of that name is replaced, a running one is
        SessionAlreadyRunningError."""
        ...

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop gracefully (or at once with ``force``), keep the last output, remove the object.
        Returns the status just before removal. SessionNotRunningError when nothing is live."""
        ...

    def status(self, name: str) -> SessionStatus | None:
        """The live status, or None when nothing of that exact name exists."""
        ...

    def list(self) -> list[SessionStatus]:
        """Every live session of this backend (also those not started by kstlib), in ONE call."""
        ...

    def logs(self, name: str, lines: int | None = None) -> list[str]:
        """The last ``lines`` lines of output (all when None): live, exited or after stop."""
        ...

    def attach(self, name: str) -> NoReturn:
        """Replace the current process with the backend's attach command."""
        ...
