"""Container backend: a session is a Podman or Docker container named after it.

Every call goes through :class:`~kstlib_tasks.runner.Runner` (sh, argv only); what the runtimes
print is read by :mod:`.parsing`. Exactness matters more than it seems: runtimes resolve a
reference as full id, then name, then *id prefix*, so ``stop cafe`` could reach a container whose
id starts with ``cafe``. Every verb that acts on an existing container therefore first inspects
it (``--type container``, so an image called like the session is not a session), checks the
exact name, and then works on its id.

Nothing is lost under load: the runtime's own log of a session is bounded at start
(``--log-opt max-size``, as docker's ``json-file``/``local`` and podman's ``k8s-file`` drivers
allow); ``stop`` streams the last output to the state folder in bounded memory (from the
runtime's log file when it can read it, else from ``logs``), and a container whose output could
not be read is left in place for a second ``stop`` rather than removed with it. A full or
read-only disk only costs the copy (a note says so), never the stop.

Call counts (each ~6 ms through sh, podman's own start-up more): start 2 (``run`` + ``inspect``;
replacing an exited leftover adds ``inspect`` + ``rm`` + a second ``run``), stop 4 for a running
container (``inspect``, ``stop``, ``inspect`` for the exit code, ``rm``; the output is read from
the runtime's log file, else one more ``logs``), status 1, list 1 (plus one ``inspect`` of the
containers that have a restart policy, for their restart counts), logs 2 (1 for ``--lines`` on
podman: read from its log file), attach 1 before the exec.

Docker's ``ps`` has no pid: ``list`` on docker shows pid None, ``status`` (``inspect``) has it.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ... import logstore
from ...errors import (
    BackendError,
    ImageNotFoundError,
    KstlibError,
    SessionAlreadyRunningError,
    ValidationError,
)
from ...models import SessionStatus, State
from ...runner import Result, Runner, first_line
from ..base import Backend, Launch, Lines, env_arguments, follow_process
from .parsing import (
    ALIVE,
    IMAGE_MISSING,
    LABEL_FINGERPRINT,
    LABEL_OVERRIDES,
    LABEL_RESTART,
    LABEL_SESSION,
    NAME_IN_USE,
    NO_SUCH,
    assemble,
    container_id,
    container_name,
    json_file_records,
    k8s_file_lines,
    k8s_file_records,
    label_value,
    load_json_objects,
    map_state,
    merge_logs,
    parse_labels,
    parse_ps,
    raw_state,
    runtime_kind,
    status_from_inspect,
    tail_k8s_file,
    timestamped,
)

log = logging.getLogger(__name__)

# States of a container another start is bringing up: never removed as a "leftover".
_STARTING = frozenset({"created", "configured", "initialized"})
_LOG_OPT_REFUSED = ("log opt", "log-opt", "unknown log", "logging driver")
_REMOVAL_RACE = ("removal of container", "already in progress", "no such container")


class OutputNotRead(BackendError):
    """The runtime would not give the container's output: the container is kept."""


class ContainerBackend(Backend):
    """Sessions as containers of one runtime (podman or docker, or a path to either)."""

    kind = "container"

    def __init__(self, runtime: str, *, timeout: float = 60.0):
        # Cheap on purpose: built for every config/CLI call, it must not run anything.
        super().__init__(runtime_kind(runtime))
        self.runtime = runtime
        self.runner = Runner(runtime, timeout=timeout)

    def where(self) -> str:
        return str(self.scope)

    # -- helpers -------------------------------------------------------------------------------

    def _inspect(self, ref: str) -> dict[str, Any] | None:
        """The inspect object of the container named (or with the full id) ``ref``, or None.

        A container reached only through an id prefix is not ``ref``: None.
        """
        result = self._run_unless_gone(f"inspect of '{ref}'", "inspect", "--type", "container", ref)
        if result is None:
            return None
        for item in load_json_objects(result.stdout):
            if container_name(item) == ref or container_id(item) == ref:
                return item
        return None

    def _run_unless_gone(self, what: str, *args: str) -> Result | None:
        """Run; None when the runtime says there is no such container, BackendError for any
        other failure (the container may vanish between two calls: that is not an error)."""
        return self.unless_gone(
            self.runner.run(*args, check=False), lambda stderr: _mentions(stderr, NO_SUCH),
            lambda result: BackendError(
                f"{self.scope} {what} failed: {first_line(result.stderr) or result.exit_code}"))

    def _status(self, item: Mapping[str, Any]) -> SessionStatus:
        return _command_pid(status_from_inspect(item, self.runtime))

    def _read_logs(self, ref: str, lines: int | None = None) -> list[str] | None:
        """Live output of a container, stdout and stderr merged; None when it is gone."""
        args = ["logs", "--timestamps"]
        if lines is not None:
            args += ["--tail", str(lines)]
        result = self._run_unless_gone(f"logs of '{ref}'", *args, ref)
        if result is None:
            return None
        merged = merge_logs(result.stdout, result.stderr)
        return merged[-lines:] if lines else merged

    def run_argv(self, launch: Launch, cidfile: str | None = None, *,
                 log_limit: bool = True, folder: str | None = None) -> list[str]:
        """The ``run`` arguments (after the runtime binary); public for tests and dry runs.

        With ``folder`` (private, temporary) the environment goes through an env file there
        (:func:`~kstlib_tasks.backends.base.env_arguments`); without, as ``--env`` words."""
        from . import ContainerOptions

        spec = launch.spec
        options = spec.options
        if not isinstance(options, ContainerOptions) or not options.image:
            raise ValidationError("image", "a container session needs an image",
                                  session=spec.name)
        args = [
            "run",
            "--detach",
            # A terminal and an open stdin, as in a tmux pane: `attach` can then type into the
            # session and detach with Ctrl+P Ctrl+Q (neither runtime reads keys otherwise).
            "--interactive",
            "--tty",
            "--name",
            spec.name,
            "--pull=never",  # no registry may be reachable: never let a run hang on a pull
            "--label",
            f"{LABEL_SESSION}={spec.name}",
            "--label",
            f"{LABEL_FINGERPRINT}={label_value(launch.fingerprint)}",
            "--label",
            f"{LABEL_RESTART}={spec.restart}",
        ]
        if launch.overrides:
            args += ["--label", f"{LABEL_OVERRIDES}={label_value(launch.overrides)}"]
        if spec.restart == "on-failure":
            args += ["--restart", f"on-failure:{spec.max_restarts}"]
        elif spec.restart == "always":
            args += ["--restart", "always"]
        if log_limit:
            # Bound the runtime's own log: a chatty program filled 1 GB in 30 s without it.
            limit = logstore.max_bytes()
            if self.scope == "podman":
                args += ["--log-opt", f"max-size={limit}b"]
            else:
                args += ["--log-opt", f"max-size={limit}", "--log-opt", "max-file=2"]
        if cidfile:
            args += ["--cidfile", cidfile]
        if options.init:
            args.append("--init")
        if folder is not None:
            args += env_arguments(launch.env, folder)
        else:
            for key, value in launch.env.items():
                args += ["--env", f"{key}={value}"]
        for volume in options.volumes:
            args += ["--volume", volume]
        for port in options.ports:
            args += ["--publish", port]
        if spec.working_dir:
            args += ["--workdir", spec.working_dir]
        args.append(options.image)
        args.extend(launch.argv)
        return args

    def _run(self, launch: Launch) -> tuple[str | None, str]:
        """One ``run``: (container id, stderr); id None when it failed.

        The id comes from ``--cidfile``, written as soon as the container is created, so a run
        that created a container and then failed to start it (unknown command, busy port) can
        remove exactly that container and nothing else of the same name. A log driver that
        takes no size option (journald) is run again without it.
        """
        log_limit = True
        while True:
            with tempfile.TemporaryDirectory(prefix="kstlib-") as tmp:
                cidfile = os.path.join(tmp, "cid")
                argv = self.run_argv(launch, cidfile, log_limit=log_limit, folder=tmp)
                result = self.runner.run(*argv, check=False)
                try:
                    created = Path(cidfile).read_text().strip()
                except FileNotFoundError:
                    created = ""
            if result.ok:
                lines = result.stdout.split()
                return created or (lines[-1] if lines else launch.name), result.stderr
            if created:
                self.runner.run("rm", "--force", created, check=False)
            stderr = _without_warnings(result.stderr)
            if log_limit and _mentions(stderr, _LOG_OPT_REFUSED):
                log_limit = False
                continue
            return None, stderr

    # -- the contract --------------------------------------------------------------------------

    def start(self, launch: Launch) -> SessionStatus:
        """Run detached; replace an exited leftover of ours of that name.

        Optimistic: ``run`` first (2 calls in the common case). Only a name conflict costs an
        ``inspect`` to tell a running container (error) from a leftover (removed, then run
        again from the *current* spec, never restarted with its old image or command). A
        leftover not started by this tool is somebody else's: refused, never removed.
        """
        spec = launch.spec
        name = spec.name
        # checked again now: a symlink may point elsewhere than when the config was read
        for index, problem in spec.options.mount_problems():
            raise ValidationError(f"volumes[{index}]", problem, session=name)
        cid, stderr = self._run(launch)
        if cid is None and _mentions(stderr, (NAME_IN_USE,)):
            self._remove_leftover(name)
            cid, stderr = self._run(launch)
            if cid is None and _mentions(stderr, (NAME_IN_USE,)):
                raise self.already_running(name)  # lost a race with another start
        if cid is None:
            if _mentions(stderr, IMAGE_MISSING):
                image = spec.image
                raise ImageNotFoundError(
                    f"image '{image}' not found on {self.scope} (kstlib never pulls)",
                    session=name,
                    hint=f"build or load it first, e.g. {self.scope} build -t {image} .",
                )
            raise BackendError(
                f"{self.scope} could not start '{name}': "
                f"{first_line(_strip_hint(stderr)) or 'no output'}",
                session=name,
            )
        # A new run, a new log: the copy kept by an earlier stop is now outdated (kept until
        # here so that a failed start does not lose the last run's output).
        logstore.reset(self.log_path(name))
        if launch.fresh:
            return SessionStatus(name=name, backend=self.kind, state=State.RUNNING,
                                 scope=self.scope, image=spec.image, managed=True,
                                 command=shlex.join(launch.argv) or None,
                                 details={"runtime": self.scope, "id": cid})
        item = self._inspect(cid)
        if item is None:  # removed at once (e.g. a --rm in some wrapper): report what we know
            return SessionStatus(
                name=name, backend=self.kind, state=State.UNKNOWN, scope=self.scope,
                image=spec.image, managed=True, command=shlex.join(launch.argv) or None,
                details={"runtime": self.scope},
            )
        return self._status(item)

    def _remove_leftover(self, name: str) -> None:
        """Make room for a new run of ``name``: only an exited container of ours goes."""
        existing = self._inspect(name)
        if existing is None:
            return  # removed meanwhile (another start's cleanup): just run again
        state = raw_state(existing)
        if state in ALIVE or state in _STARTING:
            raise self.already_running(name)
        labels = parse_labels((existing.get("Config") or {}).get("Labels"))
        if LABEL_SESSION not in labels:
            raise SessionAlreadyRunningError(
                f"a container named '{name}' exists on {self.scope} and was not started by "
                f"kstlib ({map_state(state).value}); it is left alone",
                session=name,
                hint=f"remove it yourself if it is not needed: {self.scope} rm {name}",
            )
        result = self.runner.run("rm", "--force", container_id(existing) or name, check=False)
        if not result.ok and not _mentions(result.stderr, _REMOVAL_RACE):
            raise BackendError(
                f"{self.scope} could not remove the exited '{name}': "
                f"{first_line(result.stderr) or result.exit_code}", session=name)

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop (``stop -t``, or ``kill`` with ``force``), keep the output, remove.

        Works on any container of that exact name, also one not started by kstlib. Returns
        the status just before removal (exited, with its exit code). When the output cannot be
        read, the container is stopped but kept (OutputNotRead): a second stop tries again.
        """
        item = self._inspect(name)
        if item is None:
            raise self.not_running(name, "(no container of that name)")
        cid = container_id(item) or name
        log_path = self.log_path(name)
        # A container run with --rm (by hand) vanishes as soon as it stops: keep its output now.
        auto_remove = _auto_remove(item)
        note = self._save_output(item, log_path) if auto_remove else None
        final = self._status(item)
        if raw_state(item) in ALIVE:
            after = self._end(item, name, timeout=timeout, force=force)
            if after is None:  # auto-removed: exit code unknown
                return final.with_changes(state=State.EXITED, pid=None, exit_code=None,
                                          note=note)
            item = after
            final = self._status(after)
        if not auto_remove:
            note = self._save_output(item, log_path)
        self.runner.run("rm", "--force", cid, check=False)
        return final.with_changes(note=note)

    def stop_many(self, names: Sequence[str], *, timeout: float = 10.0,
                  force: bool = False) -> dict[str, SessionStatus | KstlibError]:
        """Stop several containers with one call per step instead of one per container:
        ``inspect`` of all, one ``stop`` (or ``kill``) of those alive (the runtime stops them
        in parallel), ``inspect`` of all for the exit codes, their output kept, one ``rm``.

        ``down`` of 10 containers costs 4 runtime calls, where stopping them one by one costs
        40. A container run with ``--rm`` by hand goes through :meth:`stop` (its output must be
        kept before it vanishes).
        """
        results: dict[str, SessionStatus | KstlibError] = {}
        items = self._inspect_many(names)
        batch: dict[str, dict[str, Any]] = {}
        for name in names:
            item = items.get(name)
            if item is None:
                results[name] = self.not_running(name, "(no container of that name)")
            elif _auto_remove(item):
                try:
                    results[name] = self.stop(name, timeout=timeout, force=force)
                except KstlibError as exc:
                    results[name] = exc
            else:
                batch[name] = item
        if not batch:
            return results
        alive = [container_id(i) for i in batch.values() if raw_state(i) in ALIVE]
        if alive:
            paused = [container_id(i) for i in batch.values() if raw_state(i) == "paused"]
            if force:
                self.runner.run("kill", *alive, check=False)
            else:
                if paused:
                    self.runner.run("unpause", *paused, check=False)
                seconds = max(0, math.ceil(timeout))
                self.runner.run("stop", "--time", str(seconds), *alive, check=False,
                                timeout=seconds + self.runner.timeout)
        after = self._inspect_many([container_id(i) for i in batch.values()], by="id")
        removable: list[str] = []
        for name, item in batch.items():
            cid = container_id(item)
            now = after.get(cid)
            if now is not None and raw_state(now) in ALIVE and force:
                self.runner.run("wait", cid, check=False)
                now = self._inspect(cid)
            if now is None:
                results[name] = self._status(item).with_changes(state=State.EXITED, pid=None)
                continue
            if raw_state(now) in ALIVE:
                results[name] = BackendError(f"{self.scope} could not stop '{name}': still "
                                             "running", session=name)
                continue
            try:
                note = self._save_output(now, self.log_path(name))
            except OutputNotRead as exc:
                results[name] = exc
                continue
            results[name] = self._status(now).with_changes(note=note)
            removable.append(cid)
        if removable:
            self.runner.run("rm", "--force", *removable, check=False)
        return results

    def _inspect_many(self, refs: Sequence[str], by: str = "name") -> dict[str, dict[str, Any]]:
        """``inspect`` of several containers in one call: ref -> object (exact matches only;
        missing ones are simply absent)."""
        if not refs:
            return {}
        result = self.runner.run("inspect", "--type", "container", *refs, check=False)
        found: dict[str, dict[str, Any]] = {}
        try:
            objects = load_json_objects(result.stdout)
        except ValueError:
            objects = []
        for item in objects:
            key = container_name(item) if by == "name" else container_id(item)
            if key in refs:
                found[key] = item
        if not result.ok and not found and not _mentions(result.stderr, NO_SUCH):
            raise BackendError(f"{self.scope} inspect failed: "
                               f"{first_line(result.stderr) or result.exit_code}")
        return found

    def _end(self, item: Mapping[str, Any], name: str, *, timeout: float,
             force: bool) -> dict[str, Any] | None:
        """Make the container's process end; its inspect object afterwards (None: gone)."""
        cid = container_id(item) or name
        if force:
            result = self.runner.run("kill", cid, check=False)  # also kills a paused one
        else:
            if raw_state(item) == "paused":
                # podman refuses to stop a paused container ("container state improper");
                # docker unpauses it itself. Unpaused, the process gets its SIGTERM.
                self.runner.run("unpause", cid, check=False)
            seconds = max(0, math.ceil(timeout))
            result = self.runner.run(
                "stop", "--time", str(seconds), cid, check=False,
                timeout=seconds + self.runner.timeout,
            )
        after = self._inspect(cid)
        if force and after is not None and raw_state(after) in ALIVE:
            # kill only sends the signal; podman may report the exit a moment later
            self.runner.run("wait", cid, check=False)
            after = self._inspect(cid)
        if after is not None and raw_state(after) in ALIVE:
            raise BackendError(
                f"{self.scope} could not stop '{name}': "
                f"{first_line(result.stderr) or 'still running'}",
                session=name,
            )
        return after

    def _save_output(self, item: Mapping[str, Any], path: Path) -> str | None:
        """Keep the container's output for ``logs`` after removal, in bounded memory.

        Returns a note when the copy could not be written (disk full, read-only): that costs
        the copy, not the stop. Raises OutputNotRead when the runtime would not give the
        output, so that the caller keeps the container (and the output with it).
        """
        try:
            logstore.save_lines(path, self._output(item))
        except OutputNotRead:
            raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            log.warning("not keeping the output of %s: %s", container_name(item), reason)
            return f"output not kept: {reason} ({path.parent})"
        return None

    def _output(self, item: Mapping[str, Any]) -> Iterator[str]:
        """Every line the container printed, from its log file when readable, else ``logs``."""
        lines = _log_file_lines(item, logstore.max_bytes())
        if lines is not None:
            try:
                yield from lines
            except OSError as exc:  # reading, not writing: the output is still in there
                raise OutputNotRead(
                    f"could not read the output of '{container_name(item)}' from "
                    f"{exc.filename or 'its log file'}: {exc.strerror or exc}; the container "
                    "is stopped but kept: run stop again", session=container_name(item)) from None
            return
        yield from self._streamed_logs(container_id(item) or container_name(item),
                                       container_name(item) or None)

    def _streamed_logs(self, ref: str, session: str | None = None) -> Iterator[str]:
        """``logs --timestamps`` written to private temporary files, then merged by time:
        never the whole output in memory."""
        folder = logstore.private_dir(logstore.state_dir() / "tmp")
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out_path, err_path = Path(tmp, "out"), Path(tmp, "err")
            tail = str(max(1000, logstore.max_bytes() // 8))
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                try:
                    done = subprocess.run(
                        self.runner.argv("logs", "--timestamps", "--tail", tail, ref),
                        stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                        timeout=self.runner.timeout, check=False)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise OutputNotRead(
                        f"could not read the output of '{ref}': {exc}; the container is "
                        "stopped but kept: run stop again", session=session) from None
            if done.returncode != 0:
                message = first_line(err_path.read_text(errors="replace"))
                raise OutputNotRead(
                    f"{self.scope} logs of '{ref}' failed: {message or done.returncode}; the "
                    "container is stopped but kept: run stop again", session=session)
            with open(out_path, errors="replace") as out, open(err_path, errors="replace") as err:
                merged = heapq.merge(timestamped(line.rstrip("\n") for line in out),
                                     timestamped(line.rstrip("\n") for line in err),
                                     key=lambda pair: pair[0])
                for _, line in merged:
                    yield line

    def status(self, name: str) -> SessionStatus | None:
        """Live status from one ``inspect --type container`` (pid and exit code included)."""
        item = self._inspect(name)
        return self._status(item) if item is not None else None

    def list(self) -> list[SessionStatus]:
        """Every container on the host (``ps -a``), kstlib's or not, in one call; plus one
        ``inspect`` of those with a restart policy (``ps`` has no restart count).

        Docker's ``ps`` has no pid: listed docker containers carry pid None.
        """
        if self.scope == "podman":
            args = ["ps", "--all", "--format", "json"]
        else:
            # {{json .}}: docker clients before 23 do not know `--format json`
            args = ["ps", "--all", "--no-trunc", "--format", "{{json .}}"]
        result = self.runner.run(*args)
        try:
            statuses = [_command_pid(s) for s in parse_ps(result.stdout, self.runtime)]
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"{self.scope} ps printed something that is not JSON: {exc}"
            ) from None
        restarting = [str(s.details.get("id")) for s in statuses
                      if s.managed and s.details.get("restart") in ("on-failure", "always")]
        counts = self._restart_counts(restarting) if restarting else {}
        return [s.with_changes(restarts=counts.get(str(s.details.get("id")),
                                                   0 if s.details.get("restart") else None))
                if s.managed else s for s in statuses]

    def _restart_counts(self, ids: Sequence[str]) -> dict[str, int]:
        result = self.runner.run("inspect", "--type", "container", *ids, check=False)
        counts = {}
        for item in load_json_objects(result.stdout) if result.stdout.strip() else []:
            count = item.get("RestartCount")
            if isinstance(count, int):
                counts[container_id(item)] = count
        return counts

    def live_logs(self, name: str, lines: int | None) -> Lines | None:
        """From the runtime while the container exists (running or exited); None when not."""
        item = self._inspect(name)
        if item is None:
            return None
        output = None
        if lines and self.scope == "podman":
            output = self._tail_log_file(item, lines)
        if output is None:
            output = self._read_logs(container_id(item) or name, lines)
        return output

    def follow(self, name: str, lines: int | None = None, *,
               stopped: Any = lambda: False) -> Iterator[str]:
        """``RUNTIME logs --follow``: the runtime ends it when the container stops."""
        item = self._inspect(name)
        if item is None:
            yield from self.logs(name, lines)
            return
        if raw_state(item) not in ALIVE:
            yield from self.logs(name, lines)
            return
        path = _k8s_log_path(item)
        if path and os.access(path, os.R_OK):
            # podman 4.3's `logs --follow` splits a line written in pieces into several lines
            # (Python's print writes the text, then the newline): read its log file instead
            yield from self._follow_k8s_file(name, path, lines, stopped)
            return
        argv = self.runner.argv("logs", "--follow", *(["--tail", str(lines)] if lines is not None
                                                     else []), container_id(item) or name)
        yield from follow_process(argv, lambda done: bool(stopped()))

    def _follow_k8s_file(self, name: str, path: str, lines: int | None,
                         stopped: Any) -> Iterator[str]:
        """The last ``lines`` lines of a podman ``k8s-file`` log, then its new records as they
        are written, whole lines only, until the container is no longer running. podman
        empties the file when it reaches its size bound: reading starts over then."""
        import time

        with open(path, "rb") as fh:
            data = fh.read()
        offset = data.rfind(b"\n") + 1
        start = k8s_file_lines(data[:offset].decode("utf-8", errors="replace"))
        yield from (start if lines is None else start[-lines:] if lines > 0 else [])

        def records() -> Iterator[str]:
            nonlocal offset
            next_check = time.monotonic() + 0.5
            while True:
                try:
                    with open(path, "rb") as fh:
                        if os.fstat(fh.fileno()).st_size < offset:
                            offset = 0
                        fh.seek(offset)
                        chunk = fh.read()
                except OSError:
                    return
                end = chunk.rfind(b"\n") + 1
                if end:
                    offset += end
                    yield from chunk[:end].decode("utf-8", errors="replace").splitlines()
                if stopped():
                    return
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.5
                    item = self._inspect(name)
                    if item is None or raw_state(item) not in ALIVE:
                        time.sleep(0.2)  # conmon writes the last records
                        try:
                            with open(path, "rb") as fh:
                                fh.seek(offset)
                                rest = fh.read()
                        except OSError:
                            return
                        yield from rest.decode("utf-8", errors="replace").splitlines()
                        return
                if not end:
                    time.sleep(0.1)

        yield from assemble(k8s_file_records(records()))

    def _tail_log_file(self, item: Mapping[str, Any], lines: int) -> Lines | None:
        """``--lines N`` of a podman container from its ``k8s-file`` log itself; None when the
        container logs elsewhere (journald) or the file cannot be read (a remote podman).

        Why not ``podman logs --tail N``: podman 4.3 prints every piece of a line written in
        several writes as a line of its own there (and shifts their timestamps), so the last N
        lines of a Python bot came out as N/2 lines plus empty ones. The file is read directly,
        at no extra runtime call (the path is in the ``inspect`` already made).
        """
        path = _k8s_log_path(item)
        return tail_k8s_file(path, lines) if path else None

    def run_probe(self, name: str, argv: Sequence[str], *, env: Mapping[str, str],
                  cwd: str | None, timeout: float) -> int:
        """An ``exec`` readiness probe runs inside the container (``RUNTIME exec``)."""
        try:
            result = self.runner.run("exec", name, *argv, check=False, timeout=timeout)
        except BackendError:
            return 124
        return result.exit_code

    def attach(self, name: str) -> NoReturn:
        """Replace this process with ``RUNTIME attach``: Ctrl+P Ctrl+Q detaches.

        Sessions run with ``--interactive --tty``, so the terminal is the session's own, as in
        tmux: keys reach the process (Ctrl+C interrupts it) and the runtime's detach keys leave
        it running. A container started elsewhere without a tty cannot read keys at all: there
        Ctrl+C ends the attach (no signal proxying) on podman.
        """
        item = self._inspect(name)
        if item is None or raw_state(item) not in ALIVE:
            state = map_state(raw_state(item)).value if item is not None else "no container"
            raise self.not_running(name, f"({state}); cannot attach")
        self.runner.exec("attach", "--sig-proxy=false", container_id(item) or name)


# --------------------------------------------------------------------------- helpers


# What `--init` puts as PID 1 (tini as docker-init, catatonit as podman-init).
_INITS = frozenset({"docker-init", "podman-init", "tini", "catatonit"})


def _command_pid(status: SessionStatus) -> SessionStatus:
    """The pid of the command, not of the runtime's init in front of it (``--init``): its
    first child. Read from ``/proc`` (Linux, an engine on this machine); left as it is when it
    cannot be read (a remote engine, another user's process)."""
    pid = status.pid
    if not pid:
        return status
    try:
        with open(f"/proc/{pid}/comm") as fh:
            if fh.read().strip() not in _INITS:
                return status
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = fh.read().split()
    except OSError:
        return status
    if children and children[0].isdigit():
        return status.with_changes(pid=int(children[0]))
    return status


def _k8s_log_path(item: Mapping[str, Any]) -> str | None:
    host = item.get("HostConfig")
    config = host.get("LogConfig") if isinstance(host, Mapping) else None
    if not isinstance(config, Mapping) or config.get("Type") != "k8s-file":
        return None
    path = config.get("Path")
    return path if isinstance(path, str) and path else None


def _log_file_lines(item: Mapping[str, Any], limit: int) -> Iterator[str] | None:
    """The output read from the runtime's own log file (podman ``k8s-file``, docker
    ``json-file``), last part only; None when there is no such file or it cannot be read."""
    k8s = _k8s_log_path(item)
    if k8s:
        files, records = [k8s], k8s_file_records
    else:
        path = item.get("LogPath")
        host = item.get("HostConfig")
        kind = (host.get("LogConfig") or {}).get("Type") if isinstance(host, Mapping) else None
        if not isinstance(path, str) or not path or kind != "json-file":
            return None
        files, records = [f"{path}.1", path], json_file_records
    readable = [f for f in files if os.access(f, os.R_OK)]
    if not readable or not os.access(files[-1], os.R_OK):
        return None
    return _read_records(readable, records, limit)


def _read_records(files: Sequence[str], records: Any, limit: int) -> Iterator[str]:
    """Lines of the last ``8 * limit`` bytes of ``files`` (records carry overhead)."""
    budget = 8 * limit
    sizes = [os.path.getsize(f) for f in files]
    skip = max(0, sum(sizes) - budget)
    synced = skip == 0

    def raw() -> Iterator[str]:
        left = skip
        for name, size in zip(files, sizes, strict=True):
            if left >= size:
                left -= size
                continue
            with open(name, "rb") as fh:
                if left:
                    fh.seek(left)
                    fh.readline()  # the first record may be cut
                    left = 0
                for line in fh:
                    yield line.decode("utf-8", errors="replace")

    yield from assemble(records(raw()), synced=synced)


def _without_warnings(stderr: str) -> str:
    """stderr without the runtimes' warning lines, so an error's first line is the error.

    podman warns "The input device is not a TTY" for every ``run -d -i -t`` started without a
    terminal (as kstlib always does): harmless, but it came first in every failure message.
    """
    return "\n".join(
        line
        for line in stderr.splitlines()
        if "level=warning" not in line and not line.startswith("WARNING:")
    )


def _auto_remove(item: Mapping[str, Any]) -> bool:
    host = item.get("HostConfig")
    return isinstance(host, Mapping) and bool(host.get("AutoRemove"))


def _mentions(text: str, needles: Iterable[str]) -> bool:
    low = text.lower()
    return any(n in low for n in needles)


def _strip_hint(stderr: str) -> str:
    """Docker appends "Run 'docker run --help'..."; drop it and the "docker: " prefix."""
    lines = [
        line.removeprefix("docker: ").removeprefix("Error: ")
        for line in stderr.splitlines()
        if line.strip() and "--help" not in line
    ]
    return "\n".join(lines)
