"""Container backend: a session is a Podman or Docker container named after it.

Every call goes through :class:`~kstlib_tasks.runner.Runner` (sh, argv only). The two runtimes
are driven with the same verbs (``run``, ``inspect``, ``ps``, ``logs``, ``stop``, ``kill``, ``rm``,
``attach``); where they differ is in the JSON they print, so all of that lives in the pure
``parse_*`` functions below, which decide by the *shape* of the data (array or one object per
line, ``Names`` list or string, ``Labels`` mapping or ``k=v,k=v`` text, ``State`` string or
object, Unix or Go timestamps), never by a version number.

Exactness matters more than it seems: runtimes resolve a reference as full id, then name, then
*id prefix*, so ``stop cafe`` could reach a container whose id starts with ``cafe``. Every verb
that acts on an existing container therefore first inspects it (``--type container``, so an image
called like the session is not a session), checks the exact name, and then works on its id.

Call counts (each ~6 ms through sh): start 2 (``run`` + ``inspect``; replacing a leftover adds
``inspect`` + ``rm`` + a second ``run``), stop 5 for a running container (``inspect``, ``stop``,
``inspect`` for the exit code, ``logs`` to keep the output, ``rm``; a ``kill`` that the
runtime reports late adds a ``wait``, a paused one an ``unpause``), 3 for an exited one,
status 1, list 1, logs 2 (1 for ``--lines`` on podman: read from its log file), attach 1
before the exec.

Docker's ``ps`` has no pid (neither its JSON nor its template fields, nor the engine's
``/containers/json``): ``list`` on docker shows pid None, ``status`` (``inspect``) has it.
Getting it for every container would take a second call (``inspect`` of all ids), so ``list``
stays one call.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn

from .. import logstore
from ..errors import (
    BackendError,
    ContainerRuntimeNotFoundError,
    ImageNotFoundError,
    SessionAlreadyRunningError,
    SessionNotRunningError,
    ValidationError,
)
from ..models import BackendName, SessionSpec, SessionStatus, State
from ..runner import INSTALL_HINTS, Result, Runner, first_line

log = logging.getLogger(__name__)

LABEL_SESSION = "io.kstlib.session"
LABEL_SPEC = "io.kstlib.spec"

DETECT_ORDER = ("podman", "docker")
_NO_RUNTIME_HINT = "install one with: apt-get install podman runc (or: apt-get install docker.io)"

# Runtime states -> our vocabulary. "stopped" is podman's word for a container stopped by
# `podman stop` before it is reported as exited: both have an exit code, both are "exited" here.
_STATES: Mapping[str, State] = {
    "running": State.RUNNING,
    "restarting": State.RUNNING,
    "exited": State.EXITED,
    "stopped": State.EXITED,
    "dead": State.EXITED,
    "removing": State.EXITED,  # the process is gone; --rm containers pass through this
    "created": State.STOPPED,
    "configured": State.STOPPED,
    "initialized": State.STOPPED,
    "paused": State.STOPPED,
}
# Raw states in which the process still exists: start must not replace them, stop must stop them.
_ALIVE = frozenset({"running", "restarting", "paused"})

_IMAGE_MISSING = (
    "no such image",
    "image not known",
    "unable to find image",
    "manifest unknown",
    "pull access denied",
)
_NAME_IN_USE = "is already in use"
_NO_SUCH = ("no such container", "no such object")


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
                hint=INSTALL_HINTS.get(base, _NO_RUNTIME_HINT),
            )
        return preferred
    for candidate in DETECT_ORDER:
        if shutil.which(candidate) is not None:
            return candidate
    raise ContainerRuntimeNotFoundError(
        "no container runtime found: neither podman nor docker is in PATH", hint=_NO_RUNTIME_HINT
    )


def runtime_kind(runtime: str) -> str:
    """``podman`` or ``docker`` for a runtime name or path (decides the ``ps`` format only)."""
    return "podman" if os.path.basename(runtime).startswith("podman") else "docker"


# --------------------------------------------------------------------------------------------
# Parsing (pure functions: unit-tested on captured output of both runtimes)
# --------------------------------------------------------------------------------------------


def load_json_objects(text: str) -> list[dict[str, Any]]:
    """Objects from a JSON array (podman, ``inspect``) or one object per line (docker ``ps``)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        return [item for item in data if isinstance(item, dict)]
    objects: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        item = json.loads(line)
        if isinstance(item, list):
            objects.extend(i for i in item if isinstance(i, dict))
        elif isinstance(item, dict):
            objects.append(item)
    return objects


_GO_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)


def _parse_time(value: str) -> tuple[datetime, int] | None:
    """A Go-printed time (RFC 3339 with nanoseconds, or docker's ``2006-01-02 15:04:05 -0700
    MST``) as an aware datetime (seconds) plus nanoseconds; None when not a timestamp."""
    match = _GO_TIME.match(value.strip())
    if not match:
        return None
    tz = match["tz"] or "Z"
    if tz == "Z":
        tzinfo = UTC
    else:
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        tzinfo = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime.fromisoformat(f"{match['date']}T{match['time']}").replace(tzinfo=tzinfo)
    except ValueError:
        return None
    nanos = int((match["frac"] or ".0")[1:10].ljust(9, "0"))
    return dt, nanos


def parse_timestamp(value: Any) -> str | None:
    """ISO 8601 UTC (``2026-11-25T14:06:11Z``) from a Unix time or a Go time string.

    Second precision on purpose: ``ps`` only gives seconds, and ``list`` and ``status`` must
    agree. Go's zero time (``0001-01-01``), non-positive Unix times and podman's humanized
    ``CreatedAt`` ("2 seconds ago") give None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if value <= 0:
            return None
        dt = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        parsed = _parse_time(value)
        if parsed is None:
            return None
        dt = parsed[0]
        if dt.year <= 1:
            return None
    else:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_labels(value: Any) -> dict[str, str]:
    """Labels from a mapping (podman, inspect) or docker ``ps``'s ``k=v,k2=v2`` text.

    In the text form a comma inside a value is ambiguous; a piece without ``=`` is glued back
    to the previous value, which is right for our own labels (no commas) and usually for others.
    """
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    labels: dict[str, str] = {}
    if not isinstance(value, str) or not value:
        return labels
    last: str | None = None
    for piece in value.split(","):
        key, sep, val = piece.partition("=")
        if sep:
            labels[key] = val
            last = key
        elif last is not None:
            labels[last] += "," + piece
    return labels


def map_state(raw: str | None) -> State:
    return _STATES.get((raw or "").lower(), State.UNKNOWN)


_EXITED_STATUS = re.compile(r"Exited \((-?\d+)\)")


def _command_text(value: Any) -> str | None:
    if isinstance(value, list):
        return shlex.join(str(v) for v in value) if value else None
    if isinstance(value, str) and value:
        # docker ps quotes the whole command: "\"sh -c 'echo hi'\""
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value or None
    return None


def _first_name(value: Any) -> str:
    if isinstance(value, list):
        names = [str(v).lstrip("/") for v in value]
    else:
        names = [n.lstrip("/") for n in str(value or "").split(",")]
    # docker lists links as "other/alias": the container's own name has no slash.
    plain = [n for n in names if n and "/" not in n]
    return (plain or names or [""])[0]


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def status_from_ps(item: Mapping[str, Any], runtime: str) -> SessionStatus:
    """One entry of ``ps`` (podman ``--format json`` or docker ``{{json .}}``) as a status.

    Docker's ``ps`` has no pid and no exit code field: the exit code is read from ``Status``
    ("Exited (3) 2 seconds ago") and the pid stays None (``status`` has it, from ``inspect``).
    """
    raw_state = item.get("State")
    state = map_state(raw_state if isinstance(raw_state, str) else None)
    labels = parse_labels(item.get("Labels"))
    exit_code: int | None = None
    if state is State.EXITED:
        if "ExitCode" in item:
            exit_code = _int_or_none(item.get("ExitCode"))
        else:
            match = _EXITED_STATUS.search(str(item.get("Status") or ""))
            exit_code = int(match.group(1)) if match else None
    pid = _int_or_none(item.get("Pid"))
    created = item.get("Created")
    created_at = parse_timestamp(created) if created is not None else None
    if created_at is None:
        created_at = parse_timestamp(item.get("CreatedAt"))
    return SessionStatus(
        name=_first_name(item.get("Names")),
        backend=_BACKEND,
        state=state,
        pid=pid if state is State.RUNNING and pid else None,
        image=item.get("Image") or None,
        exit_code=exit_code,
        created_at=created_at,
        managed=LABEL_SESSION in labels,
        command=_command_text(item.get("Command")),
        runtime=runtime_kind(runtime),
    )


def parse_ps(text: str, runtime: str) -> list[SessionStatus]:
    """Every container of a ``ps -a`` listing, in the runtime's order."""
    return [status_from_ps(item, runtime) for item in load_json_objects(text)]


def container_id(item: Mapping[str, Any]) -> str:
    return str(item.get("Id") or item.get("ID") or "")


def container_name(item: Mapping[str, Any]) -> str:
    """The name in an ``inspect`` object (docker prefixes it with ``/``)."""
    return str(item.get("Name") or "").lstrip("/")


def raw_state(item: Mapping[str, Any]) -> str:
    state = item.get("State")
    if isinstance(state, Mapping):
        return str(state.get("Status") or "").lower()
    return str(state or "").lower()


def status_from_inspect(item: Mapping[str, Any], runtime: str) -> SessionStatus:
    """One ``inspect --type container`` object (same shape on podman 4 and docker 20.10+)."""
    state_obj = item.get("State")
    state_obj = state_obj if isinstance(state_obj, Mapping) else {}
    state = map_state(raw_state(item))
    config = item.get("Config")
    config = config if isinstance(config, Mapping) else {}
    labels = parse_labels(config.get("Labels"))
    entrypoint = config.get("Entrypoint")
    argv: list[str] = []
    if isinstance(entrypoint, list):
        argv.extend(str(a) for a in entrypoint)
    elif isinstance(entrypoint, str) and entrypoint:
        argv.append(entrypoint)
    cmd = config.get("Cmd")
    if isinstance(cmd, list):
        argv.extend(str(a) for a in cmd)
    pid = _int_or_none(state_obj.get("Pid"))
    return SessionStatus(
        name=container_name(item),
        backend=_BACKEND,
        state=state,
        pid=pid if state is State.RUNNING and pid else None,
        # podman keeps the name it resolved in ImageName; docker only in Config.Image
        image=item.get("ImageName") or config.get("Image") or None,
        exit_code=_int_or_none(state_obj.get("ExitCode")) if state is State.EXITED else None,
        created_at=parse_timestamp(item.get("Created")),
        managed=LABEL_SESSION in labels,
        command=shlex.join(argv) if argv else None,
        runtime=runtime_kind(runtime),
    )


# A record stamp inside a line: ``logs --timestamps`` prints a partial record (a line written in
# several pieces, e.g. Python's unbuffered print writes the text, then the newline) as
# ``STAMP piece`` with no newline, so the next piece arrives as ``...pieceSTAMP rest``.
# (A program printing such a nanosecond stamp itself, followed by a space, loses it in `logs`.)
_RECORD_STAMP = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(?:Z|[+-]\d\d:\d\d) "
)


def _timestamped(text: str) -> Iterator[tuple[int, str]]:
    """(sort key in ns, line) for each line of ``logs --timestamps`` output.

    A line without a timestamp keeps the key of the line before it, so it stays in place. The
    stamps of the later pieces of a partial record are removed, so the line reads as printed.
    """
    key = 0
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        parsed = _parse_time(stamp)
        if parsed is not None:
            dt, nanos = parsed
            key = int(dt.timestamp()) * 1_000_000_000 + nanos
            line = _RECORD_STAMP.sub("", rest)
        yield key, line.replace("\r", "")


def merge_logs(stdout: str, stderr: str) -> list[str]:
    """stdout and stderr of ``logs --timestamps`` merged back into one stream, in time order.

    The runtime prints the two streams to two pipes, whose relative order is lost; the
    per-line timestamps restore it (ties keep stdout first: the merge is stable).
    """
    merged = heapq.merge(_timestamped(stdout), _timestamped(stderr), key=lambda item: item[0])
    return [line for _, line in merged]


def k8s_file_lines(text: str, *, from_start: bool = True) -> list[str]:
    """The lines of podman's ``k8s-file`` log text, stdout and stderr in the order written.

    Each record is ``STAMP STREAM P|F CONTENT``: ``P`` is a piece of a line written in several
    writes (Python's unbuffered ``print`` writes the text, then the newline), ``F`` ends the
    line. A line is placed where its first piece was written. Text read from the middle of the
    file (``from_start=False``) may begin with the last pieces of a line whose start is not in
    it: each stream's records up to its first ``F`` are dropped, so every line returned is whole.
    A line still being written (no ``F`` yet) is returned as it stands, as ``podman logs`` does.
    """
    lines: list[str] = []
    open_line: dict[str, int] = {}  # stream -> index of its unfinished line
    synced: set[str] = set()  # streams past their first F (all of them when from_start)
    for record in text.split("\n"):
        parts = record.split(" ", 3)
        if len(parts) < 3 or parts[2] not in ("P", "F"):
            continue
        stream, flag = parts[1], parts[2]
        content = parts[3] if len(parts) > 3 else ""
        if not from_start and stream not in synced:
            if flag == "F":
                synced.add(stream)
            continue
        if stream in open_line:
            lines[open_line[stream]] += content
        else:
            open_line[stream] = len(lines)
            lines.append(content)
        if flag == "F":
            del open_line[stream]
    return [line.replace("\r", "") for line in lines]


def tail_k8s_file(path: str, lines: int, block: int = 64 * 1024) -> list[str] | None:
    """The last ``lines`` whole lines of a podman ``k8s-file`` log; None when it is unreadable.

    Reads backwards from the end, four times more each round, until enough whole lines are
    in hand or the start of the file is reached: ``logs --lines 20`` of a bot with hundreds of
    megabytes of output reads a few kilobytes.
    """
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            want = block
            while True:
                start = max(0, size - want)
                fh.seek(start)
                data = fh.read(size - start).decode("utf-8", errors="replace")
                data = data[: data.rfind("\n") + 1]  # a record being written is not whole yet
                if start > 0:
                    data = data.partition("\n")[2]  # the first record may be cut
                found = k8s_file_lines(data, from_start=start == 0)
                if start == 0 or len(found) >= lines:
                    return found[-lines:] if lines > 0 else []
                want *= 4
    except OSError:
        return None


_BACKEND: BackendName = "container"


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


class ContainerBackend:
    """Sessions as containers of one runtime (podman or docker, or a path to either)."""

    name: BackendName = "container"

    def __init__(self, runtime: str, *, timeout: float = 60.0):
        # Cheap on purpose: built for every config/CLI call, it must not run anything.
        self.runtime = runtime
        self.kind = runtime_kind(runtime)
        self.runner = Runner(runtime, timeout=timeout)

    # -- helpers -------------------------------------------------------------------------------

    def _log_path(self, name: str) -> Path:
        return logstore.log_path("container", self.kind, name)

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
        result = self.runner.run(*args, check=False)
        if result.ok:
            return result
        if _mentions(result.stderr, _NO_SUCH):
            return None
        raise BackendError(
            f"{self.kind} {what} failed: {first_line(result.stderr) or result.exit_code}"
        )

    def _status(self, item: Mapping[str, Any]) -> SessionStatus:
        return status_from_inspect(item, self.runtime)

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

    def run_argv(self, spec: SessionSpec, cidfile: str | None = None) -> list[str]:
        """The ``run`` arguments for ``spec`` (after the runtime binary); public for tests/dry."""
        if not spec.image:
            raise ValidationError(
                "image", "a container session needs an image", session=spec.name
            )
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
            f"{LABEL_SPEC}={spec.fingerprint()}",
        ]
        if cidfile:
            args += ["--cidfile", cidfile]
        if spec.init:
            args.append("--init")
        for key, value in spec.env.items():
            args += ["--env", f"{key}={value}"]
        for volume in spec.volumes:
            args += ["--volume", volume]
        for port in spec.ports:
            args += ["--publish", port]
        if spec.working_dir:
            args += ["--workdir", spec.working_dir]
        args.append(spec.image)
        args.extend(spec.command)
        return args

    def _run(self, spec: SessionSpec) -> tuple[str | None, str]:
        """One ``run``: (container id, stderr); id None when it failed.

        The id comes from ``--cidfile``, written as soon as the container is created, so a run
        that created a container and then failed to start it (unknown command, busy port) can
        remove exactly that container and nothing else of the same name.
        """
        with tempfile.TemporaryDirectory(prefix="kstlib-") as tmp:
            cidfile = os.path.join(tmp, "cid")
            result = self.runner.run(*self.run_argv(spec, cidfile), check=False)
            try:
                created = Path(cidfile).read_text().strip()
            except FileNotFoundError:
                created = ""
        if result.ok:
            lines = result.stdout.split()
            return created or (lines[-1] if lines else spec.name), result.stderr
        if created:
            self.runner.run("rm", "--force", created, check=False)
        return None, _without_warnings(result.stderr)

    def _already_running(self, name: str) -> SessionAlreadyRunningError:
        return SessionAlreadyRunningError(
            f"session '{name}' is already running ({self.kind})",
            session=name,
            hint=f"stop it first: kstlib ops stop {name}",
        )

    # -- Backend protocol ----------------------------------------------------------------------

    def start(self, spec: SessionSpec) -> SessionStatus:
        """Run ``spec`` detached; replace an exited/stopped leftover of that name.

        Optimistic: ``run`` first (2 calls in the common case). Only a name conflict costs an
        ``inspect`` to tell a running container (error) from a leftover (removed, then run
        again from the *current* spec, never restarted with its old image or command).
        """
        cid, stderr = self._run(spec)
        if cid is None and _mentions(stderr, (_NAME_IN_USE,)):
            existing = self._inspect(spec.name)
            if existing is not None and raw_state(existing) in _ALIVE:
                raise self._already_running(spec.name)
            if existing is not None:
                self.runner.run("rm", "--force", container_id(existing) or spec.name)
            cid, stderr = self._run(spec)
            if cid is None and _mentions(stderr, (_NAME_IN_USE,)):
                raise self._already_running(spec.name)  # lost a race with another start
        if cid is None:
            if _mentions(stderr, _IMAGE_MISSING):
                raise ImageNotFoundError(
                    f"image '{spec.image}' not found on {self.kind} (kstlib never pulls)",
                    session=spec.name,
                    hint=f"build or load it first, e.g. {self.kind} build -t {spec.image} .",
                )
            raise BackendError(
                f"{self.kind} could not start '{spec.name}': "
                f"{first_line(_strip_hint(stderr)) or 'no output'}",
                session=spec.name,
            )
        # A new run, a new log: the copy kept by an earlier stop is now outdated (kept until
        # here so that a failed start does not lose the last run's output).
        logstore.reset(self._log_path(spec.name))
        item = self._inspect(cid)
        if item is None:  # removed at once (e.g. a --rm in some wrapper): report what we know
            return SessionStatus(
                name=spec.name,
                backend=_BACKEND,
                state=State.UNKNOWN,
                image=spec.image,
                managed=True,
                command=shlex.join(spec.command) or None,
                runtime=self.kind,
            )
        return self._status(item)

    def stop(self, name: str, *, timeout: float = 10.0, force: bool = False) -> SessionStatus:
        """Stop (``stop -t``, or ``kill`` with ``force``), keep the output, remove.

        Works on any container of that exact name, also one not started by kstlib. Returns
        the status just before removal (exited, with its exit code).
        """
        item = self._inspect(name)
        if item is None:
            raise SessionNotRunningError(
                f"session '{name}' is not running (no container of that name on {self.kind})",
                session=name,
            )
        cid = container_id(item) or name
        log_path = self._log_path(name)
        # A container run with --rm (by hand) vanishes as soon as it stops: keep its output now.
        auto_remove = _auto_remove(item)
        if auto_remove:
            self._save_output(cid, log_path)
        final = self._status(item)
        if raw_state(item) in _ALIVE:
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
            if force and after is not None and raw_state(after) in _ALIVE:
                # kill only sends the signal; podman may report the exit a moment later
                self.runner.run("wait", cid, check=False)
                after = self._inspect(cid)
            if after is not None and raw_state(after) in _ALIVE:
                raise BackendError(
                    f"{self.kind} could not stop '{name}': "
                    f"{first_line(result.stderr) or 'still running'}",
                    session=name,
                )
            if after is None:  # auto-removed: exit code unknown
                final = final.with_changes(state=State.EXITED, pid=None, exit_code=None)
                return final
            final = self._status(after)
        if not auto_remove:
            self._save_output(cid, log_path)
        self.runner.run("rm", "--force", cid, check=False)
        return final

    def _save_output(self, cid: str, path: Path) -> None:
        """Keep the container's output for ``logs`` after removal; best effort, because a
        log driver that cannot be read back (journald, none) must not prevent the stop."""
        try:
            output = self._read_logs(cid)
        except BackendError as exc:
            log.warning("not keeping the output of %s: %s", cid[:12], exc)
            return
        if output is not None:
            logstore.save(path, "".join(line + "\n" for line in output))

    def status(self, name: str) -> SessionStatus | None:
        """Live status from one ``inspect --type container`` (pid and exit code included)."""
        item = self._inspect(name)
        return self._status(item) if item is not None else None

    def list(self) -> list[SessionStatus]:
        """Every container on the host (``ps -a``), kstlib's or not, in one call.

        Docker's ``ps`` has no pid: listed docker containers carry pid None.
        """
        if self.kind == "podman":
            args = ["ps", "--all", "--format", "json"]
        else:
            # {{json .}}: docker clients before 23 do not know `--format json`
            args = ["ps", "--all", "--no-trunc", "--format", "{{json .}}"]
        result = self.runner.run(*args)
        try:
            return parse_ps(result.stdout, self.runtime)
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"{self.kind} ps printed something that is not JSON: {exc}"
            ) from None

    def logs(self, name: str, lines: int | None = None) -> list[str]:
        """Last ``lines`` lines: from the runtime while the container exists (running or
        exited), else from the copy saved by ``stop``."""
        item = self._inspect(name)
        output = None
        if item is not None:
            if lines and self.kind == "podman":
                output = self._tail_log_file(item, lines)
            if output is None:
                output = self._read_logs(container_id(item) or name, lines)
        if output is None:
            path = self._log_path(name)
            if not logstore.exists(path):
                raise SessionNotRunningError(
                    f"session '{name}' has no container on {self.kind} and no saved logs",
                    session=name,
                )
            output = logstore.tail(path, lines)
        if lines == 0:
            return []
        return output

    def _tail_log_file(self, item: Mapping[str, Any], lines: int) -> list[str] | None:
        """``--lines N`` of a podman container from its ``k8s-file`` log itself; None when the
        container logs elsewhere (journald) or the file cannot be read (a remote podman).

        Why not ``podman logs --tail N``: podman 4.3 prints every piece of a line written in
        several writes as a line of its own there (and shifts their timestamps), so the last N
        lines of a Python bot came out as N/2 lines plus empty ones. The file is read directly,
        at no extra runtime call (the path is in the ``inspect`` already made).
        """
        host = item.get("HostConfig")
        config = host.get("LogConfig") if isinstance(host, Mapping) else None
        if not isinstance(config, Mapping) or config.get("Type") != "k8s-file":
            return None
        path = config.get("Path")
        if not isinstance(path, str) or not path:
            return None
        return tail_k8s_file(path, lines)

    def attach(self, name: str) -> NoReturn:
        """Replace this process with ``RUNTIME attach``: Ctrl+P Ctrl+Q detaches.

        Sessions run with ``--interactive --tty``, so the terminal is the session's own, as in
        tmux: keys reach the process (Ctrl+C interrupts it) and the runtime's detach keys leave
        it running. A container started elsewhere without a tty cannot read keys at all: there
        Ctrl+C ends the attach (no signal proxying) on podman.
        """
        item = self._inspect(name)
        if item is None or raw_state(item) not in _ALIVE:
            state = map_state(raw_state(item)).value if item is not None else "no container"
            raise SessionNotRunningError(
                f"session '{name}' is not running ({state} on {self.kind}); cannot attach",
                session=name,
            )
        self.runner.exec("attach", "--sig-proxy=false", container_id(item) or name)


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
