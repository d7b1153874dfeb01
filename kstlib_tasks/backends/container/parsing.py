"""Pure helpers of the container backend: what podman and docker print, read by its shape.

The two runtimes are driven with the same verbs; where they differ is in the JSON they print,
so all of that lives here, in functions that decide by the *shape* of the data (array or one
object per line, ``Names`` list or string, ``Labels`` mapping or ``k=v,k=v`` text, ``State``
string or object, Unix or Go timestamps), never by a version number. Unit-tested on captured
output of both runtimes.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ...models import SessionStatus, State

LABEL_SESSION = "io.kstlib.session"
LABEL_FINGERPRINT = "io.kstlib.fingerprint"  # what was started (field digests, JSON), for drift
LABEL_OVERRIDES = "io.kstlib.overrides"  # the flags given to start, for drift
LABEL_RESTART = "io.kstlib.restart"  # the restart policy: `list` asks for restart counts only then
BACKEND = "container"


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
ALIVE = frozenset({"running", "restarting", "paused"})

IMAGE_MISSING = (
    "no such image",
    "image not known",
    "unable to find image",
    "manifest unknown",
    "pull access denied",
)
NAME_IN_USE = "is already in use"
NO_SUCH = ("no such container", "no such object")




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
        backend=BACKEND,
        state=state,
        pid=pid if state is State.RUNNING and pid else None,
        image=item.get("Image") or None,
        exit_code=exit_code,
        created_at=created_at,
        managed=LABEL_SESSION in labels,
        command=_command_text(item.get("Command")),
        scope=runtime_kind(runtime),
        recorded=recorded_fingerprint(labels),
        details={"runtime": runtime_kind(runtime), "id": container_id(item),
                 "restart": labels.get(LABEL_RESTART)},
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
        backend=BACKEND,
        state=state,
        pid=pid if state is State.RUNNING and pid else None,
        # podman keeps the name it resolved in ImageName; docker only in Config.Image
        image=item.get("ImageName") or config.get("Image") or None,
        exit_code=_int_or_none(state_obj.get("ExitCode")) if state is State.EXITED else None,
        created_at=parse_timestamp(item.get("Created")),
        managed=LABEL_SESSION in labels,
        command=shlex.join(argv) if argv else None,
        scope=runtime_kind(runtime),
        restarts=_int_or_none(item.get("RestartCount")),
        recorded=recorded_fingerprint(labels),
        details={"runtime": runtime_kind(runtime), "id": container_id(item),
                 "restart": labels.get(LABEL_RESTART)},
    )


def recorded_fingerprint(labels: Mapping[str, str]) -> dict[str, Any] | None:
    """What a kstlib start stored in its labels (``fp`` digests, ``ov`` overrides); None when
    the container was not started by kstlib."""
    fingerprint = _json_object(labels.get(LABEL_FINGERPRINT))
    if fingerprint is None:
        return None
    return {"fp": fingerprint, "ov": _json_object(labels.get(LABEL_OVERRIDES)) or {}}


def label_value(data: Mapping[str, Any]) -> str:
    """JSON as a label value that survives docker ``ps``'s ``k=v,k=v`` text: base64url,
    which has neither ``,`` nor ``=`` (padding dropped)."""
    import base64

    blob = json.dumps(dict(data), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def _json_object(text: str | None) -> dict[str, Any] | None:
    import base64

    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# A record stamp inside a line: ``logs --timestamps`` prints a partial record (a line written in
# several pieces, e.g. Python's unbuffered print writes the text, then the newline) as
# ``STAMP piece`` with no newline, so the next piece arrives as ``...pieceSTAMP rest``.
# (A program printing such a nanosecond stamp itself, followed by a space, loses it in `logs`.)
_RECORD_STAMP = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(?:Z|[+-]\d\d:\d\d) "
)


def timestamped(text: str | Iterable[str]) -> Iterator[tuple[int, str]]:
    """(sort key in ns, line) for each line of ``logs --timestamps`` output.

    A line without a timestamp keeps the key of the line before it, so it stays in place. The
    stamps of the later pieces of a partial record are removed, so the line reads as printed.
    """
    key = 0
    for line in text.splitlines() if isinstance(text, str) else text:
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
    merged = heapq.merge(timestamped(stdout), timestamped(stderr), key=lambda item: item[0])
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





def assemble(records: Iterable[tuple[str, str, bool]], *, synced: bool = True) -> Iterator[str]:
    """Whole lines from ``(stream, piece, ends_line)`` records, streamed in bounded memory.

    A line written in several pieces is one line, placed where its first piece was written;
    lines are yielded as soon as every line begun before them is complete. With ``synced``
    False (records read from the middle of a file), each stream's pieces up to its first line
    end are dropped: they finish a line whose start is not there.
    """
    from collections import deque

    pending: deque[list[Any]] = deque()  # [text, complete] in order of first piece
    open_line: dict[str, list[Any]] = {}
    started: set[str] = set()
    for stream, piece, ends in records:
        if not synced and stream not in started:
            if ends:
                started.add(stream)
            continue
        entry = open_line.get(stream)
        if entry is None:
            entry = [piece, False]
            pending.append(entry)
        else:
            entry[0] += piece
        if ends:
            entry[1] = True
            open_line.pop(stream, None)
        else:
            open_line[stream] = entry
        while pending and pending[0][1]:
            yield pending.popleft()[0].replace("\r", "")
    for text, _ in pending:  # a line still being written is shown as it stands
        yield text.replace("\r", "")


def k8s_file_records(lines: Iterable[str]) -> Iterator[tuple[str, str, bool]]:
    """``(stream, piece, ends_line)`` of podman's ``k8s-file`` log lines (``STAMP S P|F X``)."""
    for record in lines:
        parts = record.rstrip("\n").split(" ", 3)
        if len(parts) < 3 or parts[2] not in ("P", "F"):
            continue
        yield parts[1], parts[3] if len(parts) > 3 else "", parts[2] == "F"


def json_file_records(lines: Iterable[str]) -> Iterator[tuple[str, str, bool]]:
    """``(stream, piece, ends_line)`` of docker's ``json-file`` log (one JSON object a line;
    a line longer than 16 KiB is split into pieces without the final newline)."""
    for record in lines:
        try:
            item = json.loads(record)
        except ValueError:
            continue
        if not isinstance(item, dict) or not isinstance(item.get("log"), str):
            continue
        text: str = item["log"]
        ends = text.endswith("\n")
        yield str(item.get("stream", "stdout")), text[:-1] if ends else text, ends
