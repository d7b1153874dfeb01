"""Where a test's sessions run: tmux, or containers on podman or on docker.

The end-to-end tests of restart policies, drift and environment run every case on each of the
three (the ``where`` fixture of ``tests/integration/conftest.py``). A session is written the
same way for all of them: the project folder is the tmux session's working directory and is
mounted as ``/t`` (the working directory) in a container, so ``@tool@ stamp runs`` and relative
file names mean the same file on the host everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import PYTHON_IMAGE

NAMES = ("tmux", "podman", "docker")


@dataclass(frozen=True)
class Where:
    name: str  # tmux | podman | docker

    @property
    def container(self) -> bool:
        return self.name != "tmux"

    @property
    def backend(self) -> str:
        return "container" if self.container else "tmux"

    @property
    def stop_signal(self) -> str:
        """What a graceful stop sends the command: C-c in a pane, SIGTERM to a container."""
        return "SIGTERM" if self.container else "SIGINT"

    def entry(self, key: str, command: str | None, extra: str = "", *,
              image: str = PYTHON_IMAGE) -> str:
        """One session of a config, as YAML lines under ``ops.sessions`` (``@key@`` is made
        run-unique by :meth:`tests.cli_project.Project.write`); ``extra`` holds more keys."""
        lines = [f"    @{key}@:"]
        if command is not None:
            lines.append(f"      command: {json.dumps(command)}")
        if self.container:
            lines += ["      backend: container", f"      runtime: {self.name}",
                      f"      image: {json.dumps(image)}", "      working_dir: /t",
                      '      volumes: ["./:/t"]']
        lines += [f"      {line}" for line in textwrap.dedent(extra).strip("\n").splitlines()]
        return "\n".join(lines) + "\n"

    def config(self, *entries: str, ops: str = "") -> str:
        head = "ops:\n" + "".join(f"  {line}\n" for line in textwrap.dedent(ops).splitlines()
                                   if line.strip())
        return head + "  sessions:\n" + "".join(entries)

    # ------------------------------------------------------------------ behind kstlib's back

    def raw_start(self, name: str, cwd: Path, *argv: str) -> None:
        """Start ``argv`` as ``name`` with the raw tool (tmux, podman, docker), not kstlib."""
        if self.container:
            command = [self.name, "run", "-d", "--name", name, PYTHON_IMAGE, *argv]
        else:
            command = ["tmux", "new-session", "-d", "-s", name, "--", *argv]
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, timeout=120)

    def raw_names(self) -> list[str]:
        """The names of everything live on this backend, as the raw tool lists them."""
        if self.container:
            argv = [self.name, "ps", "-a", "--format", "{{.Names}}"]
        else:
            argv = ["tmux", "list-sessions", "-F", "#{session_name}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env={**os.environ})
        return done.stdout.split()
