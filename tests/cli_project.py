"""A temp project driven the way a user drives it: the INSTALLED ``kstlib`` and ``inv``.

``Project.write`` fills a config template: ``@NAME@`` becomes a run-unique session name
(``@db@`` -> ``kt1a2b3c-db``), ``@port-X@`` a free private port (the same one each time in a
test), ``@root@`` the project folder and ``@tool@`` the command of :mod:`tests.e2e_tool` (copied
into the project, so a container can mount it). ``$`` and ``{}`` are left alone, so commands can
use ``${X:-d}``.

``Project.verb(front, verb, names, *flags)`` runs one verb through either front end, spelled as
its users type it: ``kstlib ops up a b --wait`` or ``inv ops.up --targets a,b --wait``;
``inv a.wait`` for one session's own task (a run-unique name: a group or a foreign name goes
through ``inv ops.wait NAME``).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.helpers import INV, KSTLIB, Done, run_command

TOOL = Path(__file__).resolve().parent / "e2e_tool.py"
TASKS_PY = "from kstlib_tasks import namespace\n\nns = namespace()\n"
FRONTS = ("kstlib", "inv")
# verbs every configured session has as a task of its own (inv NAME.VERB)
PER_SESSION = ("status", "start", "stop", "restart", "logs", "attach", "wait")


def free_port() -> int:
    """A TCP port nobody listens on right now (picked by the kernel, private to this test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Project:
    def __init__(self, root: Path, unique_name: Callable[[str], str]):
        self.root = root
        self.unique_name = unique_name
        self.ports: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)
        shutil.copy(TOOL, root / "e2e_tool.py")
        (root / "tasks.py").write_text(TASKS_PY)

    # ------------------------------------------------------------------ config

    def name(self, key: str) -> str:
        return self.unique_name(key)

    def port(self, key: str) -> int:
        if key not in self.ports:
            self.ports[key] = free_port()
        return self.ports[key]

    def fill(self, body: str) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "root":
                return str(self.root)
            if key == "tool":
                return "python3 -u e2e_tool.py"
            if key.startswith("port-"):
                return str(self.port(key[5:]))
            return self.name(key)

        return re.sub(r"@([A-Za-z0-9-]+)@", one, body)

    def write(self, body: str, file: str = "kstlib.conf.yml") -> Path:
        path = self.root / file
        path.write_text(self.fill(body))
        return path

    # ------------------------------------------------------------------ running

    def kstlib(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 180) -> Done:
        return run_command([KSTLIB, *args], cwd or self.root, env=env, timeout=timeout)

    def inv(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 180) -> Done:
        return run_command([INV, *args], cwd or self.root, env=env, timeout=timeout)

    def argv(self, front: str, verb: str, names: Sequence[str] = (), *flags: str,
             own_task: bool = True) -> list[str]:
        """The command line of ``verb`` on ``names`` as a user of ``front`` types it.

        ``own_task=False`` for a run-unique name that has no tasks (not in the config)."""
        if front == "kstlib":
            return [KSTLIB, "ops", verb, *names, *flags]
        if (own_task and verb in PER_SESSION and len(names) == 1
                and names[0].startswith(self.name(""))):
            return [INV, f"{names[0]}.{verb}", *flags]
        if verb in ("up", "down"):
            targets = ["--targets", ",".join(names)] if names else []
            return [INV, f"ops.{verb}", *targets, *flags]
        return [INV, f"ops.{verb}", *([",".join(names)] if names else []), *flags]

    def verb(self, front: str, verb: str, names: Sequence[str] = (), *flags: str,
             env: dict[str, str] | None = None, timeout: float = 180,
             own_task: bool = True) -> Done:
        return run_command(self.argv(front, verb, names, *flags, own_task=own_task), self.root,
                           env=env, timeout=timeout)

    def popen(self, front: str, verb: str, names: Sequence[str] = (), *flags: str
              ) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(front, verb, names, *flags), cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def status(self, name: str) -> dict:
        return json.loads(self.kstlib("ops", "status", name, "--json").ok().out)

    def state(self, name: str) -> str:
        return str(self.status(name)["state"])

    def logs(self, name: str) -> str:
        return self.kstlib("ops", "logs", name).ok().out

    def stamp(self, file: str) -> float:
        return float((self.root / file).read_text().split()[-1])
