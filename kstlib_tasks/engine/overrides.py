"""One-off flags over a config entry: ``start --image v2``, ``--env K=V``, ``--backend``...

Config values are defaults; flags given for one start win, validated by the same rules as the
file. ``--env`` entries merge over the configured ones (by name); ``--volume``/``--port``, when
given, replace the configured lists; everything else replaces the single value. Relative paths
given on the command line are relative to the current folder, as in any command.

Switching backend (``--backend container`` on a tmux entry) keeps the entry's env but not its
command and working_dir, which belong to the other backend: a tmux command is a host program,
a container's is a program of its image. They are dropped unless given again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import backends
from ..errors import ValidationError

if TYPE_CHECKING:
    from ..models import SessionSpec
    from ..opsconfig import OpsConfig

# The flags every backend takes (the backends declare their own: --image, --socket...).
COMMON = ("backend", "command", "env", "workdir")


def given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags actually given (None and empty lists are "not given"), in a stable form.

    This is what a start records, so that drift compares a session with the config plus the
    overrides it was started with.
    """
    clean: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None or value == [] or value == ():
            continue
        name = ALIASES.get(key, key)
        if name not in _known():
            from ..suggest import did_you_mean

            raise ValidationError(key, "unknown option" + did_you_mean(key, sorted(_known())))
        clean[name] = list(value) if isinstance(value, (list, tuple)) else value
    return clean


def record(flags: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """The flags of a start as they are stored on the live object: given ones only, relative
    paths made absolute (drift applies them again later, from another folder)."""
    from .. import validation

    base = base_dir or Path.cwd()
    kept = given(flags)
    if isinstance(kept.get("workdir"), str):
        kept["workdir"] = validation.resolve_dir(kept["workdir"], base)
    if isinstance(kept.get("volume"), list):
        kept["volume"] = [validation.resolve_volume(v, base) if isinstance(v, str) else v
                          for v in kept["volume"]]
    return kept


# The keywords of the Python API before the verb table (``start(x, working_dir=...)``).
ALIASES = {"working_dir": "workdir", "volumes": "volume", "ports": "port",
           "socket_name": "socket"}


def _known() -> set[str]:
    names = set(COMMON)
    for kind in backends.every():
        names.update(flag.dest for flag in kind.flags())
    return names


def apply(spec: SessionSpec, config: OpsConfig, flags: Mapping[str, Any], *,
          base_dir: Path | None = None) -> SessionSpec:
    """``spec`` with the given flags applied (ValidationError for a refused value)."""
    values = given(flags)
    if not values:
        return spec  # nothing to apply: the hot path of drift checks imports nothing
    from .. import validation

    name = spec.name
    base = base_dir or Path.cwd()
    changes: dict[str, Any] = {}
    new_backend = values.get("backend")
    if new_backend is not None:
        new_backend = validation.check("backend", new_backend, session=name)
        if new_backend != spec.backend:
            kind = backends.get(new_backend)
            changes.update(backend=new_backend, options=kind.options_class())
            if "command" not in values:
                changes.update(command=(), command_text=None)
            if "workdir" not in values:
                changes["working_dir"] = kind.default_workdir(config.base_dir)
    if "command" in values:
        raw = values["command"]
        changes["command"] = validation.check("command", raw, session=name)
        changes["command_text"] = validation.command_as_written(raw, changes["command"])
    if "env" in values:
        raw_env = values["env"]
        added = validation.check("env", raw_env if isinstance(raw_env, Mapping) else list(raw_env),
                                 session=name)
        merged = {**spec.env, **added}
        import voluptuous as vol

        try:
            validation.env_size(merged)
        except vol.Invalid as exc:
            raise ValidationError("env", exc.msg, session=name) from None
        changes["env"] = merged
    if "workdir" in values:
        changes["working_dir"] = validation.resolve_dir(
            validation.check("working_dir", values["workdir"], session=name), base)
    updated = spec.with_changes(**changes) if changes else spec
    kind = backends.get(updated.backend)
    own = {flag.dest for flag in kind.flags()}
    for other in backends.every():
        for flag in other.flags():
            if flag.dest in values and flag.dest not in own and flag.dest not in COMMON:
                raise ValidationError(
                    flag.name, f"applies to {other.name} sessions, and this one runs on "
                    f"{kind.name} (add --backend {other.name} to run it there)", session=name)
    options = kind.override(updated.options, values, session=name, base_dir=base)
    if options is not updated.options:
        updated = updated.with_changes(options=options)
    kind.complete(updated)
    return updated
