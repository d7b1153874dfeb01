"""From a spec to exactly what a backend starts: environment, expanded command, fingerprint.

The environment a tmux session gets is the caller's (as a program started from that shell
would get, without tmux's own ``TMUX``/``TMUX_PANE``), then the config's (``ops.env_file``, the
session's ``env_file``, ``env``), then ``--env``, in that order. A container gets only the
config's and ``--env`` (as the runtimes do). ``$NAME``, ``${NAME}`` and ``${NAME:-default}`` in
the command's words are expanded from the config's env over the caller's, without a shell and
without splitting a word; an unset variable with no default is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import backends
from ..backends.base import Launch
from ..errors import ValidationError
from ..models import ProbeSpec, SessionSpec
from . import drift

# tmux's own variables: a session started from inside tmux must not inherit them.
NOT_INHERITED = ("TMUX", "TMUX_PANE")


def caller_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}


def host_env(spec: SessionSpec) -> dict[str, str]:
    """What a program run on this host for ``spec`` sees: the caller's environment under the
    config's. ``$VAR`` words expand from it and host ``exec`` probes run with it, so a probe
    sees what the tmux session's command sees (its ``--env`` overrides aside)."""
    return {**caller_env(), **spec.env}


def expand(spec: SessionSpec, words: tuple[str, ...], field: str = "command") -> tuple[str, ...]:
    if not any("$" in word for word in words):
        return tuple(words)  # nothing to expand: no environment to gather (list does this 50x)
    from .. import interpolate

    try:
        return interpolate.expand_argv(words, host_env(spec))
    except interpolate.InterpolationError as exc:
        raise ValidationError(field, str(exc), session=spec.name) from None


def probe(spec: SessionSpec) -> ProbeSpec | None:
    """The spec's probe with ``$VAR`` expanded in exec words and http URLs."""
    ready = spec.ready
    if ready is None:
        return None
    if ready.kind == "exec":
        target: Any = expand(spec, tuple(ready.target), "ready.exec")
    elif ready.kind == "http":
        target = expand(spec, (ready.target,), "ready.http")[0]
    else:
        return ready
    return ProbeSpec(ready.kind, target, ready.timeout, ready.interval)


def prepare(spec: SessionSpec, overrides: Mapping[str, Any], *, fresh: bool = False) -> Launch:
    """The launch of ``spec`` (overrides already applied; ``overrides`` are recorded).

    An unset variable in the command or in the ready probe is an error before anything starts.
    """
    argv = expand(spec, spec.command)
    probe(spec)
    env = dict(spec.env)
    if backends.get(spec.backend).inherits_environment:
        env = {**caller_env(), **env}
    return Launch(spec=spec, argv=argv, env=MappingProxyType(env),
                  fingerprint=drift.fingerprint(spec, argv),
                  overrides=MappingProxyType(dict(overrides)), fresh=fresh)
