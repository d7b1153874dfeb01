"""``logs``: the output of one or several sessions (or groups), optionally followed.

With several sessions each line is prefixed with its session's name, as compose and foreman
do; ``--lines N`` applies per session. ``--follow`` prints new lines as they come and ends
when every followed session has ended (exit 0), or at Ctrl-C (exit 130).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import KstlibError, SessionNotRunningError

if TYPE_CHECKING:
    from ..manager import SessionManager


def expand_targets(manager: SessionManager, names: list[str]) -> list[str]:
    """Session names for the given names and groups (a name may be a live, unconfigured one)."""
    groups = manager.config.groups()
    found: list[str] = []
    for name in names:
        members = groups.get(name) if name not in manager.config.sessions else None
        for member in members or [name]:
            if member not in found:
                found.append(member)
    return found


def show(manager: SessionManager, names: list[str], *, lines: int | None, follow: bool,
         write: Callable[[str], None], warn: Callable[[str], None],
         front: str = "kstlib") -> int:
    from ..render import printable

    targets = expand_targets(manager, names)
    width = max(len(n) for n in targets)

    def prefix(name: str) -> str:
        return f"{name.ljust(width)} | " if len(targets) > 1 else ""

    if not follow:
        if len(targets) == 1:
            for line in manager.logs(targets[0], lines):
                write(printable(line))
            return 0
        failed = 0
        for name in targets:
            try:
                output = manager.logs(name, lines)
            except KstlibError as exc:
                warn(f"warning: {exc.line(front)}")
                failed += 1
                continue
            for line in output:
                write(prefix(name) + printable(line))
        return 1 if failed else 0
    sources = []
    failed = 0
    for name in targets:
        try:
            _, place, _ = manager.find(name)
            if place is None:
                # nothing live: what was kept, then nothing more to follow
                for line in manager.logs(name, lines):
                    write(prefix(name) + printable(line))
                continue
        except KstlibError as exc:
            if len(targets) == 1:
                raise
            # one that never ran (skipped by a failed up) must not hide the others' output
            warn(f"warning: {exc.line(front)}")
            failed += 1
            continue
        sources.append((name, manager.places.backend(place)))
    if not sources:
        return 1 if failed else 0
    lines_queue: queue.Queue[tuple[str, str | None]] = queue.Queue(maxsize=10000)
    stop = threading.Event()
    errors: list[KstlibError] = []

    def pump(name: str, backend: object) -> None:
        try:
            for line in backend.follow(name, lines, stopped=stop.is_set):  # type: ignore[attr-defined]
                lines_queue.put((name, line))
        except SessionNotRunningError:
            pass
        except KstlibError as exc:
            errors.append(exc)
        finally:
            lines_queue.put((name, None))

    threads = [threading.Thread(target=pump, args=source, daemon=True) for source in sources]
    for thread in threads:
        thread.start()
    open_count = len(threads)
    try:
        while open_count:
            name, piece = lines_queue.get()
            if piece is None:
                open_count -= 1
                continue
            write(prefix(name) + printable(piece))
    finally:
        stop.set()
    for error in errors:
        warn(f"warning: {error.line(front)}")
    return 1 if errors or failed else 0
