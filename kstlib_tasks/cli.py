"""Entry point of the ``kstlib`` console script (``kstlib = kstlib_tasks.cli:main``).

Kept tiny on purpose: the Program (and invoke with it) is imported inside :func:`main`, so that a
Ctrl-C arriving while Python is still importing ends with exit code 130 and no traceback, like
one arriving later. The Program itself is in :mod:`kstlib_tasks.program`.
"""

from __future__ import annotations

import os
import sys

from .errors import INTERRUPTED_EXIT


def main(argv: list[str] | None = None) -> None:
    """Run ``kstlib`` on ``argv`` (default: ``sys.argv[1:]``) and exit with its code."""
    try:
        from .program import KstlibProgram

        KstlibProgram().run(None if argv is None else ["kstlib", *argv])
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED_EXIT)
    except BrokenPipeError:
        # `kstlib --help | head`: the reader left. Silence the flush at exit, end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
