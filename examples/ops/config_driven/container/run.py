"""The container example: `python run.py` starts 'astro-prod' from kstlib.conf.yml, `--status`,
`--logs` and `--stop` follow it. See README.md beside this file."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # examples/ops, for example_runner

from example_runner import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run("astro-prod", HERE))
