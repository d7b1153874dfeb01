"""What both export formats share: which sessions, under which names, with what translated.

:func:`plan` reads the config alone (no backend is asked anything, nothing is started): it
resolves the targets with the dependency graph, keeps the container sessions (a tmux session
has no image, so it cannot run on Kubernetes or Compose; each skipped one is a note), and
turns each kept spec into a :class:`Service` whose values are final: ``$VAR`` expanded from the
config's env, ports and volumes parsed, the readiness probe translated into a check that runs
*inside* the container. The format modules only lay these values out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import interpolate, validation
from ..errors import KstlibError, ValidationError
from ..models import SessionSpec
from ..validation import Port, parse_port

if TYPE_CHECKING:
    from ..opsconfig import OpsConfig

# RFC 1123 label: what Kubernetes requires of container names (and of label values).
DNS_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})
# kstlib polls a probe from its interval up to once a second (probes.MAX_INTERVAL): the
# steady rhythm both formats use.
CHECK_PERIOD = 1.0


@dataclass(frozen=True)
class Mount:
    """One volume: a host folder (``bind``) or a named volume (``volume``)."""

    text: str  # as the container backend would pass it (host path absolute)
    kind: str  # bind | volume
    source: str  # absolute host path or volume name
    target: str  # path in the container
    options: tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True)
class Check:
    """The session's ``ready:`` probe as seen from inside its container.

    ``kind`` is tcp, http, exec or delay (a log probe has no equivalent and gives no Check).
    ``host`` is None when the probe targets the session itself (a local address: inside the
    container that is the container), else the host as written. ``port`` is the container
    port the probe reaches (a published host port translated through ``ports:``).
    """

    kind: str
    port: int | None = None
    host: str | None = None
    scheme: str = "http"
    path: str = "/"
    argv: tuple[str, ...] = ()
    delay: float = 0.0
    timeout: float = 60.0  # how long a start may take to become ready
    attempt: float = 1.0  # how long one attempt may take (whole seconds, at least 1)


@dataclass(frozen=True)
class Dependency:
    name: str  # the dependency's output name
    session: str  # its session name
    condition: str  # started | ready | completed
    checked: bool  # the dependency has a Check (so "ready" can be waited for)


@dataclass(frozen=True)
class Service:
    """One exported session with every value final."""

    spec: SessionSpec
    name: str  # DNS label: the session name in lower case
    image: str
    argv: tuple[str, ...]  # empty: the image's own command
    env: tuple[tuple[str, str], ...]  # sorted by name
    ports: tuple[Port, ...]
    mounts: tuple[Mount, ...]
    check: Check | None
    completion: bool  # a dependent waits for it with condition ``completed``
    depends: tuple[Dependency, ...]
    replicas: int | None  # set only when the options object has a ``replicas`` attribute
    init: bool

    @property
    def session(self) -> str:
        return self.spec.name


@dataclass
class Plan:
    services: list[Service] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, session: str, text: str) -> None:
        self.notes.append(f"session '{session}': {text}")


def resolve(config: OpsConfig, targets: Sequence[str]) -> list[str]:
    """The targets (sessions or groups) and their dependencies, dependencies first."""
    graph = config.graph()
    return graph.up_order(config.targets(graph, targets))


def exportable(spec: SessionSpec) -> bool:
    """Sessions with an image: the container backend's (and any backend that runs images)."""
    return spec.image is not None


def plan(config: OpsConfig, targets: Sequence[str], fmt: str) -> Plan:
    """The services to export for ``targets`` (all sessions when empty), in ``up`` order."""
    result = Plan()
    order = resolve(config, targets)
    kept = [name for name in order if exportable(config.sessions[name])]
    for name in order:
        spec = config.sessions[name]
        if name not in kept:
            result.notes.append(
                f"session '{name}' ({spec.backend}) is not exported: only container sessions "
                "run on Kubernetes/Compose")
    if not kept:
        among = "the targets and their dependencies" if targets else "the sessions"
        skipped = ", ".join(f"{n} ({config.sessions[n].backend})" for n in order)
        raise KstlibError(f"nothing to export: no container session among {among}"
                          + (f" (skipped: {skipped})" if skipped else ""),
                          hint="only sessions with backend: container run on Kubernetes/Compose")
    names = _names(config, kept, fmt)
    completion = _completion_steps(config)
    for name in kept:
        result.services.append(_service(config, config.sessions[name], names, completion, result))
    return result


# --------------------------------------------------------------------------- names


def output_name(session: str) -> str:
    """The session's name in the output: lower case (Kubernetes names are RFC 1123 labels)."""
    return session.lower()


def _names(config: OpsConfig, kept: Sequence[str], fmt: str) -> dict[str, str]:
    """session -> output name; refused when two sessions would share a name, or (Kubernetes)
    when the lower-case name is not a DNS label."""
    found: dict[str, str] = {}
    taken: dict[str, str] = {}
    for name in kept:
        lower = output_name(name)
        if fmt == "kubernetes" and not DNS_LABEL_RE.fullmatch(lower):
            why = ("longer than 63 characters" if len(lower) > 63
                   else "it must end with a letter or a digit")
            raise KstlibError(f"cannot be a Kubernetes name ({why}): rename the session",
                              session=name)
        if lower in taken:
            raise KstlibError(
                f"sessions '{taken[lower]}' and '{name}' would both be named '{lower}' in the "
                "output (names are lower-cased): rename one of them")
        taken[lower] = name
        found[name] = lower
    # every session (exported or not) may be named in a note
    for spec in config.sessions.values():
        found.setdefault(spec.name, output_name(spec.name))
    return found


def _completion_steps(config: OpsConfig) -> set[str]:
    """Sessions some dependent (anywhere in the config) waits for with ``completed``."""
    return {edge.name for spec in config.sessions.values() for edge in spec.depends_on
            if edge.condition == "completed"}


# --------------------------------------------------------------------------- one service


def _service(config: OpsConfig, spec: SessionSpec, names: Mapping[str, str],
             completion: set[str], result: Plan) -> Service:
    options = spec.options
    if names[spec.name] != spec.name:
        result.note(spec.name, f"named '{names[spec.name]}' in the output (names are "
                    "lower-cased for Kubernetes and Compose alike)")
    if spec.env_files:
        result.note(spec.name, "its env, from env_file included, is written into the output "
                    "in clear text (keep secrets out of it, or move them to Secrets)")
    ports = tuple(parse_port(text) for text in getattr(options, "ports", ()))
    mounts = _mounts(config, spec, result)
    depends = []
    for edge in spec.depends_on:
        other = config.sessions[edge.name]
        if not exportable(other):
            result.note(spec.name, f"depends_on '{edge.name}' ({edge.condition}) is dropped: "
                        f"'{edge.name}' ({other.backend}) is not exported")
            continue
        depends.append(Dependency(names[edge.name], edge.name, edge.condition,
                                  other.ready is not None and other.ready.kind != "log"))
    replicas = getattr(options, "replicas", None)
    return Service(
        spec=spec,
        name=names[spec.name],
        image=str(spec.image),
        argv=expand(spec, spec.command, "command"),
        env=tuple(sorted(spec.env.items())),
        ports=ports,
        mounts=mounts,
        check=_check(spec, ports, result),
        completion=spec.name in completion,
        depends=tuple(depends),
        replicas=int(replicas) if replicas is not None else None,
        init=bool(getattr(options, "init", False)),
    )


def expand(spec: SessionSpec, words: Iterable[str], field_name: str) -> tuple[str, ...]:
    """``$VAR`` expanded from the config's env only (the output must not depend on who runs
    the export); a variable it lacks needs a default (``${NAME:-value}``)."""
    try:
        return interpolate.expand_argv(tuple(words), spec.env)
    except interpolate.UnsetVariable as exc:
        raise ValidationError(
            field_name, f"variable ${exc.name} is not set in the config's env (export reads the "
            f"config alone: set it under env:, or give it a default: ${{{exc.name}:-value}})",
            session=spec.name) from None
    except interpolate.InterpolationError as exc:
        raise ValidationError(field_name, str(exc), session=spec.name) from None


def _mounts(config: OpsConfig, spec: SessionSpec, result: Plan) -> tuple[Mount, ...]:
    """The volumes the mount policy still allows (checked again: a symlink may have changed
    since the config was read, as ``start`` checks again)."""
    found = []
    refused = dict(spec.options.mount_problems())
    for index, text in enumerate(getattr(spec.options, "volumes", ())):
        host, _, rest = text.partition(":")
        target, _, opts = rest.partition(":")
        options = tuple(o for o in opts.split(",") if o)
        path = validation.host_path(host, config.base_dir)
        if path is None:
            found.append(Mount(text, "volume", host, target, options))
            continue
        if index in refused:
            result.note(spec.name, f"volume {text!r} is skipped: {refused[index]}")
            continue
        found.append(Mount(text, "bind", path, target, options))
    return tuple(found)


def container_port(port: int, ports: Sequence[Port]) -> int | None:
    """The container port a probe of ``port`` on this machine reaches: a published host port
    translated through ``ports:``, or a container port itself; None when neither."""
    for entry in ports:
        if entry.host == port and entry.protocol == "tcp":
            return entry.container
    for entry in ports:
        if entry.container == port and entry.protocol == "tcp":
            return port
    return None


def _check(spec: SessionSpec, ports: Sequence[Port], result: Plan) -> Check | None:
    probe = spec.ready
    if probe is None:
        return None
    common: dict[str, Any] = {"timeout": probe.timeout,
                              "attempt": float(max(1, math.ceil(probe.bound())))}
    if probe.kind == "log":
        result.note(spec.name, f"ready: {probe.describe()} has no equivalent (a probe cannot "
                    "read the output): the session counts as ready once started")
        return None
    if probe.kind == "delay":
        return Check("delay", delay=float(probe.target), **common)
    if probe.kind == "exec":
        return Check("exec", argv=expand(spec, probe.target, "ready.exec"), **common)
    if probe.kind == "tcp":
        host, number = probe.target
        scheme, path = "http", "/"
    else:
        url = expand(spec, (probe.target,), "ready.http")[0]
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        number = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if host.lower() not in LOCAL_HOSTS and not host.startswith("127."):
        return Check(probe.kind, port=number, host=host, scheme=scheme, path=path, **common)
    inside = container_port(number, ports)
    if inside is None:
        result.note(spec.name, f"ready: port {number} is not in ports: (as a host or a "
                    f"container port): probed as container port {number}")
        inside = number
    return Check(probe.kind, port=inside, scheme=scheme, path=path, **common)

