"""Kubernetes manifests: an ``apps/v1`` Deployment per long-running container session, a
``batch/v1`` Job per completion step (a session some dependent waits for with ``completed``).

What has no Kubernetes equivalent is said in a note (see docs/export.md): the start order of
``depends_on``, ``restart: no``/``on-failure`` for a Deployment (its pods always restart), log
probes, the host side of published ports, volume options other than ``ro``/``rw``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .plan import Check, Mount, Plan, Service

MANAGED_BY = "kstlib"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
DESCRIPTION = "kubernetes.io/description"
# How often kubelet runs a readiness probe: kstlib's own steady polling rhythm.
PERIOD_SECONDS = 1
_EXPANDED = re.compile(r"\$(?=[$(])")


def escape(text: str) -> str:
    """Kubernetes expands ``$(NAME)`` in command, args and env values and reads ``$$`` as
    ``$``: a ``$`` before ``$`` or ``(`` is doubled so the text arrives as written (any other
    ``$`` is kept by Kubernetes as it is, so it is left alone)."""
    return _EXPANDED.sub("$$", text)


def documents(result: Plan) -> list[dict[str, Any]]:
    """One document per service, in ``up`` order (dependencies first)."""
    docs = []
    for service in result.services:
        docs.append(_job(service, result) if service.completion else
                    _deployment(service, result))
    return docs


def _labels(service: Service) -> dict[str, str]:
    return {NAME_LABEL: service.name, MANAGED_LABEL: MANAGED_BY}


def _metadata(service: Service) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": service.name, "labels": _labels(service)}
    if service.spec.description:
        meta["annotations"] = {DESCRIPTION: service.spec.description}
    return meta


def _deployment(service: Service, result: Plan) -> dict[str, Any]:
    spec = service.spec
    if spec.restart != "always":
        limit = f" (max_restarts {spec.max_restarts})" if spec.restart == "on-failure" else ""
        result.note(spec.name, f"restart: {spec.restart}{limit} has no Deployment equivalent: "
                    "its pod restarts whenever it ends (restartPolicy: Always)")
    pod = _pod(service, result, "Always")
    body: dict[str, Any] = {"replicas": 1 if service.replicas is None else service.replicas,
                            "selector": {"matchLabels": {NAME_LABEL: service.name}}}
    body["template"] = {"metadata": {"labels": _labels(service)}, "spec": pod}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(service),
            "spec": body}


def _job(service: Service, result: Plan) -> dict[str, Any]:
    spec = service.spec
    if spec.restart == "no":
        policy, backoff = "Never", 0
    else:
        policy, backoff = "OnFailure", spec.max_restarts
        if spec.restart == "always":
            result.note(spec.name, "restart: always: a Job is done once it succeeds, so it is "
                        "restarted on failure only (restartPolicy: OnFailure)")
            if spec.max_restarts == 0:
                backoff = 6  # Kubernetes' own default: a Job has no "no limit"
    if service.replicas not in (None, 1):
        result.note(spec.name, f"replicas {service.replicas}: a completion step runs once "
                    "(a Job of one pod)")
    body = {"backoffLimit": backoff,
            "template": {"metadata": {"labels": _labels(service)},
                         "spec": _pod(service, result, policy)}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(service),
            "spec": body}


def _pod(service: Service, result: Plan, restart_policy: str) -> dict[str, Any]:
    spec = service.spec
    if service.depends:
        waits = ", ".join(f"{d.session} ({d.condition})" for d in service.depends)
        result.note(spec.name, f"depends_on {waits}: Kubernetes has no start order; the "
                    "documents are written dependencies first, and the pods start together")
    pod: dict[str, Any] = {}
    if service.init:
        # The pod's pause process becomes PID 1 and reaps zombies, the job of --init.
        pod["shareProcessNamespace"] = True
    pod["restartPolicy"] = restart_policy
    pod["containers"] = [_container(service, result)]
    volumes = [_volume(index, mount) for index, mount in enumerate(service.mounts)]
    if volumes:
        pod["volumes"] = volumes
    return pod


def _container(service: Service, result: Plan) -> dict[str, Any]:
    spec = service.spec
    container: dict[str, Any] = {"name": service.name, "image": service.image,
                                 "imagePullPolicy": "IfNotPresent"}
    if service.argv:
        # args, not command: like `podman run IMAGE ARGV`, the image's ENTRYPOINT is kept
        container["args"] = [escape(word) for word in service.argv]
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if service.env:
        container["env"] = [{"name": k, "value": escape(v)} for k, v in service.env]
    ports: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    published = []
    for port in service.ports:
        if port.host is not None:
            published.append(port.text)
        key = (port.container, port.protocol.upper())
        if key not in seen:
            seen.add(key)
            ports.append({"containerPort": port.container, "protocol": key[1]})
    if published:
        result.note(spec.name, f"ports {', '.join(published)}: only the container ports are "
                    "declared; publish them with a Service (or kubectl port-forward)")
    if ports:
        container["ports"] = ports
    if service.check is not None:
        container["readinessProbe"] = _probe(service.check, result, spec.name)
    mounts = []
    for index, mount in enumerate(service.mounts):
        entry: dict[str, Any] = {"name": _volume_name(index), "mountPath": mount.target}
        if mount.read_only:
            entry["readOnly"] = True
        other = [o for o in mount.options if o not in ("ro", "rw")]
        if other:
            result.note(spec.name, f"volume {mount.text!r}: option {', '.join(other)} has no "
                        "Kubernetes equivalent (skipped)")
        mounts.append(entry)
        if mount.kind == "volume":
            result.note(spec.name, f"named volume '{mount.source}' becomes an emptyDir: its "
                        "data lives as long as the pod, and is not shared with other pods "
                        "(use a PersistentVolumeClaim to keep it)")
    if mounts:
        container["volumeMounts"] = mounts
    # As kstlib runs it (--interactive --tty): output unbuffered, kubectl attach works.
    container["stdin"] = True
    container["tty"] = True
    return container


def _volume_name(index: int) -> str:
    return f"volume-{index}"


def _volume(index: int, mount: Mount) -> dict[str, Any]:
    if mount.kind == "bind":
        return {"name": _volume_name(index), "hostPath": {"path": mount.source}}
    return {"name": _volume_name(index), "emptyDir": {}}


def _probe(check: Check, result: Plan, session: str) -> dict[str, Any]:
    probe: dict[str, Any]
    if check.kind == "tcp":
        action: dict[str, Any] = {"port": check.port}
        if check.host:
            action = {"host": check.host, **action}
        probe = {"tcpSocket": action}
    elif check.kind == "http":
        action = {"path": check.path, "port": check.port, "scheme": check.scheme.upper()}
        if check.host:
            action = {"host": check.host, **action}
        probe = {"httpGet": action}
    elif check.kind == "exec":
        probe = {"exec": {"command": list(check.argv)}}
    else:  # delay: a probe that always passes, first run after the delay
        result.note(session, f"ready: delay {check.delay:g}s becomes a readinessProbe running "
                    "'true' after initialDelaySeconds (the image needs a 'true' program)")
        probe = {"exec": {"command": ["true"]},
                 "initialDelaySeconds": max(1, math.ceil(check.delay))}
    probe["periodSeconds"] = PERIOD_SECONDS
    probe["timeoutSeconds"] = int(check.attempt)
    return probe
