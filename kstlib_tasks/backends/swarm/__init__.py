"""Docker Swarm services: what the rest of the package knows about them (no docker call here).

A session is a replicated service named after it, created on the swarm manager that
``ops.swarm`` names (``docker_host: unix:///...|ssh://...|tcp://...`` or ``context: NAME``;
nothing: docker's own default). Its *scope* is that address (``context:NAME`` for a context,
None for the default), so ``list``, ``status`` and ``stop`` agree on where it lives.

Session keys besides the common ones: ``image`` (required), ``replicas`` (1; 0..100),
``constraints`` (``node.labels.role==bot``...), ``ports`` (``host:container``, published in host
mode), ``volumes`` and ``allow_host_mounts`` (the containers' mount policy), ``init`` (true),
``stop_grace_period`` (10 s: fixed when the service is created, the tasks carry it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import logstore
from ...flags import Flag
from ...models import Options, SessionSpec
from ..base import Backend, BackendType, Validator, unique

if TYPE_CHECKING:
    from ...opsconfig import OpsConfig

OPS_KEY = "swarm"


@dataclass(frozen=True)
class SwarmOptions(Options):
    image_ref: str | None = None
    replicas: int = 1
    constraints: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    init: bool = True
    stop_grace_period: float = 10.0
    allow_host_mounts: tuple[str, ...] = ()
    mount_roots: tuple[str, ...] = ()  # per volume, see validation.mount_root

    @property
    def image(self) -> str | None:
        return self.image_ref

    def mount_problems(self) -> list[tuple[int, str]]:
        return _volume_problems(self.volumes, None, self.allow_host_mounts, self.mount_roots)


def _port_problems(ports: Any) -> list[tuple[int, str]]:
    from .parsing import publish_arg

    found = []
    for index, port in enumerate(ports):
        try:
            publish_arg(port)
        except ValueError as exc:
            found.append((index, str(exc)))
    return found


def _volume_problems(volumes: Any, base_dir: Path | None, allowed: tuple[str, ...],
                     roots: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """The mount policy (as for containers), then what a swarm mount cannot express."""
    from ... import validation
    from ..container import mount_problems
    from .parsing import mount_arg

    found = list(mount_problems(volumes, base_dir, allowed, roots))
    refused = {index for index, _ in found}
    for index, volume in enumerate(volumes):
        if index in refused:
            continue
        try:
            mount_arg(validation.resolve_volume(volume, base_dir))
        except ValueError as exc:
            found.append((index, str(exc)))
    return sorted(found)


class SwarmType(BackendType):
    name = "swarm"
    options_class = SwarmOptions

    # ---------------------------------------------------------------- config

    def session_keys(self) -> Mapping[str, Validator]:
        from ... import validation
        from . import parsing

        return {
            "image": validation.image,
            "replicas": parsing.replicas,
            "constraints": parsing.constraints,
            "ports": validation.ports,
            "volumes": validation.volumes,
            "init": validation.boolean,
            "stop_grace_period": parsing.grace_period,
            "allow_host_mounts": validation.host_mounts,
        }

    def ops_keys(self) -> Mapping[str, tuple[Validator, Any]]:
        from . import parsing

        return {OPS_KEY: (parsing.ops_settings, None)}

    def options(self, clean: Mapping[str, Any], settings: Mapping[str, Any],
                base_dir: Path) -> Options:
        import voluptuous as vol

        from ... import validation

        raw_volumes = list(clean.get("volumes", ()))
        allowed = tuple(clean.get("allow_host_mounts", ()))
        ports = tuple(clean.get("ports", ()))
        errors = [vol.Invalid(problem, path=["volumes", index])
                  for index, problem in _volume_problems(raw_volumes, base_dir, allowed)]
        errors += [vol.Invalid(problem, path=["ports", index])
                   for index, problem in _port_problems(ports)]
        if errors:
            raise vol.MultipleInvalid(errors)
        return SwarmOptions(
            image_ref=clean.get("image"),
            replicas=clean.get("replicas", 1),
            constraints=tuple(clean.get("constraints", ())),
            ports=ports,
            volumes=tuple(validation.resolve_volume(v, base_dir) for v in raw_volumes),
            init=clean.get("init", True),
            stop_grace_period=clean.get("stop_grace_period", 10.0),
            allow_host_mounts=allowed,
            mount_roots=tuple(validation.mount_root(v, base_dir) for v in raw_volumes),
        )

    def complete(self, spec: SessionSpec) -> None:
        from ...errors import ValidationError

        if not spec.image:
            raise ValidationError(
                "image", "required for backend 'swarm' (set image: in the config or pass "
                "--image)", session=spec.name)

    # ---------------------------------------------------------------- overrides

    def flags(self) -> tuple[Flag, ...]:
        from ..container import IMAGE_FLAGS

        return IMAGE_FLAGS

    def override(self, options: Options, values: Mapping[str, Any], *, session: str,
                 base_dir: Path) -> Options:
        from dataclasses import replace

        from ..container import image_overrides

        current = options if isinstance(options, SwarmOptions) else SwarmOptions()
        allowed = current.allow_host_mounts
        changes = image_overrides(
            values, session=session, base_dir=base_dir, allowed=allowed,
            volume_problems=lambda volumes: _volume_problems(volumes, base_dir, allowed),
            port_problems=_port_problems)
        return replace(current, **changes) if changes else current

    # ---------------------------------------------------------------- places

    def configured_scope(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        from .parsing import scope_of

        return scope_of(config.setting(OPS_KEY))

    def scopes(self, config: OpsConfig) -> list[str | None]:
        """The configured manager when the config uses swarm at all, and every manager this
        tool started something on that is a unix socket still there (an ssh or tcp address
        used before is looked at only while configured: it may hang until a timeout)."""
        uses = (config.default_backend == self.name or config.setting(OPS_KEY) is not None
                or any(s.backend == self.name for s in config.sessions.values()))
        used = logstore.scopes_used(self.name)
        if not uses and not used:
            return []  # no swarm here: nothing to import, nothing to ask
        from .parsing import scope_of

        configured = scope_of(config.setting(OPS_KEY))
        found: list[str | None] = [configured] if uses else []
        for scope in used:
            live_socket = bool(scope) and str(scope).startswith("unix://") and os.path.exists(
                str(scope)[len("unix://"):])
            if scope is None or scope == configured or live_socket:
                found.append(scope)
        return unique(found)

    def create(self, scope: str | None, config: OpsConfig) -> Backend:
        from .backend import SwarmBackend

        return SwarmBackend(scope)

    # ---------------------------------------------------------------- presentation

    def summary(self, spec: SessionSpec) -> str:
        options = spec.options
        count = options.replicas if isinstance(options, SwarmOptions) else 1
        text = f"swarm: image {spec.image}, {count} replica{'s' if count != 1 else ''}"
        if spec.command_text:
            text += f", command {spec.command_text}"
        return text

    def scope_details(self, scope: str | None) -> dict[str, Any]:
        from .parsing import CONTEXT_PREFIX

        if scope and scope.startswith(CONTEXT_PREFIX):
            return {"context": scope[len(CONTEXT_PREFIX):]}
        return {"docker_host": scope}

    # ---------------------------------------------------------------- check

    def machine_problems(self, spec: SessionSpec, config: OpsConfig) -> list[str]:
        from ...errors import KstlibError
        from .backend import SwarmBackend

        found = [f"volumes[{index}]: {problem}" for index, problem in
                 spec.options.mount_problems()]
        backend = SwarmBackend(self.configured_scope(spec, config))
        try:
            return [*found, *backend.problems(spec)]
        except KstlibError as exc:
            return [*found, exc.line()]

    def machine_summary(self, config: OpsConfig) -> str | None:
        from .parsing import scope_of

        scope = scope_of(config.setting(OPS_KEY))
        details = self.scope_details(scope)
        where = ", ".join(f"{k} {v}" for k, v in details.items() if v) or "the local engine"
        return f"swarm manager: {where}"

    def warnings(self, spec: SessionSpec) -> list[str]:
        options = spec.options
        if not isinstance(options, SwarmOptions):
            return []
        found = [f"ports: {port!r} is published on every interface of the node running the "
                 "task (swarm cannot bind one address)" for port in options.ports]
        found += [f"allow_host_mounts: {path!r} may be mounted although the mount policy "
                  "would refuse it" for path in options.allow_host_mounts]
        if any(v.startswith("/") for v in options.volumes) and not options.constraints:
            found.append("volumes: a host path is mounted from the node the task runs on "
                         "(pin the session with constraints: on a multi-node swarm)")
        if spec.image and "@" not in spec.image:
            found.append(f"image: {spec.image!r} is not pinned by digest: on a multi-node "
                         "swarm, nodes may run different images of that name")
        return found

    def fingerprint_fields(self, spec: SessionSpec) -> dict[str, Any]:
        options = spec.options
        if not isinstance(options, SwarmOptions):
            return {}
        return {"image": options.image_ref, "replicas": options.replicas,
                "constraints": sorted(options.constraints), "ports": list(options.ports),
                "volumes": list(options.volumes), "init": options.init,
                "stop_grace_period": options.stop_grace_period}


TYPE = SwarmType()
