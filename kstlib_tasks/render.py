"""Turn statuses into text: a table for people, JSON for scripts.

Pure functions from :class:`SessionStatus` to ``str`` (no printing, no backend), so both front
ends render the same way and the tests need no terminal. Colour is decided by the caller with
:func:`use_color`: only on a terminal, never with ``NO_COLOR`` (https://no-color.org) or
``TERM=dumb``, so piped output stays plain text.

Every piece of text that reaches a terminal goes through :func:`printable`: a container made by
someone else may be called anything, and a name or command carrying escape sequences must not
be able to rewrite the user's screen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from .models import SessionStatus, State

COLUMNS = ("Name", "Backend", "State", "PID", "Image", "Exit", "Restarts")
# The lifecycle of the seed: defined dimmed, running green, exited red.
STYLES = {
    State.DEFINED: "\x1b[2m",
    State.RUNNING: "\x1b[32m",
    State.EXITED: "\x1b[31m",
    State.STOPPED: "\x1b[33m",
}
RESET = "\x1b[0m"
# The fields every JSON object carries, in this order (more may follow).
JSON_FIELDS = ("name", "backend", "state", "pid", "image", "exit_code", "created_at", "defined",
               "managed", "command", "scope", "restarts", "drifted", "drift")
DRIFT_MARK = "*"


def printable(text: Any) -> str:
    """``text`` with control and format characters escaped (``\\x1b`` shows as ``\\x1b``)."""
    value = str(text)
    if value.isprintable():
        return value
    import unicodedata  # only text that needs escaping pays for it

    out = []
    for ch in value:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) in ("Zs",):
            out.append(" ")
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def use_color(stream: TextIO) -> bool:
    """Colour only for a person looking at a terminal that wants it."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else printable(value)


def row(status: SessionStatus) -> tuple[str, ...]:
    """One table row: the exit code only means something once the command ended; a session
    that drifted from the config is marked ``*`` after its state."""
    exit_code = status.exit_code if status.state in (State.EXITED, State.STOPPED) else None
    state = status.state.value + (DRIFT_MARK if status.drifted else "")
    return (
        _cell(status.name),
        status.backend,
        state,
        _cell(status.pid),
        _cell(status.image),
        _cell(exit_code),
        _cell(status.restarts),
    )


def table(statuses: Sequence[SessionStatus], *, color: bool = False) -> str:
    """Aligned columns, one line per session; a legend when a row is marked as drifted.

    Whole lines are coloured (after padding), so escape codes never shift the columns.
    """
    rows = [row(s) for s in statuses]
    widths = [max(len(c) for c in column) for column in zip(COLUMNS, *rows, strict=False)]

    def line(cells: Iterable[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(COLUMNS)]
    for status, cells in zip(statuses, rows, strict=True):
        text = line(cells)
        style = STYLES.get(status.state) if color else None
        lines.append(f"{style}{text}{RESET}" if style else text)
    if any(s.drifted for s in statuses):
        lines.append(f"{DRIFT_MARK} drifted: runs something else than the config now says "
                     "(see status; up recreates it)")
    return "\n".join(lines)


def details(status: SessionStatus, *, color: bool = False) -> str:
    """``status NAME`` for people: one ``Key: value`` line per known field."""
    state = status.state.value
    if status.state == State.EXITED and status.exit_code is not None:
        state = f"{state} (exit code {status.exit_code})"
    if color and status.state in STYLES:
        state = f"{STYLES[status.state]}{state}{RESET}"
    drift = None
    if status.drifted:
        drift = "yes: " + ", ".join(status.drift) + " changed in the config since the start"
    elif status.drifted is False:
        drift = "no"
    pairs: list[tuple[str, Any]] = [
        ("Name", status.name),
        ("Backend", status.backend + (f" ({status.scope})" if status.scope else "")),
        ("State", state),
        ("PID", status.pid),
        ("Image", status.image),
        ("Command", status.command),
        ("Created", status.created_at),
        ("Restarts", status.restarts),
        ("Defined", "yes" if status.defined else "no"),
        ("Managed", "yes" if status.managed else "no"),
        ("Drifted", drift),
        ("Note", status.note),
    ]
    for key, value in status.details.items():
        if key not in ("socket", "runtime", "id", "restart") and value not in (None, ""):
            pairs.append((key.replace("_", " ").capitalize(), value))
    shown = [(k, v) for k, v in pairs if v not in (None, "")]
    width = max(len(k) for k, _ in shown) + 1
    return "\n".join(f"{(k + ':').ljust(width)} "
                     f"{v if k == 'State' else printable(v)}" for k, v in shown)


def as_json_object(status: SessionStatus) -> dict[str, Any]:
    """The documented fields first, then the backend's own (``socket``, ``runtime``...)."""
    data = status.as_dict()
    details = data.pop("details")
    ordered = {key: data.pop(key) for key in JSON_FIELDS}
    ordered.update(data)
    for key, value in details.items():
        ordered.setdefault(key, value)
    return ordered


def status_json(status: SessionStatus) -> str:
    return json.dumps(as_json_object(status), indent=2)


def list_json(statuses: Iterable[SessionStatus]) -> str:
    return json.dumps([as_json_object(s) for s in statuses], indent=2)
