"""``check``: a strict lint of the config and of this machine, for CI and onboarding.

Every problem of every entry (not only the first), keys next to ``ops:`` that look like a typo
of it, the dependency graph, and what the machine lacks for the config: the tmux binary and the
container runtime the sessions need, their images (present locally: kstlib never pulls), the
programs of tmux commands, working directories, env files, unset ``$VAR`` in commands and
ready probes. Each problem is one line, with ``file:line`` where there is one. Warnings (ports
published on every interface, ``allow_host_mounts`` opt-ins) are shown and do not fail the
check.

Exit code 0 when there is no problem, 2 otherwise; ``--json`` gives the same as a list.
"""

from __future__ import annotations

import json as jsonlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import backends, errors, interpolate
from ..errors import KstlibError
from . import launch

if TYPE_CHECKING:
    from ..frontend import ConfigSource
    from ..models import SessionSpec
    from ..opsconfig import OpsConfig


def _item(level: str, message: str, *, where: str | None = None, line: int | None = None,
          session: str | None = None) -> dict[str, Any]:
    return {"level": level, "file": where, "line": line, "session": session, "message": message}


def collect(source: ConfigSource) -> tuple[OpsConfig | None, list[dict[str, Any]]]:
    """The config (None when unusable) and every finding about it."""
    try:
        config = source.load()
    except KstlibError as exc:
        return None, [_item("error", exc.line())]
    found: list[dict[str, Any]] = []
    shown = None
    if config.path is not None:
        from ..opsconfig import display_path

        shown = display_path(config.path)
    else:
        found.append(_item("warning", "no kstlib.conf.yml found: no sessions are defined"))
    for line, text in config.unknown_top:
        found.append(_item("error", text, where=shown, line=line))
    for line, text in config.problems:
        found.append(_item("error", text, where=shown, line=line))
    for line, text in config.warnings:
        if text.startswith("more than"):
            found.append(_item("warning", text, where=shown, line=line))
    specs = list(config.sessions.values())
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(specs)))) as pool:
        per_spec = list(pool.map(lambda s: _spec_findings(s, config), specs))
    for spec, items in zip(specs, per_spec, strict=True):
        for level, message in items:
            found.append(_item(level, f"session '{spec.name}': {message}", where=shown,
                               line=int(spec.source) if spec.source else None,
                               session=spec.name))
    return config, found


def _spec_findings(spec: SessionSpec, config: OpsConfig) -> list[tuple[str, str]]:
    kind = backends.get(spec.backend)
    items: list[tuple[str, str]] = []
    env = launch.host_env(spec)
    words = [("command", word) for word in spec.command]
    if spec.ready is not None and spec.ready.kind == "exec":
        words += [("ready.exec", word) for word in spec.ready.target]
    elif spec.ready is not None and spec.ready.kind == "http":
        words.append(("ready.http", spec.ready.target))
    for field, word in words:
        for name in interpolate.required(word):
            if name not in env:
                items.append(("error", f"{field}: variable ${name} is not set (set it in env: "
                                       "or give a default: ${" + name + ":-value})"))
    for path in spec.env_files:
        if not os.path.isfile(path):
            items.append(("error", f"env_file: {path} not found"))
    try:
        items += [("error", p) for p in kind.machine_problems(spec, config)]
    except KstlibError as exc:
        items.append(("error", exc.line()))
    items += [("warning", w) for w in kind.warnings(spec)]
    return items


def graph_lines(config: OpsConfig) -> list[str]:
    """The dependency graph, one line per session that has dependencies."""
    lines = []
    for spec in config.sessions.values():
        if spec.depends_on:
            deps = ", ".join(f"{e.name} ({e.condition})" for e in spec.depends_on)
            lines.append(f"  {spec.name} <- {deps}")
    return lines


def run(source: ConfigSource, *, json: bool, write: Callable[[str], None]) -> int:
    from ..render import printable

    config, found = collect(source)
    errors_found = [f for f in found if f["level"] == "error"]
    if json:
        write(jsonlib.dumps(found, indent=2))
    else:
        for item in found:
            where = f"{item['file']}:{item['line']}: " if item["file"] and item["line"] else ""
            text = item["message"]
            if where and text.startswith(where):
                where = ""
            label = "warning: " if item["level"] == "warning" else ""
            write(printable(f"{label}{where}{text}"))
        if config is not None:
            used = dict.fromkeys(spec.backend for spec in config.sessions.values())
            for name in used:
                summary = backends.get(name).machine_summary(config)
                if summary:
                    write(printable(f"uses {summary}"))
            graph = graph_lines(config)
            if graph:
                write("dependencies:")
                for line in graph:
                    write(printable(line))
            count = len(config.sessions)
            if errors_found:
                write(f"check: {len(errors_found)} problem(s), {count} valid session(s)")
            else:
                write(f"check: clean, {count} session(s)")
    return errors.USAGE if errors_found else errors.OK
