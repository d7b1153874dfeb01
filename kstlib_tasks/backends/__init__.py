"""The backend registry: the one place that lists the backends.

The config loader, the engine, the verb table and the renderers ask this module; none of them
names a backend. Adding a backend means a package under ``backends/`` whose ``__init__`` defines
``TYPE`` (a :class:`~kstlib_tasks.backends.base.BackendType`), plus one line in ``_PACKAGES``.

The descriptor modules are small and import nothing heavy; each backend's implementation (and
``sh`` with it) is imported only when a backend object is first built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import BackendType

# name -> package defining TYPE; the order is the order of help texts and of `list` rows.
_PACKAGES: dict[str, str] = {
    "tmux": "kstlib_tasks.backends.tmux",
    "container": "kstlib_tasks.backends.container",
    "swarm": "kstlib_tasks.backends.swarm",
}

_loaded: dict[str, BackendType] = {}


def names() -> tuple[str, ...]:
    """The registered backend names, in registry order."""
    return tuple(_PACKAGES)


def get(name: str) -> BackendType:
    """The descriptor of backend ``name`` (KeyError for a name that is not registered)."""
    found = _loaded.get(name)
    if found is None:
        module = importlib.import_module(_PACKAGES[name])
        found = _loaded[name] = module.TYPE
    return found


def every() -> list[BackendType]:
    """Every registered backend's descriptor, in registry order."""
    return [get(name) for name in _PACKAGES]
