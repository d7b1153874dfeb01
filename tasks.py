"""Invoke tasks of this repository: one collection per session of kstlib.conf.yml, plus dev tasks.

    inv --list                 docs.start, idle-box.status, ops.list, test, lint...
    inv docs.start             start a session by name, from kstlib.conf.yml
    inv test -- -k cli         the project's test command (scripts/test.sh)

The config is looked up from this file's folder (invoke does not chdir here).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from invoke import Context, task

from kstlib_tasks import namespace

REPO = Path(__file__).resolve().parent

ns = namespace()


@task(help={"args": "extra pytest arguments, e.g. '-k cli -x'"})
def test(c: Context, args: str = "") -> None:
    """Set up, prepare the real backends, lint and run the whole test suite (scripts/test.sh)."""
    c.run(shlex.join(["bash", str(REPO / "scripts" / "test.sh"), *shlex.split(args)]), pty=False)


@task
def lint(c: Context) -> None:
    """ruff check on the repository."""
    c.run(shlex.join([str(REPO / ".venv" / "bin" / "ruff"), "check", str(REPO)]))


@task
def demo(c: Context) -> None:
    """Run both config-driven examples end to end (scripts/demo.sh)."""
    c.run(shlex.join(["bash", str(REPO / "scripts" / "demo.sh")]))


ns.add_task(test)
ns.add_task(lint)
ns.add_task(demo)
