"""Per-user state: log files that outlive the sessions they come from, and the scopes used.

tmux forgets a pane's output when the session goes, and a container's logs go with the
container; users still want ``logs NAME`` after the process exited or was stopped. Every backend
therefore keeps a copy under the XDG state folder, one file per (backend, scope, session).

Output can hold secrets, so the state folder is private: folders are created 0700 and must be
owned by the user and not be symlinks, files are created 0600 and never opened through a
symlink (``O_NOFOLLOW``), temporary files are made with ``O_EXCL``.

Files are bounded: once ``NAME.log`` passes ``max_bytes`` it becomes ``NAME.log.1`` (replacing the
previous one) and a new file starts, so a session never keeps more than about twice
``max_bytes`` on disk (default 1 MiB, ``KSTLIB_LOG_MAX_BYTES`` overrides, at least 1 MiB: with
64 KiB a copier rotated so often that it fell behind a chatty program, and tmux buffered the rest
in its own memory, ~100 MB in 40 s of ``yes``).
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from collections import deque
from collections.abc import Iterable
from pathlib import Path

DEFAULT_MAX_BYTES = 1024 * 1024
MIN_MAX_BYTES = 1024 * 1024
_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]")
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class UnsafeStateError(OSError):
    """A state folder or file is not private to the user (symlink, other owner)."""


def max_bytes() -> int:
    try:
        return max(MIN_MAX_BYTES, int(os.environ.get("KSTLIB_LOG_MAX_BYTES", DEFAULT_MAX_BYTES)))
    except ValueError:
        return DEFAULT_MAX_BYTES


def state_dir() -> Path:
    """``$XDG_STATE_HOME/kstlib-tasks``, else ``~/.local/state/kstlib-tasks``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "kstlib-tasks"


def part(text: str | None) -> str:
    """A scope or name as one safe path component."""
    return _SAFE_PART.sub("_", text or "default")


def log_path(backend: str, scope: str | None, name: str) -> Path:
    """Where the output of session ``name`` is kept; ``scope`` names the server or runtime."""
    return state_dir() / "logs" / part(backend) / part(scope) / f"{part(name)}.log"


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def error_path(path: Path) -> Path:
    """Where a log copier that had to stop says why (disk full...)."""
    return path.with_name(path.name + ".error")


# --------------------------------------------------------------------------- private folders


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents up to the state folder) 0700; refuse foreign or linked ones.

    Only folders under the state folder are created private; the state folder's own parents
    (``~/.local/state``) are made as the user's umask says, like any XDG folder.
    """
    root = state_dir()
    chain = [path, *path.parents]
    inside = [p for p in chain if p == root or root in p.parents]
    for folder in reversed(inside):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder, 0o700)
        check_private(folder)
    if not inside:
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_private(folder: Path) -> None:
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeStateError(errno.EPERM, "state folder is a symlink or not a folder",
                               str(folder))
    if info.st_uid != os.getuid():
        raise UnsafeStateError(errno.EPERM, "state folder is owned by another user", str(folder))
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)


def open_private(path: Path, *, append: bool = False) -> int:
    """A file descriptor on ``path`` (created 0600), never through a symlink."""
    flags = _FILE_FLAGS | (os.O_APPEND if append else os.O_TRUNC)
    return os.open(path, flags, 0o600)


# --------------------------------------------------------------------------- log files


def reset(path: Path) -> None:
    """Forget earlier output (a new run of the session starts a new log)."""
    for p in (path, rotated(path), error_path(path)):
        p.unlink(missing_ok=True)


def prepare(path: Path) -> None:
    """A fresh, empty, private log for a new run (``logs`` answers before any output)."""
    private_dir(path.parent)
    reset(path)
    os.close(open_private(path))


class BoundedWriter:
    """Writes a stream into ``path`` keeping only about the last ``limit`` bytes.

    Memory stays at one chunk whatever the size of the stream: past ``limit`` the file is
    rotated to ``.1``, so the last ``limit`` to ``2 * limit`` bytes are kept on disk.
    """

    def __init__(self, path: Path, limit: int | None = None):
        self.path = path
        self.limit = limit or max_bytes()
        private_dir(path.parent)
        self.tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        self.tmp_rotated = path.with_name(f"{path.name}.{os.getpid()}.tmp.1")
        for p in (self.tmp, self.tmp_rotated):
            p.unlink(missing_ok=True)
        self.fd = os.open(self.tmp, _FILE_FLAGS | os.O_EXCL, 0o600)
        self.size = 0
        self.rotations = 0

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.limit and self.size:
            os.close(self.fd)
            os.replace(self.tmp, self.tmp_rotated)
            self.fd = os.open(self.tmp, _FILE_FLAGS | os.O_EXCL, 0o600)
            self.size = 0
            self.rotations += 1
        while data:
            written = os.write(self.fd, data)
            data = data[written:]
            self.size += written

    def commit(self) -> None:
        """Make the written text the log (replacing the previous one)."""
        os.close(self.fd)
        self.fd = -1
        if self.rotations:
            os.replace(self.tmp_rotated, rotated(self.path))
        else:
            rotated(self.path).unlink(missing_ok=True)
        os.replace(self.tmp, self.path)
        error_path(self.path).unlink(missing_ok=True)

    def discard(self) -> None:
        """Give up: nothing of this attempt stays on disk."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for p in (self.tmp, self.tmp_rotated):
            p.unlink(missing_ok=True)


def save_lines(path: Path, lines: Iterable[str]) -> None:
    """Replace the log with ``lines`` (bounded, streamed), e.g. a container's last output.

    OSError when the disk is full or read-only; nothing partial is left behind then.
    """
    writer = BoundedWriter(path)
    try:
        buffer: list[bytes] = []
        size = 0
        for line in lines:
            data = (line + "\n").encode("utf-8", errors="replace")
            buffer.append(data)
            size += len(data)
            if size >= 65536:
                writer.write(b"".join(buffer))
                buffer, size = [], 0
        if buffer:
            writer.write(b"".join(buffer))
        writer.commit()
    except BaseException:
        writer.discard()
        raise


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
            with open(p, "rb") as fh:
                data += fh.read()
        except FileNotFoundError:
            continue
    text = io.StringIO(data.decode("utf-8", errors="replace"), newline="")
    keep: deque[str] = deque(maxlen=lines)
    for line in text:
        keep.append(line.rstrip("\r\n").replace("\r", ""))
    return list(keep)


class Follower:
    """Reads what is appended to a log, across rotations, one whole line at a time."""

    def __init__(self, path: Path):
        self.path = path
        self.inode: int | None = None
        self.offset = 0
        self.partial = b""

    def _read_new(self) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                info = os.fstat(fh.fileno())
                chunks = b""
                if self.inode is not None and info.st_ino != self.inode:
                    # rotated: the end of the previous file first, then this one from its start
                    try:
                        with open(rotated(self.path), "rb") as old:
                            if os.fstat(old.fileno()).st_ino == self.inode:
                                old.seek(self.offset)
                                chunks = old.read()
                    except OSError:
                        pass
                    self.offset = 0
                elif info.st_size < self.offset:
                    self.offset = 0  # truncated: a new run
                self.inode = info.st_ino
                fh.seek(self.offset)
                data = fh.read()
                self.offset += len(data)
                return chunks + data
        except OSError:
            return b""

    def read_lines(self, *, final: bool) -> list[str]:
        """The lines completed since the last call (and the unfinished one when ``final``)."""
        data = self.partial + self._read_new()
        parts = data.split(b"\n")
        last = parts.pop()
        self.partial = b"" if final else last
        if final and last:  # the unfinished line, shown at the end (blank lines are kept)
            parts.append(last)
        return [p.decode("utf-8", errors="replace").rstrip("\r").replace("\r", "")
                for p in parts]


def size(path: Path) -> int:
    """Bytes kept for this log (current and rotated part)."""
    total = 0
    for p in (rotated(path), path):
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total


def exists(path: Path) -> bool:
    return path.exists() or rotated(path).exists()


def capture_error(path: Path) -> str | None:
    """Why the log copier of this log stopped early, when it did."""
    try:
        text = error_path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text.splitlines()[0] if text else None


# --------------------------------------------------------------------------- scopes used


def remember_scope(backend: str, scope: str | None) -> None:
    """Record that something was started at ``scope`` (best effort: failing is not an error).

    ``list``, ``status`` and ``stop`` look at every scope this tool used, so a session whose
    config entry was removed (or that was started with ``--backend``/``--socket``) is still
    found. One small file per scope: concurrent starts never rewrite a shared file.
    """
    folder = state_dir() / "scopes" / part(backend)
    marker = folder / part(scope)
    if marker.exists():
        return
    try:
        private_dir(folder)
        fd = open_private(marker)
        try:
            os.write(fd, (scope or "").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def scopes_used(backend: str) -> list[str | None]:
    """Every scope :func:`remember_scope` recorded for ``backend`` (None: the default)."""
    folder = state_dir() / "scopes" / part(backend)
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    found: list[str | None] = []
    for entry in entries:
        try:
            text = entry.read_text(encoding="utf-8")
        except OSError:
            continue
        found.append(text or None)
    return found
