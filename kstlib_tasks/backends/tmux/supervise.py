"""The program every kstlib tmux pane runs: ``supervise.sh`` beside this module.

It gives the command exactly the environment kstlib wrote to a private file (``env -i`` then
the file, so nothing of the tmux server's environment leaks in), and, for a restart policy,
restarts it with a growing delay (0.5 s doubling up to 30 s), keeps a one-line state file (runs,
restarts, last exit code, the command's pid), and never restarts what is being stopped. With no
policy it execs the command, so the pane's process is the command itself. A POSIX ``sh`` script
rather than Python: it stays resident for the session's life (see capture.py for the cost).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

SCRIPT = Path(__file__).with_name("supervise.sh")


class SupervisorState(NamedTuple):
    runs: int
    restarts: int
    exit_code: int | None
    pid: int | None
    phase: str


def argv(*, state: Path, stop: Path, policy: str, max_restarts: int, env_file: Path,
         command: list[str]) -> list[str]:
    """What the pane runs for a session with a restart policy."""
    return ["/bin/sh", str(SCRIPT), str(state), str(stop), policy, str(max_restarts),
            str(env_file), "--", *command]


def read_state(path: Path) -> SupervisorState | None:
    """The supervisor's last word on its command; None when there is no supervisor."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    values = dict(part.partition("=")[::2] for part in text.split())

    def number(key: str) -> int | None:
        raw = values.get(key, "")
        return int(raw) if raw.isdigit() else None

    return SupervisorState(runs=number("runs") or 0, restarts=number("restarts") or 0,
                           exit_code=number("exit"), pid=number("pid"),
                           phase=values.get("phase", ""))
