"""Pure helpers of the swarm backend: config values, ``service create`` arguments, and what
``docker service ls / inspect / ps`` print, read into statuses. No docker call here.

Unit-tested on captured output of a docker 20.10 engine (driven by 20.10 and 28 clients).

What the engine prints, and what we rely on:

- ``service ls --format '{{json .}}'``: one object a line (``ID``, ``Name``, ``Mode``,
  ``Replicas`` "1/2", ``Image``); no labels, hence one ``service inspect`` of every id.
- ``service ps --no-trunc --format '{{json .}}'``: one task a line (``ID``, ``Name``
  "svc.SLOT", ``Node`` hostname, ``DesiredState``, ``CurrentState`` "Running 3 seconds ago",
  ``Error`` as a quoted string). The client sorts tasks by name, newest first within a slot:
  the first task of a slot is its current one, the others are earlier attempts (restarts).
- a failed task's error is ``task: non-zero exit (N)``; a completed one exited 0.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...models import SessionStatus, State
from ..base import env_arguments
from ..container.parsing import (
    LABEL_FINGERPRINT,
    LABEL_OVERRIDES,
    LABEL_RESTART,
    LABEL_SESSION,
    label_value,
    load_json_objects,
    parse_labels,
    parse_timestamp,
    recorded_fingerprint,
)

BACKEND = "swarm"
__all__ = ["LABEL_FINGERPRINT", "LABEL_OVERRIDES", "LABEL_RESTART", "LABEL_SESSION"]

MAX_REPLICAS = 100
MAX_CONSTRAINTS = 20
MAX_GRACE = 3600.0
DEFAULT_GRACE = 10.0
RESTART_DELAY = "1s"  # swarm's default is 5 s and has no back-off; tmux starts at 0.5 s
CONTEXT_PREFIX = "context:"

# Task states (lower case). A task in a terminal state has no process and never gets one.
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
# Desired states under which the orchestrator still wants a task to run ("ready": a restart
# waiting out its delay).
WANTED = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting",
                    "running"})

NO_SUCH = ("no such service", "no such task", "no such object")
NAME_TAKEN = ("already exists", "name conflicts")
UNREACHABLE = (
    "cannot connect to the docker daemon",
    "error during connect",
    "is the docker daemon running",
    "connection refused",
    "no such host",
    "connect: no such file or directory",
    "ssh: ",
    "could not resolve hostname",
    "permission denied (publickey",
    "context deadline exceeded",
    "permission denied while trying to connect",
)
_NO_CONTEXT = re.compile(r'context "[^"]*" does not exist', re.IGNORECASE)
NOT_MANAGER = ("not a swarm manager", "this node is not part of a swarm")


# --------------------------------------------------------------------------------------------
# config values (each validator raises voluptuous' Invalid with its own message)
# --------------------------------------------------------------------------------------------


def _invalid(message: str, path: Sequence[Any] = ()) -> Any:
    import voluptuous as vol

    return vol.Invalid(message, path=list(path))


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


_PATH_CHARS = re.compile(r"/[A-Za-z0-9_./@+-]*", re.ASCII)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}", re.ASCII)
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*", re.ASCII)
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]", re.ASCII)
_CONTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", re.ASCII)
DOCKER_HOST_RULE = "expected unix:///absolute/path.sock, ssh://[user@]host[:port] or tcp://host:port"


def _host_port(text: str, *, port_required: bool) -> str | None:
    """Why ``host[:port]`` is not acceptable, or None."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1 :]
        if end == -1 or not _IPV6.fullmatch(host):
            return "bad IPv6 address"
    else:
        host, colon, port = text.partition(":")
        rest = colon + port
        if not _HOSTNAME.fullmatch(host):
            return f"bad host name {_show(host)}"
    if rest:
        port = rest[1:]
        if not rest.startswith(":") or not port.isdigit() or not 1 <= int(port) <= 65535:
            return "the port must be a number 1-65535"
    elif port_required:
        return "give the port (tcp://host:2376)"
    return None


def docker_host(value: Any) -> str:
    """``unix:///path``, ``ssh://[user@]host[:port]`` or ``tcp://host:port``, as ``docker -H``
    takes it; nothing that could carry options or shell syntax."""
    if not isinstance(value, str) or not value:
        raise _invalid(DOCKER_HOST_RULE)
    if len(value) > 256 or not value.isascii() or not value.isprintable() or " " in value:
        raise _invalid(f"invalid docker_host {_show(value)}: {DOCKER_HOST_RULE}")
    scheme, sep, rest = value.partition("://")
    problem: str | None = None
    if not sep:
        problem = DOCKER_HOST_RULE
    elif scheme == "unix":
        if not _PATH_CHARS.fullmatch(rest) or "/../" in rest + "/" or rest.endswith("/"):
            problem = "the socket path must be absolute, without '..'"
    elif scheme == "ssh":
        user, at, hostport = rest.rpartition("@")
        if at and not _USER.fullmatch(user):
            problem = f"bad user name {_show(user)}"
        else:
            problem = _host_port(hostport, port_required=False)
    elif scheme == "tcp":
        problem = _host_port(rest, port_required=True)
    else:
        problem = f"unknown scheme {scheme!r} ({DOCKER_HOST_RULE})"
    if problem:
        raise _invalid(f"invalid docker_host {_show(value)}: {problem}")
    return value


def context_name(value: Any) -> str:
    if not isinstance(value, str) or not _CONTEXT.fullmatch(value):
        raise _invalid(f"invalid docker context name {_show(value)}: letters, digits and "
                       "'_.+-', starting with a letter or digit")
    return value


OPS_KEYS = ("docker_host", "context")


def ops_settings(value: Any) -> dict[str, str] | None:
    """``ops.swarm:``: where the swarm manager is (``docker_host`` or ``context``, not both);
    empty or absent: docker's own default (``DOCKER_HOST``, the current context)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid("expected a mapping with docker_host: or context:")
    import voluptuous as vol

    from ...suggest import did_you_mean

    errors = []
    clean: dict[str, str] = {}
    for key, item in value.items():
        if key not in OPS_KEYS:
            errors.append(_invalid(f"unknown key{did_you_mean(str(key), OPS_KEYS)} (expected "
                                   "docker_host or context)", [key]))
            continue
        check = docker_host if key == "docker_host" else context_name
        try:
            clean[key] = check(item)
        except vol.Invalid as exc:
            errors.append(_invalid(exc.msg, [key]))
    if not errors and len(clean) == 2:
        errors.append(_invalid("give docker_host or context, not both", ["context"]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return clean or None


def scope_of(settings: Mapping[str, str] | None) -> str | None:
    """The scope string of ``ops.swarm``: the docker_host, ``context:NAME``, or None."""
    if not settings:
        return None
    if settings.get("docker_host"):
        return settings["docker_host"]
    if settings.get("context"):
        return CONTEXT_PREFIX + settings["context"]
    return None


def docker_args(scope: str | None) -> list[str]:
    """The global docker options that reach the engine of ``scope``."""
    if not scope:
        return []
    if scope.startswith(CONTEXT_PREFIX):
        return ["--context", scope[len(CONTEXT_PREFIX):]]
    return ["-H", scope]


def replicas(value: Any) -> int:
    if isinstance(value, bool):
        raise _invalid("expected a whole number of replicas, got a boolean")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,4}", value, re.ASCII):
        value = int(value)
    if not isinstance(value, int):
        raise _invalid(f"expected a whole number of replicas, got {_show(value)}")
    if not 0 <= value <= MAX_REPLICAS:
        raise _invalid(f"replicas must be between 0 and {MAX_REPLICAS}, got {value}")
    return value


def grace_period(value: Any) -> float:
    if isinstance(value, bool):
        raise _invalid("expected a number of seconds, got a boolean")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,4}(?:\.[0-9]{1,3})?", value, re.ASCII):
        value = float(value)
    if not isinstance(value, int | float):
        raise _invalid(f"expected a number of seconds, got {_show(value)}")
    if not 0 <= value <= MAX_GRACE:
        raise _invalid(f"stop_grace_period must be between 0 and {MAX_GRACE:g} seconds")
    return float(value)


_LABEL_KEY = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?"
_FIELDS = (r"node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|"
           rf"node\.labels\.{_LABEL_KEY}|engine\.labels\.{_LABEL_KEY}")
_CONSTRAINT = re.compile(
    rf"\s*(?P<field>{_FIELDS})\s*(?P<op>==|!=)\s*(?P<value>[A-Za-z0-9][A-Za-z0-9_.:/-]{{0,127}})\s*",
    re.ASCII,
)
CONSTRAINT_RULE = ("expected FIELD==VALUE or FIELD!=VALUE, FIELD one of node.id, node.hostname, "
                   "node.role, node.platform.os, node.platform.arch, node.labels.NAME, "
                   "engine.labels.NAME; VALUE letters, digits and '_.:/-'")


def constraint(value: Any) -> str:
    """One placement constraint, normalized to ``field==value`` (no spaces)."""
    if not isinstance(value, str):
        raise _invalid(f"expected a constraint such as 'node.role==worker', got {_show(value)}")
    match = _CONSTRAINT.fullmatch(value)
    if not match:
        raise _invalid(f"invalid constraint {_show(value)}: {CONSTRAINT_RULE}")
    field, op, text = match["field"], match["op"], match["value"]
    if field == "node.role" and text not in ("manager", "worker"):
        raise _invalid(f"invalid constraint {_show(value)}: node.role is manager or worker")
    return f"{field}{op}{text}"


def constraints(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise _invalid("expected a list of constraints such as 'node.labels.role==bot'")
    if len(value) > MAX_CONSTRAINTS:
        raise _invalid(f"more than {MAX_CONSTRAINTS} constraints")
    import voluptuous as vol

    clean, errors = [], []
    for index, item in enumerate(value):
        try:
            clean.append(constraint(item))
        except vol.Invalid as exc:
            errors.append(_invalid(exc.msg, [index]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return tuple(clean)


def publish_arg(port: str) -> str:
    """``--publish`` of one validated port (``host:container[/proto]``), in host mode: this
    backend creates services with ``--endpoint-mode dnsrr``, which has no routing mesh.

    ValueError for what swarm cannot do: bind one address (``127.0.0.1:8080:80``), or publish
    without a host port (the engine would pick one and not show it).
    """
    spec, _, proto = port.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3 or spec.startswith("["):
        raise ValueError(f"port {port!r}: swarm cannot publish on one address (it publishes on "
                         "every interface of the node running the task): write host:container")
    if len(parts) == 1:
        raise ValueError(f"port {port!r}: give the host port too (host:container), swarm "
                         "publishes in host mode")
    published, target = parts
    return f"mode=host,target={target},published={published},protocol={proto or 'tcp'}"


_MOUNT_UNSAFE = re.compile(r"[,\"\s]")
_BIND_PROPAGATION = ("shared", "slave", "private", "rshared", "rslave", "rprivate")


def mount_arg(volume: str) -> str:
    """``--mount`` of one validated, resolved volume (``/abs:/dst[:opts]`` or ``name:/dst``).

    ValueError for options swarm mounts do not have (z, Z, U, O, copy, ...) and for paths the
    ``--mount`` CSV syntax cannot carry (a comma, a quote, a space).
    """
    source, _, rest = volume.partition(":")
    target, _, opts = rest.partition(":")
    for part in (source, target):
        if _MOUNT_UNSAFE.search(part):
            raise ValueError(f"volume {volume!r}: a comma, quote or space in a path cannot be "
                             "passed to a swarm mount")
    bind = source.startswith("/")
    args = [f"type={'bind' if bind else 'volume'}", f"source={source}", f"target={target}"]
    for option in [o for o in opts.split(",") if o]:
        if option == "ro":
            args.append("readonly")
        elif option == "rw":
            continue
        elif bind and option in _BIND_PROPAGATION:
            args.append(f"bind-propagation={option}")
        elif not bind and option == "nocopy":
            args.append("volume-nocopy=true")
        else:
            raise ValueError(f"volume {volume!r}: option {option!r} is not supported by swarm "
                             "mounts (ro, rw, and bind propagation or nocopy are)")
    return ",".join(args)


# --------------------------------------------------------------------------------------------
# service create
# --------------------------------------------------------------------------------------------


RESTART_CONDITIONS = {"no": "none", "on-failure": "on-failure", "always": "any"}


def create_argv(*, name: str, image: str, argv: Sequence[str], env: Mapping[str, str],
                fingerprint: Mapping[str, Any], overrides: Mapping[str, Any], restart: str,
                max_restarts: int, replicas: int, constraints: Sequence[str],
                ports: Sequence[str], volumes: Sequence[str], init: bool, grace: float,
                working_dir: str | None, log_max_bytes: int,
                folder: str | None = None) -> list[str]:
    """The ``service create`` arguments (after ``docker [-H HOST]``).

    With ``folder`` (private, temporary) the environment goes through an env file there, read
    by the local client (:func:`~kstlib_tasks.backends.base.env_arguments`), not as words any
    local user can read in ``/proc``; without, as ``--env`` words (tests, dry runs).

    Never waits (``--detach``), never asks a registry on the manager (``--no-resolve-image``;
    the nodes still pull what they lack), DNS round robin (no IPVS, no routing mesh needed).
    ValueError for a port or volume swarm cannot take (see publish_arg, mount_arg).
    """
    args = [
        "service", "create", "--detach", "--no-resolve-image", "--endpoint-mode", "dnsrr",
        "--name", name,
        "--label", f"{LABEL_SESSION}={name}",
        "--label", f"{LABEL_FINGERPRINT}={label_value(fingerprint)}",
        "--label", f"{LABEL_RESTART}={restart}",
    ]
    if overrides:
        args += ["--label", f"{LABEL_OVERRIDES}={label_value(overrides)}"]
    args += ["--replicas", str(replicas), "--restart-condition", RESTART_CONDITIONS[restart]]
    if restart != "no":
        args += ["--restart-delay", RESTART_DELAY]
        if max_restarts:
            args += ["--restart-max-attempts", str(max_restarts)]
    args += ["--stop-grace-period", f"{grace:g}s",
             # bounded, and a driver `service logs` can read
             "--log-driver", "json-file", "--log-opt", f"max-size={log_max_bytes}",
             "--log-opt", "max-file=2"]
    if init:
        args.append("--init")
    if folder is not None:
        args += env_arguments(env, folder)
    else:
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
    for volume in volumes:
        args += ["--mount", mount_arg(volume)]
    for port in ports:
        args += ["--publish", publish_arg(port)]
    for item in constraints:
        args += ["--constraint", item]
    if working_dir:
        args += ["--workdir", working_dir]
    args.append(image)
    args.extend(argv)
    return args


# --------------------------------------------------------------------------------------------
# ls / inspect / ps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One line of ``service ps``."""

    id: str
    service: str  # the service's name, from the task's "svc.SLOT"
    slot: str  # the replica's number (or the node id of a global service's task)
    node: str
    desired: str  # lower case: running, ready, shutdown, remove...
    state: str  # lower case, first word of CurrentState: running, failed, pending...
    error: str

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"

    @property
    def alive(self) -> bool:
        """Has a process, or will get one: running (also while being stopped), or on its way
        and still wanted by the orchestrator."""
        if self.state in TERMINAL:
            return False
        return self.state == "running" or self.desired in WANTED

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    @property
    def exit_code(self) -> int | None:
        return task_exit_code(self.state, self.error)


_EXIT = re.compile(r"non-zero exit \((-?\d+)\)")


def task_exit_code(state: str, error: str) -> int | None:
    """0 for a completed task, N for ``task: non-zero exit (N)``, else None (unknown)."""
    if state == "complete":
        return 0
    match = _EXIT.search(error or "")
    return int(match.group(1)) if match else None


def _unquote(text: Any) -> str:
    value = str(text or "")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            loaded = json.loads(value)
        except ValueError:
            return value[1:-1]
        return loaded if isinstance(loaded, str) else value[1:-1]
    return value


def parse_tasks(text: str) -> list[Task]:
    """Every task of a ``service ps --no-trunc --format '{{json .}}'`` listing, in its order."""
    tasks = []
    for item in load_json_objects(text):
        full = str(item.get("Name") or "").lstrip("\\_ ").strip()
        service, _, slot = full.rpartition(".")
        state = str(item.get("CurrentState") or "").split(" ", 1)[0].lower()
        tasks.append(Task(
            id=str(item.get("ID") or ""),
            service=service or full,
            slot=slot,
            node=str(item.get("Node") or ""),
            desired=str(item.get("DesiredState") or "").lower(),
            state=state,
            error=_unquote(item.get("Error")),
        ))
    return tasks


def stale(tasks: Iterable[Task]) -> bool:
    """True when a task still looks alive although the orchestrator gave it up (desired
    shutdown): being stopped, or on a node that went down. Only then are the nodes read."""
    return any(not t.ended and t.desired not in WANTED for t in tasks)


def down_nodes(text: str) -> frozenset[str]:
    """Hostnames of the nodes ``node ls --format '{{json .}}'`` does not report Ready."""
    return frozenset(str(item.get("Hostname") or "") for item in load_json_objects(text)
                     if str(item.get("Status") or "").lower() != "ready")


def parse_ls(text: str) -> list[dict[str, Any]]:
    """The objects of ``service ls --format '{{json .}}'`` (``ID``, ``Name``, ``Replicas``...)."""
    return [item for item in load_json_objects(text) if item.get("ID")]


def service_name(service: Mapping[str, Any]) -> str:
    spec = service.get("Spec")
    return str(spec.get("Name") or "") if isinstance(spec, Mapping) else ""


def service_id(service: Mapping[str, Any]) -> str:
    return str(service.get("ID") or "")


def service_labels(service: Mapping[str, Any]) -> dict[str, str]:
    spec = service.get("Spec")
    return parse_labels(spec.get("Labels") if isinstance(spec, Mapping) else None)


def _container_spec(service: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = service.get("Spec")
    template = spec.get("TaskTemplate") if isinstance(spec, Mapping) else None
    container = template.get("ContainerSpec") if isinstance(template, Mapping) else None
    return container if isinstance(container, Mapping) else {}


def desired_replicas(service: Mapping[str, Any]) -> int | None:
    """The replicas a replicated service asks for; None for a global one."""
    spec = service.get("Spec")
    mode = spec.get("Mode") if isinstance(spec, Mapping) else None
    if isinstance(mode, Mapping):
        replicated = mode.get("Replicated")
        if isinstance(replicated, Mapping):
            count = replicated.get("Replicas")
            return count if isinstance(count, int) else 0
    return None


def service_command(service: Mapping[str, Any]) -> str | None:
    container = _container_spec(service)
    argv = [str(a) for key in ("Command", "Args") for a in (container.get(key) or [])]
    return shlex.join(argv) if argv else None


def _slots(tasks: Iterable[Task]) -> dict[str, list[Task]]:
    """slot -> its tasks, newest first (the order ``service ps`` prints them in)."""
    found: dict[str, list[Task]] = {}
    for task in tasks:
        found.setdefault(task.slot, []).append(task)
    return found


def service_status(service: Mapping[str, Any], tasks: Sequence[Task], *,
                   scope: str | None, scope_details: Mapping[str, Any],
                   down: frozenset[str] = frozenset()) -> SessionStatus:
    """A service and its tasks (every attempt) as one status.

    running: a task runs, or the orchestrator is bringing one up (pending, preparing, a
    restart waiting out its delay): the note then says why nothing runs yet. exited: every
    task ended and none is wanted any more; the exit code is the first non-zero one of the
    replicas' last tasks, else 0. stopped: a service scaled to 0 replicas.

    A task on a node in ``down`` (hostnames) is *lost*: it neither runs nor ends as far as
    anyone can tell; the note names its node (the swarm replaces it only under a restart
    policy, on a node the constraints allow).
    """
    name = service_name(service)
    labels = service_labels(service)
    desired = desired_replicas(service)
    slots = _slots(t for t in tasks if t.service == name)
    current = [history[0] for history in slots.values()]
    every = [t for history in slots.values() for t in history]
    lost = [t for t in every if t.node in down and not t.ended]
    running = [t for t in current if t.running and t not in lost]
    alive = [t for t in every if t.alive and t not in lost]
    restarts = sum(len(history) - 1 for history in slots.values())
    wanted = desired if desired is not None else len(current)
    exit_code: int | None = None
    note: str | None = None
    if running:
        state = State.RUNNING
    elif alive or (desired and not current):
        state = State.RUNNING
        note = _waiting_note(wanted, alive)
    elif desired == 0:
        state = State.STOPPED
    else:
        state = State.EXITED
        codes = [t.exit_code for t in current if t not in lost]
        exit_code = next((c for c in codes if c), None)
        if exit_code is None:
            exit_code = 0 if codes and all(c == 0 for c in codes) else None
    if lost:
        where = ", ".join(dict.fromkeys(t.node for t in lost))
        lost_note = f"{len(lost)} task{'s' if len(lost) > 1 else ''} lost: node {where} is down"
        if running:
            note = f"{len(running)} of {wanted} replicas running; {lost_note}"
        else:
            note = f"{note}; {lost_note}" if note else lost_note
    errors = [t for t in every if t.error]
    last_ended = next((t for t in current if t.ended), None)
    nodes = [t.node for t in (running or current) if t.node]
    details: dict[str, Any] = {
        **scope_details,
        "id": service_id(service),
        "replicas": f"{len(running)}/{wanted}",
        "nodes": ", ".join(dict.fromkeys(nodes)) or None,
        "last_error": errors[0].error if errors else None,
        "last_exit_code": last_ended.exit_code if last_ended else None,
        "restart": labels.get(LABEL_RESTART),
    }
    if desired is None:
        details["mode"] = "global"
    image = _container_spec(service).get("Image")
    return SessionStatus(
        name=name,
        backend=BACKEND,
        state=state,
        scope=scope,
        image=str(image) if image else None,
        exit_code=exit_code,
        created_at=parse_timestamp(service.get("CreatedAt")),
        managed=LABEL_SESSION in labels,
        command=service_command(service),
        restarts=restarts,
        recorded=recorded_fingerprint(labels),
        details=details,
        note=note,
    )


def _waiting_note(wanted: int, alive: Sequence[Task]) -> str:
    """Why a service counted as running has no running task: ``0 of 1 replicas running: 1
    pending (no suitable node ...), 1 being stopped on n2``."""
    parts = []
    coming = [t for t in alive if t.state != "running"]
    if coming:
        reason = next((t.error for t in coming if t.error), "")
        parts.append(f"{len(coming)} {coming[0].state}" + (f" ({reason})" if reason else ""))
    stopping = [t for t in alive if t.state == "running"]
    if stopping:
        nodes = ", ".join(dict.fromkeys(t.node for t in stopping if t.node))
        parts.append(f"{len(stopping)} being stopped" + (f" on {nodes}" if nodes else ""))
    return f"0 of {wanted} replicas running: " + (", ".join(parts) or "starting")


def task_record(item: Mapping[str, Any]) -> tuple[str, str, int | None, str]:
    """(task id, lower-case state, exit code, container id) of a ``docker inspect --type task``
    object; the exit code only once the task ended."""
    status = item.get("Status")
    status = status if isinstance(status, Mapping) else {}
    container = status.get("ContainerStatus")
    container = container if isinstance(container, Mapping) else {}
    state = str(status.get("State") or "").lower()
    code = container.get("ExitCode")
    exit_code = code if isinstance(code, int) and state in TERMINAL else None
    if exit_code is None and state in TERMINAL:
        exit_code = task_exit_code(state, str(status.get("Err") or ""))
    return str(item.get("ID") or ""), state, exit_code, str(container.get("ContainerID") or "")


def engine_problem(stderr: str) -> str | None:
    """``unreachable`` (no engine answers there), ``not-manager``, or None (another error)."""
    low = stderr.lower()
    if any(n in low for n in NOT_MANAGER):
        return "not-manager"
    if any(n in low for n in UNREACHABLE) or _NO_CONTEXT.search(stderr):
        return "unreachable"
    return None


def mentions(text: str, needles: Iterable[str]) -> bool:
    low = text.lower()
    return any(n in low for n in needles)
