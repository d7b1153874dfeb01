"""``env_file:`` entries, read with python-dotenv's own parser so the grammar is the usual one.

Only the parser is used (``dotenv.parser.parse_stream``), never ``dotenv_values``: the parser
keeps each binding's line, which the warnings need, and does no ``${X}`` interpolation, so a
value is exactly the text of the file (quotes removed, escapes of double-quoted values decoded).
python-dotenv has no command substitution at all: ``$(...)`` and backticks are plain text.

Errors are :class:`EnvFileError` with the file and line, so the message points at the line to
fix instead of leaving a key silently missing.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    line: int


class EnvFileError(ValueError):
    """An env file that cannot be used, with the line when one line is to blame."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


def read(path: Path) -> list[EnvEntry]:
    """The bindings of the file, in the order of their lines.

    A key bound twice keeps the later value and the later line (what every dotenv reader does),
    and takes the later position. Keys are as python-dotenv reads them: checking them against the
    env key rules is the caller's job, as for the config's ``env:``.
    """
    text = _text(path)
    from dotenv.parser import parse_stream

    entries: dict[str, EnvEntry] = {}
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        # The parser's line is where it started reading, blank lines before the binding
        # included: count them to name the line the binding is actually on.
        line = binding.original.line + original[: len(original) - len(original.lstrip())].count(
            "\n"
        )
        if binding.error:
            raise EnvFileError(path, line, "cannot parse this line")
        if binding.key is None:  # a comment or blank lines
            continue
        if binding.value is None:
            raise EnvFileError(path, line, f"{binding.key}: expected NAME=value")
        entries.pop(binding.key, None)
        entries[binding.key] = EnvEntry(binding.key, binding.value, line)
    return list(entries.values())


def _text(path: Path) -> str:
    """The file as text with Unix newlines, or EnvFileError (missing, too big, not UTF-8...)."""
    try:
        # O_NONBLOCK: a FIFO given by mistake must not hang the loader (it is refused below).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise EnvFileError(path, None, "env file not found") from None
    except OSError as exc:
        raise EnvFileError(path, None, exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise EnvFileError(path, None, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise EnvFileError(path, None, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise EnvFileError(path, None, "env file larger than 1 MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EnvFileError(path, line, "not UTF-8 text") from None
    # Universal newlines, as a text-mode open would give: CRLF files read like LF files.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise EnvFileError(path, text[: text.index("\x00")].count("\n") + 1, "contains a NUL")
    return text
