"""The log copier that tmux's ``pipe-pane`` feeds: ``capture.sh`` beside this module.

Why a small POSIX ``sh`` script around GNU ``head -c`` and not a Python copier: an interpreter
kept resident per session cost about 11 MB (40 sessions: 500 MB), and a copier slower than the
pane's output grows the tmux SERVER (tmux buffers for a slow pipe-pane reader without limit).
``dash`` plus one ``head`` per rotated chunk are small, mostly shared pages, and fast enough for
any allowed size; the script's header says why each line is as it is (unbuffered writes, the
size read from ``/proc``, symlinks refused, a full disk recorded in ``LOG.error`` before it exits
so that tmux stops piping and frees its buffer).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ... import logstore

SCRIPT = Path(__file__).with_name("capture.sh")


def command(log: Path, marker: Path) -> str:
    """The shell command ``pipe-pane`` runs for ``log``; it removes ``marker`` when done.

    The size bound is passed along because the tmux server's environment may predate it.
    tmux runs it through ``sh -c``: ``exec`` leaves one shell, not two, per session.
    """
    argv = ["/bin/sh", str(SCRIPT), str(log), str(logstore.max_bytes()), str(marker)]
    return "exec " + shlex.join(argv)  # tmux runs it through sh -c: no second shell left
