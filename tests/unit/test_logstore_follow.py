"""``logstore.Follower``: what ``logs --follow`` prints, line by line, from a log that grows,
rotates and ends without a newline (plain files, no backend)."""

from __future__ import annotations

import os
from pathlib import Path

from kstlib_tasks import logstore


def following(tmp_path: Path, data: bytes) -> tuple[Path, logstore.Follower]:
    """A log holding ``data`` and a follower of it, from its start."""
    log = tmp_path / "s.log"
    log.write_bytes(data)
    return log, logstore.Follower(log)


def append(log: Path, data: bytes) -> None:
    """What the copier does: more bytes at the end of the log."""
    with open(log, "ab") as fh:
        fh.write(data)


def test_blank_lines_are_kept_to_the_end(tmp_path: Path) -> None:
    _, follower = following(tmp_path, b"one\n\n\ntwo\n\n")
    assert follower.read_lines(final=True) == ["one", "", "", "two", ""]


def test_an_unfinished_line_waits_until_it_ends_or_the_session_does(tmp_path: Path) -> None:
    log, follower = following(tmp_path, b"a\n\npart")
    assert follower.read_lines(final=False) == ["a", ""]
    append(log, b"ial\r\nlast")
    assert follower.read_lines(final=False) == ["partial"]
    assert follower.read_lines(final=True) == ["last"]
    assert follower.read_lines(final=True) == []


def test_nothing_is_lost_across_a_rotation(tmp_path: Path) -> None:
    log, follower = following(tmp_path, b"1\n2\n")
    assert follower.read_lines(final=False) == ["1", "2"]
    append(log, b"3\n")
    os.replace(log, logstore.rotated(log))
    log.write_bytes(b"4\n\n")
    assert follower.read_lines(final=True) == ["3", "4", ""]
