"""The log copier that ``pipe-pane`` feeds (interim: plain append until capture.sh lands)."""

from __future__ import annotations

import shlex
from pathlib import Path

from ... import logstore


def command(log: Path, marker: Path) -> str:
    """The shell command ``pipe-pane`` runs for ``log``; it removes ``marker`` when done."""
    limit = logstore.max_bytes()
    del limit
    return f"cat >> {shlex.quote(str(log))}; rm -f {shlex.quote(str(marker))}"
