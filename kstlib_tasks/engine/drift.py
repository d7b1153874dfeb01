"""Drift: does a live session still run what the config says?

At start, the engine computes a fingerprint of what it starts (one short digest per field: the
expanded command, the env from the config and overrides, the working directory, the restart
policy, the backend's options such as image, volumes and ports) and the backend stores it on the
live object with the overrides given. ``status`` and ``list`` recompute it from the config as it
is now, with the same overrides applied again, and name the fields that differ. Reporting only
reads: nothing is restarted here (``up`` does that).

The fingerprint digests env key by key, so it names the variable that changed without holding
its value. The overrides recorded beside it do keep ``-e`` values as given (drift must apply them
again); they are no more exposed there than in the object's own environment, which anyone allowed
to inspect it (the runtime's users, the tmux server's owner) can read anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import backends

if TYPE_CHECKING:
    from ..models import SessionSpec, SessionStatus
    from ..opsconfig import OpsConfig


def digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def fingerprint(spec: SessionSpec, argv: Sequence[str]) -> dict[str, str]:
    """field -> digest of what is started (``argv`` is the command after ``$VAR`` expansion)."""
    found = {
        "command": digest(list(argv)),
        "env": digest(sorted((k, digest(v)) for k, v in spec.env.items())),
        "working_dir": digest(spec.working_dir),
        "restart": digest([spec.restart, spec.max_restarts]),
    }
    for key, value in backends.get(spec.backend).fingerprint_fields(spec).items():
        found[key] = digest(value)
    return found


def differences(recorded: Mapping[str, Any], now: Mapping[str, str]) -> tuple[str, ...]:
    """The fields whose digest changed, in a stable order."""
    keys = sorted(set(recorded) | set(now))
    return tuple(k for k in keys if recorded.get(k) != now.get(k))


def compare(spec: SessionSpec, status: SessionStatus, config: OpsConfig) -> SessionStatus:
    """``status`` with ``drifted``/``drift`` filled against ``spec`` (the config entry now).

    A session not started by this tool has nothing to compare: ``drifted`` stays None.
    """
    recorded = status.recorded
    if not recorded or not isinstance(recorded.get("fp"), dict):
        return status
    from ..errors import KstlibError
    from . import launch, overrides

    try:
        expected = overrides.apply(spec, config, dict(recorded.get("ov") or {}),
                                   base_dir=config.base_dir)
    except KstlibError:
        expected = spec
    try:
        argv = launch.expand(expected, expected.command)
    except KstlibError:
        argv = ("<unset variable>",)
    fields = differences(recorded["fp"], fingerprint(expected, argv))
    return status.with_changes(drifted=bool(fields), drift=fields)
