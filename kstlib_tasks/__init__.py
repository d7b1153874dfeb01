"""Run a project's long-running sessions, defined in ``kstlib.conf.yml``, in tmux or a container.

Public API: ``from kstlib_tasks import namespace`` (invoke collections for a repo's tasks.py) and
``SessionManager`` / ``load_config`` for scripts. Exported lazily (PEP 562) so that
``import kstlib_tasks`` stays cheap: invoke, PyYAML and sh load only when a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "namespace": "kstlib_tasks.invoke_tasks",
    "SessionManager": "kstlib_tasks.manager",
    "load_config": "kstlib_tasks.config",
    "find_config": "kstlib_tasks.config",
    "OpsConfig": "kstlib_tasks.opsconfig",
}

__all__ = ["OpsConfig", "SessionManager", "__version__", "find_config", "load_config",
           "namespace"]

if TYPE_CHECKING:
    from .config import find_config, load_config
    from .invoke_tasks import namespace
    from .manager import SessionManager
    from .opsconfig import OpsConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kstlib_tasks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
