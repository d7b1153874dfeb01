"""The supervisor that restarts a tmux session's command (interim until supervise.sh lands)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("supervise.sh")


@dataclass(frozen=True)
class SupervisorState:
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
