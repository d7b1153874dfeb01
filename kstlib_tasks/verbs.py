"""The verb table: every verb with its flags (names, short flags, types, help), defined once.

Both front ends are generated from it: the ``kstlib`` command's small parser
(:mod:`kstlib_tasks.cli`) and the invoke collections (:mod:`kstlib_tasks.invoke_tasks`). The
handlers that run a verb live in :mod:`kstlib_tasks.frontend`. Adding a verb means one entry
here and one handler there; a backend adds its ``start`` flags through the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import backends
from .flags import Flag

if TYPE_CHECKING:
    from .models import SessionSpec


class Verb:
    """One verb: ``names`` says what it takes (``one`` NAME, ``many`` NAMEs, ``any``: NAMEs or
    none for all, ``none``)."""

    __slots__ = ("doc", "flags", "name", "names", "per_session", "usage")

    def __init__(self, name: str, doc: str, flags: tuple[Flag, ...], *, names: str = "one",
                 usage: str = "", per_session: bool = True):
        self.name = name
        self.doc = doc
        self.flags = flags
        self.names = names
        self.usage = usage
        self.per_session = per_session  # also a task of each session's invoke collection


JSON = Flag("json", kind=bool, help="print one JSON document on stdout (warnings and progress "
            "go to stderr)")
FORCE = Flag("force", "f", kind=bool, help="kill at once, no graceful stop")
STOP_TIMEOUT = Flag("timeout", "t", kind=float, field="timeout",
                    help="seconds to wait for a graceful stop before killing (default 10)")
WAIT_TIMEOUT = Flag("timeout", "t", kind=float, field="timeout",
                    help="seconds the whole command may take (default: the probes' own)")
WAIT = Flag("wait", kind=bool, help="also wait until it is ready (its ready: probe)")
LINES = Flag("lines", "n", kind=int, field="lines", help="only the last N lines (default: all; "
             "per session when there are several)", metavar="N")
FOLLOW = Flag("follow", "f", kind=bool, help="keep printing new lines until every session "
              "followed has ended (Ctrl-C stops)")
LIST_BACKEND = Flag("backend", "b", help="only sessions of this backend", field="backend")
EXPORT_FORMAT = Flag("format", "F", field="format", metavar="FORMAT",
                     help="required: kubernetes (Deployments and Jobs) or compose (a Compose "
                     "file)")
OUTPUT = Flag("output", "o", metavar="FILE", help="write to FILE (mode 0644) instead of stdout")
NO_RECREATE = Flag("no-recreate", kind=bool, help="leave running sessions that drifted from "
                   "the config as they are")


def start_flags() -> tuple[Flag, ...]:
    """The flags that override config values for one start: common, then each backend's."""
    common = (
        Flag("backend", "b", help=f"{' or '.join(backends.names())} (default: the config's); "
             "another backend than the config's does not take its command or workdir"),
        Flag("command", "c", help="command to run, split like a shell would but never run by "
             "one; no ; & | > < $( `"),
        Flag("env", "e", kind=list, help="-e NAME=value, repeatable; merged over the config's "
             "env", metavar="NAME=VALUE"),
        Flag("workdir", "w", help="working directory (relative: to the current folder)"),
    )
    seen = {f.name for f in common}
    extra: list[Flag] = []
    for kind in backends.every():
        for flag in kind.flags():
            if flag.name not in seen:
                seen.add(flag.name)
                extra.append(flag)
    return (*common, *extra)


def _table() -> dict[str, Verb]:
    start = start_flags()
    verbs = [
        Verb("list", "List sessions: defined in the config, and every live one of every backend "
             "(tmux sessions, containers, swarm services).", (JSON, LIST_BACKEND),
             names="none", per_session=False,
             usage="ops list [--json] [--backend NAME]"),
        Verb("status", "Show the state of session NAME (the live state wins over the config).",
             (JSON,), usage="ops status NAME [--json]"),
        Verb("start", "Start session NAME from the config; the flags override config values "
             "once.", (*start, WAIT, WAIT_TIMEOUT),
             usage="ops start NAME [--wait] [-b BACKEND] [-c COMMAND] [-i IMAGE] [-e K=V]... "
                   "[-v VOL]... [-p PORT]... [-w DIR] [-L SOCKET]"),
        Verb("stop", "Stop session NAME gracefully (SIGINT/SIGTERM, then kill after "
             "--timeout).", (FORCE, STOP_TIMEOUT),
             usage="ops stop NAME [--force] [--timeout SECONDS]"),
        Verb("restart", "Stop session NAME if live, then start it again (flags as for start; "
             "--timeout is the stop's, --wait awaits readiness within the probe's own "
             "timeout).", (*start, WAIT, FORCE, STOP_TIMEOUT),
             usage="ops restart NAME [start options] [--wait] [--force] [--timeout SECONDS]"),
        Verb("logs", "Print the last output of sessions (kept after they exit or are "
             "stopped).", (LINES, FOLLOW), names="many",
             usage="ops logs NAME|GROUP... [--lines N] [--follow]"),
        Verb("attach", "Attach the terminal to session NAME (detach: tmux Ctrl+B D, "
             "containers Ctrl+P Ctrl+Q).", (), usage="ops attach NAME"),
        Verb("up", "Start sessions and groups with their dependencies, in order (default: "
             "all).", (WAIT, WAIT_TIMEOUT, NO_RECREATE, JSON), names="any", per_session=False,
             usage="ops up [TARGET...] [--wait] [--timeout SECONDS] [--no-recreate] [--json]"),
        Verb("down", "Stop sessions and groups and what depends on them (default: all).",
             (FORCE, STOP_TIMEOUT, JSON), names="any", per_session=False,
             usage="ops down [TARGET...] [--force] [--timeout SECONDS] [--json]"),
        Verb("wait", "Wait until sessions are ready (their ready: probe).",
             (WAIT_TIMEOUT, JSON), names="many",
             usage="ops wait NAME... [--timeout SECONDS] [--json]"),
        Verb("export", "Write Kubernetes manifests or a Compose file for container sessions "
             "and groups with their dependencies (default: all), from the config alone: "
             "nothing is started.", (EXPORT_FORMAT, OUTPUT), names="any", per_session=False,
             usage="ops export --format kubernetes|compose [TARGET...] [-o FILE]"),
        Verb("check", "Check the config and this machine: every problem, one line each.",
             (JSON,), names="none", per_session=False, usage="ops check [--json]"),
    ]
    return {verb.name: verb for verb in verbs}


_VERBS: dict[str, Verb] | None = None


def table() -> dict[str, Verb]:
    """Every verb by name, in help order (built once, on first use)."""
    global _VERBS
    if _VERBS is None:
        _VERBS = _table()
    return _VERBS


def names() -> tuple[str, ...]:
    return tuple(table())


# What a flag's value defaults to for one configured session (shown in its help).
CONFIG_VALUES: dict[str, Callable[[SessionSpec], Any]] = {
    "backend": lambda spec: spec.backend,
    "command": lambda spec: spec.command_text,
    "workdir": lambda spec: spec.working_dir,
    "image": lambda spec: spec.image,
    "socket": lambda spec: getattr(spec.options, "socket_name", None),
}


def help_for(flag: Flag, spec: SessionSpec | None) -> str:
    """A flag's help, with the configured value when shown for one session."""
    if spec is None or flag.dest not in CONFIG_VALUES:
        return flag.help
    value = CONFIG_VALUES[flag.dest](spec)
    shown = "none" if value in (None, "", (), {}) else value
    base = flag.help.split(" (default")[0]
    return f"{base} (config: {shown})"
