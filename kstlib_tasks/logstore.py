"""Per-user log files that outlive the sessions they come from.

tmux forgets a pane's output when the session goes, and a container's logs go with the container;
users still want ``logs NAME`` after the process exited or was stopped. Every backend therefore
keeps a copy under the XDG state folder, one file per (backend, scope, session) where the scope is
the tmux socket or the container runtime.

Files are bounded: once ``current`` passes ``max_bytes`` it becomes ``<name>.log.1`` (replacing
the previous one) and a new file starts, so a session never keeps more than about twice
``max_bytes`` on disk (default 1 MiB, ``KSTLIB_LOG_MAX_BYTES`` overrides).

Run as ``python -m kstlib_tasks.logstore PATH`` it copies stdin to PATH with that rotation: this
is the program tmux's ``pipe-pane`` feeds.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections import deque
from pathlib import Path

DEFAULT_MAX_BYTES = 1024 * 1024
_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]")


def max_bytes() -> int:
    try:
        return max(4096, int(os.environ.get("KSTLIB_LOG_MAX_BYTES", DEFAULT_MAX_BYTES)))
    except ValueError:
        return DEFAULT_MAX_BYTES


def state_dir() -> Path:
    """``$XDG_STATE_HOME/kstlib-tasks``, else ``~/.local/state/kstlib-tasks``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "kstlib-tasks"


def log_path(backend: str, scope: str | None, name: str) -> Path:
    """Where the output of session ``name`` is kept; ``scope`` is the socket or runtime."""
    parts = [_SAFE_PART.sub("_", p) for p in (backend, scope or "default", name)]
    return state_dir() / "logs" / parts[0] / parts[1] / f"{parts[2]}.log"


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def reset(path: Path) -> None:
    """Forget earlier output (a new run of the session starts a new log)."""
    for p in (path, rotated(path)):
        p.unlink(missing_ok=True)


def save(path: Path, text: str) -> None:
    """Replace the log with ``text`` (kept to the size bound), e.g. a container's last output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8", errors="replace")
    limit = max_bytes()
    if len(data) > limit:
        data = data[-limit:]
        cut = data.find(b"\n")
        data = data[cut + 1 :] if cut != -1 else data
    rotated(path).unlink(missing_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def tail(path: Path, lines: int | None = None) -> list[str]:
    """The last ``lines`` lines (all when None) of the log and its rotated part, without \\r.

    The two files are read as one text: rotation happens between two writes, not at a line
    break, so a line may start in ``.1`` and end in the current file. Both are bounded by
    ``max_bytes``, so reading them whole is cheap.
    """
    if lines == 0:
        return []
    data = b""
    for p in (rotated(path), path):
        try:
            data += p.read_bytes()
        except FileNotFoundError:
            continue
    text = io.StringIO(data.decode("utf-8", errors="replace"), newline="")
    keep: deque[str] = deque(maxlen=lines)
    for line in text:
        keep.append(line.rstrip("\r\n").replace("\r", ""))
    return list(keep)


def exists(path: Path) -> bool:
    return path.exists() or rotated(path).exists()


def copy_stream(source, path: Path, limit: int | None = None) -> None:
    """Append ``source`` (a binary stream) to ``path``, rotating past ``limit`` bytes."""
    limit = limit or max_bytes()
    # never more than the limit per read, so no file outgrows it by more than one chunk
    block = min(65536, limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.open("ab")
    size = out.tell()
    try:
        while True:
            chunk = source.read1(block) if hasattr(source, "read1") else source.read(block)
            if not chunk:
                break
            if size + len(chunk) > limit:
                out.close()
                os.replace(path, rotated(path))
                out = path.open("ab")
                size = 0
            out.write(chunk)
            out.flush()
            size += len(chunk)
    finally:
        out.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kstlib_tasks.logstore PATH", file=sys.stderr)
        return 2
    copy_stream(sys.stdin.buffer, Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
