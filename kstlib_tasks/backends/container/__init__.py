"""Podman and Docker containers, for production: what the rest of the package knows about them.

Nothing here runs a container runtime: runtime detection only looks at PATH, and the
implementation (with ``sh``) is imported when a backend object is first built.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import logstore
from ...errors import ContainerRuntimeNotFoundError, KstlibError
from ...flags import Flag
from ...models import Options, SessionSpec
from ..base import Backend, BackendType, Validator, unique

if TYPE_CHECKING:
    from ...opsconfig import OpsConfig

DETECT_ORDER = ("podman", "docker")
INSTALL_HINTS = {
    "podman": "install it with: apt-get install podman runc",
    "docker": "install it with: apt-get install docker.io",
}
NO_RUNTIME_HINT = "install one with: apt-get install podman runc (or: apt-get install docker.io)"


@dataclass(frozen=True)
class ContainerOptions(Options):
    image_ref: str | None = None
    volumes: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    runtime: str | None = None  # podman | docker | None (the config's, else auto-detect)
    init: bool = True  # run an init process as PID 1 so signals reach the command
    allow_host_mounts: tuple[str, ...] = ()
    mount_roots: tuple[str, ...] = ()  # per volume, see validation.mount_root

    @property
    def image(self) -> str | None:
        return self.image_ref

    def mount_problems(self) -> list[tuple[int, str]]:
        return list(mount_problems(self.volumes, None, self.allow_host_mounts, self.mount_roots))


def detect_runtime(preferred: str | None = None) -> str:
    """The container runtime to use: ``preferred`` when given, else podman, else docker.

    ``preferred`` (a name or a path) must be found in PATH: a configured runtime that is missing
    is an error, never a silent switch to the other one.
    """
    if preferred:
        if shutil.which(preferred) is None:
            base = os.path.basename(preferred)
            raise ContainerRuntimeNotFoundError(
                f"container runtime '{preferred}' not found in PATH",
                hint=INSTALL_HINTS.get(base, NO_RUNTIME_HINT),
            )
        return preferred
    for candidate in DETECT_ORDER:
        if shutil.which(candidate) is not None:
            return candidate
    raise ContainerRuntimeNotFoundError(
        "no container runtime found: neither podman nor docker is in PATH", hint=NO_RUNTIME_HINT
    )


def mount_problems(volumes: Sequence[str], base_dir: Path | None, allowed: Sequence[str],
                   roots: Sequence[str] = ()) -> Iterator[tuple[int, str]]:
    """(index, reason) of each volume the mount policy refuses (see validation); ``roots``:
    the stored volumes' folders (:func:`validation.mount_root`), when checked again later."""
    from ... import validation

    for index, volume in enumerate(volumes):
        problem = validation.mount_problem(volume, base_dir=base_dir, allowed=allowed,
                                           inside=roots[index] if index < len(roots) else None)
        if problem:
            yield index, problem


# The start flags of every image backend (container, swarm): the verb table keeps one of each.
IMAGE_FLAGS = (
    Flag("image", "i", help="container image (default: the config's)"),
    Flag("volume", "v", kind=list, help="-v host:container[:options], repeatable; "
         "replaces the config's volumes"),
    Flag("port", "p", kind=list, help="-p [ip:][host:]container[/tcp|udp], repeatable; "
         "replaces the config's ports"),
)

Problems = Callable[[Sequence[str]], Iterable[tuple[int, str]]]


def image_overrides(values: Mapping[str, Any], *, session: str, base_dir: Path,
                    allowed: Sequence[str], volume_problems: Problems | None = None,
                    port_problems: Problems | None = None) -> dict[str, Any]:
    """The option changes ``-i``/``-v``/``-p`` ask for, through the shared rules and the mount
    policy; ``volume_problems``/``port_problems`` add what one backend cannot express (its
    first problem is the ValidationError)."""
    from ... import validation
    from ...errors import ValidationError

    changes: dict[str, Any] = {}
    if values.get("image") is not None:
        changes["image_ref"] = validation.check("image", values["image"], session=session)
    if values.get("volume"):
        clean = validation.check("volumes", list(values["volume"]), session=session)
        found = (volume_problems or (lambda v: mount_problems(v, base_dir, allowed)))(clean)
        for index, problem in found:
            raise ValidationError(f"volume[{index}]", problem, session=session)
        changes["volumes"] = tuple(validation.resolve_volume(v, base_dir) for v in clean)
        changes["mount_roots"] = tuple(validation.mount_root(v, base_dir) for v in clean)
    if values.get("port"):
        ports = tuple(validation.check("ports", list(values["port"]), session=session))
        for index, problem in (port_problems(ports) if port_problems else ()):
            raise ValidationError(f"port[{index}]", problem, session=session)
        changes["ports"] = ports
    return changes


class ContainerType(BackendType):
    name = "container"
    options_class = ContainerOptions

    def session_keys(self) -> Mapping[str, Validator]:
        from ... import validation

        return {
            "image": validation.image,
            "volumes": validation.volumes,
            "ports": validation.ports,
            "runtime": validation.runtime,
            "init": validation.boolean,
            "allow_host_mounts": validation.host_mounts,
        }

    def ops_keys(self) -> Mapping[str, tuple[Validator, Any]]:
        from ... import validation

        return {"container_runtime": (validation.runtime, None)}

    def option_problems(self, clean: Mapping[str, Any],
                        base_dir: Path) -> list[tuple[list[Any], str]]:
        allowed = tuple(clean.get("allow_host_mounts", ()))
        return [(["volumes", index], problem) for index, problem in
                mount_problems(list(clean.get("volumes", ())), base_dir, allowed)]

    def options(self, clean: Mapping[str, Any], settings: Mapping[str, Any],
                base_dir: Path) -> Options:
        from ... import validation

        raw_volumes = list(clean.get("volumes", ()))
        allowed = tuple(clean.get("allow_host_mounts", ()))
        return ContainerOptions(
            image_ref=clean.get("image"),
            volumes=tuple(validation.resolve_volume(v, base_dir) for v in raw_volumes),
            ports=tuple(clean.get("ports", ())),
            runtime=clean.get("runtime"),
            init=clean.get("init", True),
            allow_host_mounts=allowed,
            mount_roots=tuple(validation.mount_root(v, base_dir) for v in raw_volumes),
        )

    def complete(self, spec: SessionSpec) -> None:
        from ...errors import ValidationError

        if not spec.image:
            raise ValidationError(
                "image",
                "required for backend 'container' (set image: in the config or pass --image)",
                session=spec.name,
            )

    def flags(self) -> tuple[Flag, ...]:
        return IMAGE_FLAGS

    def override(self, options: Options, values: Mapping[str, Any], *, session: str,
                 base_dir: Path) -> Options:
        from dataclasses import replace

        current = options if isinstance(options, ContainerOptions) else ContainerOptions()
        changes = image_overrides(values, session=session, base_dir=base_dir,
                                  allowed=current.allow_host_mounts)
        return replace(current, **changes) if changes else current

    def configured_scope(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        options = spec.options
        runtime = options.runtime if isinstance(options, ContainerOptions) else None
        return runtime or config.setting("container_runtime")

    def home(self, spec: SessionSpec, config: OpsConfig) -> str | None:
        return detect_runtime(self.configured_scope(spec, config))

    def scopes(self, config: OpsConfig) -> list[str | None]:
        """The default runtime, every runtime a session names, every runtime used before."""
        named = [self.configured_scope(s, config) for s in config.sessions.values()
                 if s.backend == self.name]
        found: list[str | None] = []
        try:
            found.append(detect_runtime(config.setting("container_runtime")))
        except KstlibError:
            if config.setting("container_runtime"):
                found.append(config.setting("container_runtime"))  # its listing says why
        for runtime in [*named, *logstore.scopes_used(self.name)]:
            if runtime and (runtime in named or shutil.which(runtime)):
                found.append(runtime)
        return unique(found)

    def create(self, scope: str | None, config: OpsConfig) -> Backend:
        from .backend import ContainerBackend

        return ContainerBackend(scope or detect_runtime(config.setting("container_runtime")))

    def summary(self, spec: SessionSpec) -> str:
        text = f"container: image {spec.image}"
        if spec.command_text:
            text += f", command {spec.command_text}"
        return text

    def scope_details(self, scope: str | None) -> dict[str, Any]:
        return {"runtime": scope}

    def machine_problems(self, spec: SessionSpec, config: OpsConfig) -> list[str]:
        import subprocess

        found = [f"volumes[{index}]: {problem}" for index, problem in
                 spec.options.mount_problems()]
        try:
            runtime = self.home(spec, config)
        except KstlibError as exc:
            return [*found, exc.line()]
        assert runtime is not None
        try:
            done = subprocess.run([runtime, "image", "inspect", str(spec.image)],
                                  capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [*found, f"{runtime} did not answer: {exc}"]
        if done.returncode != 0:
            from ...runner import engine_down, first_line

            stderr = done.stderr.decode("utf-8", errors="replace")
            if engine_down(stderr):  # an engine that does not answer knows no image at all
                found.append(f"{runtime}: the engine does not answer: {first_line(stderr)} "
                             "(start it, or fix DOCKER_HOST / CONTAINER_HOST)")
            else:
                found.append(f"image {spec.image!r} not found on {runtime} (kstlib never "
                             "pulls: build or load it first)")
        return found

    def machine_summary(self, config: OpsConfig) -> str | None:
        """The runtimes the container sessions use: the config's default, and each one a
        session names for itself."""
        default = config.setting("container_runtime")
        used = dict.fromkeys(spec.options.runtime or default for spec in config.sessions.values()
                             if isinstance(spec.options, ContainerOptions)) or {default: None}
        shown = []
        for wanted in used:
            how = ("named by a session" if wanted != default
                   else "from the config" if default else "auto-detected")
            try:
                runtime = detect_runtime(wanted)
            except KstlibError as exc:
                shown.append(exc.message)
                continue
            shown.append(f"{runtime} ({shutil.which(runtime)}, {how})")
        return "container runtime: " + "; ".join(shown)

    def warnings(self, spec: SessionSpec) -> list[str]:
        """What ``check`` points out without calling it a problem."""
        from ... import validation

        options = spec.options
        if not isinstance(options, ContainerOptions):
            return []
        found = [f"ports: {port!r} is published on every interface (write "
                 f"'{validation.port_on_this_machine(port)}' to publish on this machine only)"
                 for port in options.ports if validation.port_on_all_interfaces(port)]
        found += [f"allow_host_mounts: {path!r} may be mounted although the mount policy "
                  "would refuse it" for path in options.allow_host_mounts]
        if spec.restart == "always" and spec.max_restarts:
            found.append("max_restarts: containers with restart: always restart without limit "
                         "(the runtimes' policy has no count)")
        return found

    def fingerprint_fields(self, spec: SessionSpec) -> dict[str, Any]:
        options = spec.options
        if not isinstance(options, ContainerOptions):
            return {}
        return {"image": options.image_ref, "volumes": list(options.volumes),
                "ports": list(options.ports), "init": options.init}


TYPE = ContainerType()
