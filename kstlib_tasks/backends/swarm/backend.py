"""Swarm backend: a session is a replicated Docker Swarm service named after it.

Every call goes through :class:`~kstlib_tasks.runner.Runner` (``docker [-H HOST | --context
NAME] ...``, argv only); what docker prints is read by :mod:`.parsing`. As with containers,
docker resolves a service reference as id, then name, then *id prefix*: every verb that acts on
an existing service first inspects it, checks the exact name and then works on its id.

Call counts (about 15 ms each with a docker 28 client): start 1 (``service create``; replacing
a leftover adds inspect, ps, rm and a second create), status 2 in parallel (``service inspect``
and ``service ps``), list 3 (``service ls``, then ``service inspect`` and ``service ps`` of every
service at once, in parallel: ``ls`` and ``ps`` print no labels), logs 2, stop about 6 plus the
polls of the tasks' end.

Stopping. Swarm has no "stop": a stop scales the service to 0 and waits for the tasks to end,
then removes the service. The tasks get their stop signal, then SIGKILL after the grace period
they were created with (``stop_grace_period``, 10 s; a later ``service update`` does not reach
running tasks). A scaled-down task is deleted with its output about a second after it ends, so
``stop`` follows the logs from before the scale-down to the end, and keeps them (bounded) for
``logs`` after removal. ``--timeout`` (or ``--force``, at once) kills the tasks on the engine
kstlib talks to (``docker kill``); tasks on other nodes end with their grace period. A task on
a node that is down never reports its end: once the wait is over, the service is removed anyway
and a note says which nodes did not answer.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import re
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ... import logstore
from ...errors import (
    BackendError,
    BackendNotFoundError,
    SessionAlreadyRunningError,
    Suggest,
    ValidationError,
)
from ...models import SessionStatus, State
from ...runner import Result, Runner, first_line
from ..base import Backend, Launch, Lines, follow_process, iso_utc, last_lines
from ..container.parsing import load_json_objects, timestamped
from .parsing import (
    BACKEND,
    DEFAULT_GRACE,
    LABEL_SESSION,
    NAME_TAKEN,
    NO_SUCH,
    Task,
    create_argv,
    desired_replicas,
    docker_args,
    down_nodes,
    engine_problem,
    mentions,
    parse_ls,
    parse_tasks,
    service_id,
    service_labels,
    service_name,
    service_status,
    stale,
    task_record,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")
# Names of their own: inside a class with a `list` method, `list[...]` would name the method.
Items = list[dict[str, Any]]
Tasks = list[Task]
Ids = list[str]

SERVICE_ID_LABEL = "com.docker.swarm.service.id"
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"
END_SLACK = 15.0  # seconds an agent may take past the grace period to report a task's end
FIRST_OUTPUT_WAIT = 1.0  # how long stop lets its log follower connect before scaling down


def _both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Two calls at once (two docker calls cost the time of one)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        one = pool.submit(first)
        two = pool.submit(second)
        return one.result(), two.result()


class SwarmBackend(Backend):
    """Sessions as services of one swarm, reached through its manager's engine."""

    kind = BACKEND

    def __init__(self, scope: str | None, *, binary: str = "docker", timeout: float = 30.0):
        # Cheap on purpose: built for every config/CLI call, it must not run anything.
        super().__init__(scope)
        self.runner = Runner(binary, docker_args(scope), timeout=timeout)

    def where(self) -> str:
        return f"swarm {self.scope}" if self.scope else "swarm"

    def manager(self) -> str:
        """The manager in words, for messages."""
        return f"the swarm manager at {self.scope}" if self.scope else (
            "the swarm manager (docker's default engine)")

    def _details(self) -> dict[str, Any]:
        from . import TYPE

        return TYPE.scope_details(self.scope)

    # -- one docker call ------------------------------------------------------------------------

    def _run(self, what: str, *args: str, gone_ok: bool = False,
             timeout: float | None = None) -> Result | None:
        """Run; None when ``gone_ok`` and docker says there is no such service; an error in the
        engine's words otherwise (one line: never a traceback)."""
        try:
            result = self.runner.run(*args, check=False, timeout=timeout)
        except BackendNotFoundError:
            raise
        except BackendError as exc:  # the runner's timeout
            raise BackendNotFoundError(f"{self.manager()} does not answer: {exc.message}",
                                       hint=_CHECK_OPS) from None
        return self.unless_gone(result, lambda stderr: gone_ok and mentions(stderr, NO_SUCH),
                                lambda failed: self.failure(what, failed))

    def failure(self, what: str, result: Result) -> BackendError | BackendNotFoundError:
        line = _error_line(result.stderr) or f"exit code {result.exit_code}"
        problem = engine_problem(result.stderr)
        if problem == "unreachable":
            return BackendNotFoundError(f"{self.manager()} does not answer: {line}",
                                        hint=_CHECK_OPS)
        if problem == "not-manager":
            return BackendNotFoundError(
                f"{self.manager().replace('the swarm manager', 'the engine')} is not a swarm "
                f"manager: {line}",
                hint="point ops.swarm at a manager (docker node ls on a manager lists them)")
        return BackendError(f"{self.where()}: {what} failed: {line}")

    # -- reading --------------------------------------------------------------------------------

    def _inspect(self, ref: str) -> dict[str, Any] | None:
        """The service named (or with the full id) ``ref``; None when there is none. A service
        reached only through an id prefix is not ``ref``."""
        result = self._run(f"service inspect of '{ref}'", "service", "inspect", ref,
                           gone_ok=True)
        if result is None:
            return None
        for item in load_json_objects(result.stdout):
            if service_name(item) == ref or service_id(item) == ref:
                return item
        return None

    def _inspect_many(self, refs: Sequence[str]) -> Items:
        result = self.runner.run("service", "inspect", *refs, check=False)
        found = load_json_objects(result.stdout) if result.stdout.strip() else []
        if not result.ok and not found and not mentions(result.stderr, NO_SUCH):
            raise self.failure("service inspect", result)
        return found

    def _tasks(self, *refs: str) -> Tasks:
        """Every task (every attempt) of the services ``refs`` (vanished ones have none)."""
        result = self.runner.run("service", "ps", "--no-trunc", "--format", "{{json .}}",
                                 *refs, check=False)
        tasks = parse_tasks(result.stdout) if result.stdout.strip() else []
        if not result.ok and not tasks and not mentions(result.stderr, NO_SUCH):
            raise self.failure("service ps", result)
        return tasks

    def _status(self, item: Mapping[str, Any], tasks: Sequence[Task],
                down: frozenset[str] | None = None) -> SessionStatus:
        if down is None:
            down = self._down(tasks)
        return service_status(item, tasks, scope=self.scope, scope_details=self._details(),
                              down=down)

    def _down(self, tasks: Sequence[Task]) -> frozenset[str]:
        """The nodes that are down, read (one ``node ls``) only when a task looks stale."""
        if not stale(tasks):
            return frozenset()
        result = self.runner.run("node", "ls", "--format", "{{json .}}", check=False)
        return down_nodes(result.stdout) if result.ok else frozenset()

    def _lookup(self, name: str) -> tuple[dict[str, Any] | None, Tasks]:
        """The service of that exact name and its tasks, read at once."""
        item, tasks = _both(lambda: self._inspect(name), lambda: self._tasks(name))
        return item, [t for t in tasks if t.service == name]

    def status(self, name: str) -> SessionStatus | None:
        item, tasks = self._lookup(name)
        return self._status(item, tasks) if item is not None else None

    def list(self) -> list[SessionStatus]:
        """Every service (kstlib's or not): ``service ls``, then one ``service inspect`` (the
        labels) and one ``service ps`` (the tasks) of all of them, in parallel."""
        result = self._run("service ls", "service", "ls", "--format", "{{json .}}")
        assert result is not None
        try:
            listed = parse_ls(result.stdout)
        except ValueError as exc:
            raise BackendError(f"{self.where()}: service ls printed something that is not "
                               f"JSON: {exc}") from None
        if not listed:
            return []
        ids = [str(item["ID"]) for item in listed]
        services, tasks = _both(lambda: self._inspect_many(ids), lambda: self._tasks(*ids))
        by_service: dict[str, Tasks] = {}
        for task in tasks:
            by_service.setdefault(task.service, []).append(task)
        down = self._down(tasks)
        return [self._status(item, by_service.get(service_name(item), []), down)
                for item in services]

    # -- start ----------------------------------------------------------------------------------

    def create_args(self, launch: Launch, folder: str | None = None) -> Ids:
        """The ``service create`` arguments (after ``docker [-H ...]``); public for tests.
        ``folder``: where the env file goes (see :func:`.parsing.create_argv`)."""
        from . import SwarmOptions, _port_problems

        spec = launch.spec
        options = spec.options
        if not isinstance(options, SwarmOptions) or not options.image:
            raise ValidationError("image", "a swarm session needs an image", session=spec.name)
        # checked again now: a symlink may point elsewhere than when the config was read
        for index, problem in options.mount_problems():
            raise ValidationError(f"volumes[{index}]", problem, session=spec.name)
        for index, problem in _port_problems(options.ports):
            raise ValidationError(f"ports[{index}]", problem, session=spec.name)
        return create_argv(
            name=spec.name, image=options.image, argv=launch.argv, env=launch.env,
            fingerprint=launch.fingerprint, overrides=launch.overrides, restart=spec.restart,
            max_restarts=spec.max_restarts, replicas=options.replicas,
            constraints=options.constraints, ports=options.ports, volumes=options.volumes,
            init=options.init, grace=options.stop_grace_period,
            working_dir=spec.working_dir, log_max_bytes=logstore.max_bytes(), folder=folder,
        )

    def start(self, launch: Launch) -> SessionStatus:
        """``service create --detach``: returns at once, never waiting for the tasks (``start
        --wait`` waits with the probes). An ended leftover of ours of that name is removed and
        created again from the *current* spec; a running one is SessionAlreadyRunningError; a
        service not started by kstlib is refused, never removed."""
        spec = launch.spec
        name = spec.name
        with tempfile.TemporaryDirectory(prefix="kstlib-") as tmp:
            argv = self.create_args(launch, tmp)
            result = self.runner.run(*argv, check=False)
            if not result.ok and mentions(result.stderr, NAME_TAKEN):
                self._remove_leftover(name)
                result = self.runner.run(*argv, check=False)
                if not result.ok and mentions(result.stderr, NAME_TAKEN):
                    raise self.already_running(name)  # lost a race with another start
        if not result.ok:
            error = self.failure(f"creating '{name}'", result)
            if isinstance(error, BackendNotFoundError):
                raise error
            raise BackendError(f"{self.where()} could not start '{name}': "
                               f"{_error_line(result.stderr) or result.exit_code}", session=name)
        # A new run, a new log: the copy kept by an earlier stop is now outdated.
        logstore.reset(self.log_path(name))
        lines = result.stdout.split()
        options = spec.options
        replicas = getattr(options, "replicas", 1)
        return SessionStatus(
            name=name, backend=self.kind,
            state=State.RUNNING if replicas else State.STOPPED,
            scope=self.scope, image=spec.image, created_at=iso_utc(time.time()), managed=True,
            command=shlex.join(launch.argv) or None, restarts=0,
            recorded={"fp": dict(launch.fingerprint), "ov": dict(launch.overrides)},
            details={**self._details(), "id": lines[-1] if lines else None,
                     "replicas": f"0/{replicas}", "restart": spec.restart},
            note=f"0 of {replicas} replicas running: starting" if replicas else None,
        )

    def _remove_leftover(self, name: str) -> None:
        """Make room for a new run of ``name``: only an ended service of ours goes."""
        item, tasks = self._lookup(name)
        if item is None:
            return  # removed meanwhile
        if LABEL_SESSION not in service_labels(item):
            raise SessionAlreadyRunningError(
                f"a service named '{name}' exists on {self.where()} and was not started by "
                "kstlib; it is left alone", session=name,
                hint=f"remove it yourself if it is not needed: docker service rm {name}")
        if self._status(item, tasks).state == State.RUNNING:
            raise self.already_running(name)
        self._run(f"removing the ended '{name}'", "service", "rm", service_id(item),
                  gone_ok=True)

    # -- logs -----------------------------------------------------------------------------------

    def live_logs(self, name: str, lines: int | None) -> Lines | None:
        """``service logs`` (every task on every node, kept after they ended) while the
        service exists; None when it does not."""
        item = self._inspect(name)
        if item is None:
            return None
        args = ["service", "logs", "--raw", "--timestamps"]
        if lines is not None:
            args += ["--tail", str(lines)]
        result = self.runner.run(*args, service_id(item), check=False)
        if not result.ok:
            if mentions(result.stderr, NO_SUCH):
                return None
            if not mentions(result.stderr, _PARTIAL):
                raise self.failure(f"service logs of '{name}'", result)
            # a node that is down: what the others kept is still worth showing
            log.warning("logs of %s are incomplete: %s", name, _error_line(result.stderr))
        merged = _by_time([timestamped(result.stdout), timestamped(result.stderr)])
        return last_lines(merged, lines)

    def follow(self, name: str, lines: int | None = None, *,
               stopped: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """``service logs --follow`` until the service no longer runs (checked every second:
        docker's follow never ends by itself) or ``stopped()``."""
        item, tasks = self._lookup(name)
        if item is None or self._status(item, tasks).state != State.RUNNING:
            yield from self.logs(name, lines)
            return
        args = ["service", "logs", "--follow", "--raw"]
        if lines is not None:
            args += ["--tail", str(lines)]
        next_check = [time.monotonic() + 1.0]

        def ended(done: threading.Event) -> bool:
            if stopped():
                return True
            if time.monotonic() < next_check[0]:
                return False
            next_check[0] = time.monotonic() + 1.0
            try:
                status = self.status(name)
            except (BackendError, BackendNotFoundError):
                return False
            if status is None or status.state != State.RUNNING:
                done.wait(0.5)  # the last lines are still on their way
                return True
            return False

        yield from follow_process(self.runner.argv(*args, service_id(item)), ended)

    # -- stop -----------------------------------------------------------------------------------

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Scale to 0, wait for the tasks to end (``timeout``, then kill what this engine
        runs; ``force``: at once), keep the output, remove the service.

        Works on any service of that exact name, also one not started by kstlib. Returns the
        status just before removal (exited, with the exit code of the last task when known).
        """
        item, tasks = self._lookup(name)
        if item is None:
            raise self.not_running(name, "(no service of that name)")
        sid = service_id(item)
        down = self._down(tasks)
        before = self._status(item, tasks, down)
        alive = [t for t in tasks if t.alive and t.node not in down]
        path = self.log_path(name)
        notes: Ids = []
        lost = sorted({t.node for t in tasks if t.node in down and not t.ended})
        if lost:
            notes.append(f"node {', '.join(lost)} is down: its tasks end when it comes back")
        if not alive:
            saved = self._save(path, self._output_once(sid))
            self._run(f"removing '{name}'", "service", "rm", sid, gone_ok=True)
            return before.with_changes(note="; ".join([*notes, *filter(None, [saved])]) or None)
        here = self._here(sid)
        with _Follower(self.runner, sid) as follower, _Waiter(self.runner, here) as waiter:
            follower.wait_first_output(FIRST_OUTPUT_WAIT)
            if desired_replicas(item) is not None:
                self._run(f"scaling '{name}' to 0", "service", "update", "--detach",
                          "--replicas", "0", sid, gone_ok=True)
            if force:
                self._kill_here(sid, here)
            codes, missing = self._wait_ended(sid, [t.id for t in alive], timeout=timeout,
                                              grace=_grace(item), force=force, down=down)
            follower.drain()
            output = follower.lines()
            # the exit codes of this engine's containers are exact (a task may be deleted
            # before its end is read); the others' as read from their tasks
            codes = {**codes, **waiter.codes()}
        if missing:
            notes.append(f"{missing} did not report the end of its task (node down?); the "
                         "service is removed anyway")
        saved = self._save(path, output)
        if saved:
            notes.append(saved)
        self._run(f"removing '{name}'", "service", "rm", sid, gone_ok=True)
        seen = [*codes.values()]
        code = next((c for c in seen if c), seen[0] if seen else None)
        return before.with_changes(state=State.EXITED, exit_code=code,
                                   note="; ".join(notes) or None)

    def _wait_ended(self, sid: str, task_ids: Ids, *, timeout: float, grace: float,
                    force: bool, down: frozenset[str]) -> tuple[dict[str, int], str | None]:
        """Poll the tasks (``docker inspect --type task``) until each ended or is gone.

        Returns the exit codes seen (by container id) and the nodes of tasks that never reported
        their end (None when all did). At ``timeout`` the tasks this engine runs are killed.
        """
        began = time.monotonic()
        soft = began + max(0.0, timeout)
        hard = began + max(timeout, grace) + END_SLACK
        killed = force
        pending: Ids = [*task_ids]
        codes: dict[str, int] = {}
        interval = 0.05
        rechecked = False
        while True:
            result = self.runner.run("inspect", "--type", "task", *pending, check=False)
            seen = {}
            for item in load_json_objects(result.stdout) if result.stdout.strip() else []:
                tid, state, code, container = task_record(item)
                seen[tid] = state
                if code is not None:
                    codes[container or tid] = code
            pending = [t for t in pending if t in seen and seen[t] not in _ENDED]
            if not pending:
                if rechecked:
                    break
                # a task created just before the scale-down (a restart) is waited for too
                rechecked = True
                pending = [t.id for t in self._tasks(sid) if t.alive and t.node not in down]
                if not pending:
                    break
                continue
            now = time.monotonic()
            if not killed and now >= soft:
                killed = True
                self._kill_here(sid)
            if now >= hard:
                nodes = {t.id: t.node for t in self._tasks(sid)}
                where = ", ".join(sorted({nodes.get(t, "?") for t in pending}))
                return codes, f"node {where}"
            time.sleep(interval)
            interval = min(interval * 1.5, 0.1)  # a stopped task is deleted ~0.25 s after it ends
        return codes, None

    def _here(self, sid: str) -> Ids:
        """The containers of the service on the engine kstlib talks to."""
        found = self.runner.run("ps", "--quiet", "--no-trunc", "--filter",
                                f"label={SERVICE_ID_LABEL}={sid}", check=False)
        return found.stdout.split()

    def _kill_here(self, sid: str, ids: Ids | None = None) -> None:
        """``docker kill`` the containers of the service on the engine kstlib talks to."""
        ids = self._here(sid) if ids is None else ids
        if ids:
            self.runner.run("kill", *ids, check=False)

    def _output_once(self, sid: str) -> Iterator[str]:
        """What the service's tasks printed (they ended: nothing more will come)."""
        tail = str(max(1000, logstore.max_bytes() // 8))
        argv = self.runner.argv("service", "logs", "--raw", "--timestamps", "--tail", tail, sid)
        with _private_files() as (out_path, err_path):
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                try:
                    subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   timeout=self.runner.timeout, check=False)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    log.warning("service logs of %s: %s", sid, exc)
            yield from _merged_files(out_path, err_path)

    def _save(self, path: Path, lines: Iterator[str] | Lines) -> str | None:
        """Keep the output for ``logs`` after removal; a note when it could not be written
        (disk full, read-only): that costs the copy, never the stop."""
        try:
            logstore.save_lines(path, lines)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return f"output not kept: {reason} ({path.parent})"
        return None

    # -- the rest of the contract ---------------------------------------------------------------

    def attach(self, name: str) -> NoReturn:
        raise BackendError(
            f"session '{name}' is a swarm service: its tasks have no terminal to attach to",
            session=name,
            hint=lambda front: f"follow its output instead: {Suggest('logs', name).spell(front)}"
            " -f")

    def run_probe(self, name: str, argv: Sequence[str], *, env: Mapping[str, str],
                  cwd: str | None, timeout: float) -> int:
        """An ``exec`` probe runs inside a running task's container when that container is on
        the engine kstlib talks to (``docker exec``). A task running on another node cannot be
        reached: a clear error, not a probe that fails until its timeout."""
        ids = self._running_here(name)
        if not ids:
            status = self.status(name)
            if status is None or status.details.get("replicas", "0/").split("/")[0] == "0":
                return 1  # nothing runs yet: not ready
            # a task reported running has its container running already: one that started
            # here between the two looks is found now
            ids = self._running_here(name)
            if not ids:
                raise BackendError(
                    f"exec probe of '{name}': its tasks run on {status.details.get('nodes')}, "
                    f"which kstlib cannot reach ({self.where()} runs none of them): use a log, "
                    "tcp or http probe", session=name)
        try:
            result = self.runner.run("exec", ids[0], *argv, check=False, timeout=timeout)
        except BackendError:
            return 124
        return result.exit_code

    def _running_here(self, name: str) -> Ids:
        """The running containers of service ``name`` on the engine kstlib talks to."""
        found = self.runner.run("ps", "--quiet", "--no-trunc", "--filter",
                                f"label={SERVICE_NAME_LABEL}={name}", "--filter",
                                "status=running", check=False)
        return found.stdout.split()

    # -- check ----------------------------------------------------------------------------------

    def problems(self, spec: Any) -> Ids:
        """What keeps ``spec`` from starting here: not a manager, an image no node can get."""
        result = self._run("info", "info", "--format",
                           "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")
        assert result is not None
        if result.stdout.split() != ["active", "true"]:
            engine = self.manager().replace("the swarm manager", "the engine")
            return [f"{engine} is not a swarm manager ({result.stdout.strip()}): point "
                    "ops.swarm at a manager, or run docker swarm init"]
        image = str(spec.image)
        found = self.runner.run("image", "inspect", "--format", "{{.Id}}", image, check=False)
        if not found.ok and not _has_registry(image):
            return [f"image {image!r} is not on the manager's engine and names no registry: "
                    "load it on every node that may run the session, or push it to a registry "
                    "the nodes reach (pin it by digest)"]
        return []


# --------------------------------------------------------------------------- helpers

_PARTIAL = ("incomplete log stream",)
_CHECK_OPS = "check ops.swarm (docker_host or context) and that the engine runs"
_ENDED = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})


_STATUS_CODE = re.compile(r"Status: (?P<text>.*), Code: \d+")


def _error_line(stderr: str) -> str:
    """The first line of docker's error, without its "Error response from daemon: " prefix
    (nor the 20.10 client's "Status: ..., Code: 1" wrapping of some errors)."""
    line = first_line(stderr)
    wrapped = _STATUS_CODE.fullmatch(line)
    if wrapped:
        line = wrapped["text"]
    for prefix in ("Error response from daemon: ", "Error: ", "error: "):
        line = line.removeprefix(prefix)
    return line.replace("rpc error: code = ", "")


def _grace(item: Mapping[str, Any]) -> float:
    spec = item.get("Spec") or {}
    container = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}) if isinstance(
        spec, Mapping) else {}
    value = container.get("StopGracePeriod") if isinstance(container, Mapping) else None
    return value / 1e9 if isinstance(value, int) else DEFAULT_GRACE


def _has_registry(image: str) -> bool:
    first, slash, _ = image.partition("/")
    return bool(slash) and first != "localhost" and ("." in first or ":" in first)


def _by_time(streams: Sequence[Iterator[tuple[int, str]]]) -> list[str]:
    """Lines of several streams in time order (``service logs`` prints the tasks' lines in
    the order they reach the manager, not in the order they were written)."""
    counter = itertools.count()
    keyed = [(key, next(counter), line) for stream in streams for key, line in stream]
    keyed.sort()
    return [line for _, _, line in keyed]


class _private_files:  # used like a function
    """Two private temporary files under the state folder (output can hold secrets)."""

    def __enter__(self) -> tuple[Path, Path]:
        folder = logstore.private_dir(logstore.state_dir() / "tmp")
        self._tmp = tempfile.TemporaryDirectory(dir=folder)
        root = Path(self._tmp.name)
        return root / "out", root / "err"

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def _newest(files: Sequence[Path], budget: int) -> list[tuple[int, int, str]]:
    """The newest records (by time) of ``files`` within ``budget`` bytes, oldest first:
    bounded memory whatever the size of the output."""
    heap: list[tuple[int, int, str]] = []
    size = 0
    counter = itertools.count()
    for path in files:
        try:
            handle = open(path, errors="replace")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with handle:
            for key, line in timestamped(raw.rstrip("\n") for raw in handle):
                heapq.heappush(heap, (key, next(counter), line))
                size += len(line) + 1
                while size > budget and heap:
                    size -= len(heapq.heappop(heap)[2]) + 1
    heap.sort()
    return heap


def _merged_files(out_path: Path, err_path: Path) -> Iterator[str]:
    for _, _, line in _newest([out_path, err_path], 2 * logstore.max_bytes()):
        yield line


class _Waiter:
    """``docker wait`` of containers on the engine kstlib talks to, started before they are
    stopped: their exit codes, even when the agent deletes them a moment after."""

    def __init__(self, runner: Runner, ids: Sequence[str]):
        self.ids = list(ids)
        self.argv = runner.argv("wait", *ids) if ids else None
        self.process: subprocess.Popen[bytes] | None = None
        self._codes: dict[str, int] | None = None

    def __enter__(self) -> _Waiter:
        if self.argv is not None:
            try:
                self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL,
                                                stdin=subprocess.DEVNULL)
            except OSError as exc:
                log.warning("docker wait: %s", exc)
        return self

    def codes(self, timeout: float = 5.0) -> dict[str, int]:
        """Container id -> exit code (they ended by now); {} when unknown. docker prints one
        code per container in argument order (an error goes to stderr): a short answer
        cannot be matched, and is not used."""
        if self._codes is None:
            self._codes = {}
            if self.process is not None:
                try:
                    out, _ = self.process.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    out, _ = self.process.communicate()
                found = [int(w) for w in out.split() if w.lstrip(b"-").isdigit()]
                if len(found) == len(self.ids):
                    self._codes = dict(zip(self.ids, found, strict=True))
        return self._codes

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class _Follower:
    """``service logs --follow --timestamps`` into private files for the length of a stop:
    the only way to keep the last lines of tasks that a scale-down deletes."""

    def __init__(self, runner: Runner, sid: str):
        self.runner = runner
        self.sid = sid
        self._files = _private_files()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Follower:
        self.out_path, self.err_path = self._files.__enter__()
        tail = str(max(1000, logstore.max_bytes() // 8))
        argv = self.runner.argv("service", "logs", "--follow", "--raw", "--timestamps",
                                "--tail", tail, self.sid)
        self._out = open(self.out_path, "wb")  # closed in __exit__
        self._err = open(self.err_path, "wb")
        try:
            self.process = subprocess.Popen(argv, stdout=self._out, stderr=self._err,
                                            stdin=subprocess.DEVNULL)
        except OSError as exc:
            log.warning("following the logs of %s: %s", self.sid, exc)
        return self

    def _size(self) -> int:
        try:
            return os.path.getsize(self.out_path) + os.path.getsize(self.err_path)
        except OSError:
            return 0

    def wait_first_output(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._size() == 0 and time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return
            time.sleep(0.02)

    def drain(self, quiet: float = 0.3, longest: float = 3.0) -> None:
        """Let the last lines arrive (until nothing came for ``quiet`` seconds), then stop."""
        deadline = time.monotonic() + longest
        size, since = self._size(), time.monotonic()
        while time.monotonic() < deadline and self.process is not None:
            time.sleep(0.05)
            now_size = self._size()
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        self._stop()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def lines(self) -> list[str]:
        return [line for _, _, line in _newest([self.out_path, self.err_path],
                                               2 * logstore.max_bytes())]

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self._out.close()
        self._err.close()
        self._files.__exit__(*exc)
