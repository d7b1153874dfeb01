"""What both config-driven examples do, through the public Python API only.

`python run.py` starts the example's session from the kstlib.conf.yml beside it, `--status`
shows it, `--logs` prints its last lines, `--stop` stops it. Each run.py only names its session;
everything else (backend, command or image, env) comes from the config file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kstlib_tasks import SessionManager, load_config
from kstlib_tasks.errors import KstlibError


def run(session: str, folder: Path, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Run the '{session}' example session.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="show the session's state")
    action.add_argument("--logs", action="store_true", help="print its last 20 lines")
    action.add_argument("--stop", action="store_true", help="stop it gracefully")
    args = parser.parse_args(argv)

    try:
        manager = SessionManager(load_config(folder / "kstlib.conf.yml"))
        if args.status:
            status = manager.status(session)
            exit_text = f", exit code {status.exit_code}" if status.exit_code is not None else ""
            pid_text = f", pid {status.pid}" if status.pid else ""
            print(f"{session}: {status.state} ({status.backend}{pid_text}{exit_text})")
        elif args.logs:
            print("\n".join(manager.logs(session, lines=20)))
        elif args.stop:
            status = manager.stop(session)
            print(f"{session}: stopped ({status.backend})")
        else:
            status = manager.start(session)
            where = status.image or status.command or ""
            print(f"{session}: started ({status.backend}, pid {status.pid}, {where})")
    except KstlibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
