"""``up``, ``down`` and ``wait``: a set of sessions brought up in dependency order, waited for,
and torn down, deterministically, with no daemon (the state stays in tmux and the runtimes).

``up`` runs one small thread per session: it waits until each of its dependencies reached the
condition it asks for (``started``, ``ready``, ``completed``), starts the session (or leaves it
running, or recreates it when it drifted from the config), then establishes the conditions its
dependents and ``--wait`` need. Sessions whose dependencies are satisfied therefore start in
parallel. The first failure (a start error, a session that ended before its condition held, a
probe that timed out) stops every start not yet made; what already runs is left running for
``down``. A session that ended is noticed at the next poll, never after the probe's timeout.
"""

from __future__ import annotations

import json as jsonlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import errors, probes
from ..errors import KstlibError, Suggest
from ..models import SessionSpec, SessionStatus, State
from . import launch as launching
from .places import Place, each

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..manager import SessionManager

Report = Callable[[str], None]
OUTPUT_LINES = 10


@dataclass
class Result:
    """What happened to one session, for the final report and ``--json``."""

    name: str
    backend: str
    state: str = "pending"
    ready: bool | None = None
    seconds: float | None = None
    exit_code: int | None = None
    error: str | None = None
    timed_out: bool = False
    output: list[str] = field(default_factory=list)
    code: int | None = None  # the documented exit code of the error, when it was one of ours

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "backend": self.backend, "state": self.state,
                "ready": self.ready, "seconds": None if self.seconds is None
                else round(self.seconds, 3), "exit_code": self.exit_code, "error": self.error}
        if self.error and self.output:
            data["output"] = self.output
        return data


class Gate:
    """A condition of one session that others wait for: passed, failed, or not yet known."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.passed = False

    def settle(self, passed: bool) -> None:
        self.passed = passed
        self._event.set()

    def wait(self, deadline: float | None, abort: threading.Event) -> bool | None:
        """True/False once settled; None when aborted or the deadline passed first."""
        while not self._event.is_set():
            if abort.is_set():
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._event.wait(0.05 if remaining is None else min(0.05, remaining))
        return self.passed


class RunContext:
    """One live session as the probes see it (see :class:`kstlib_tasks.probes.ProbeContext`).

    A ``log`` probe must see every line of the run, however much the session prints between
    two attempts: its output is followed from the first line by a thread (the backend's
    ``follow``, as ``logs -f``), started at the first look and ended by :meth:`close`.
    """

    FINAL_WAIT = 3.0  # seconds the follower may take to deliver an ended session's last lines

    def __init__(self, backend: Backend, spec: SessionSpec, env: dict[str, str],
                 started_at: float):
        self.backend = backend
        self.spec = spec
        self.env = env
        self.started_at = started_at
        self._new: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._follower: threading.Thread | None = None

    def output(self, final: bool = False) -> list[str]:
        if self._follower is None:
            self._follower = threading.Thread(target=self._follow, daemon=True)
            self._follower.start()
        if final:
            self._follower.join(self.FINAL_WAIT)  # follow ends with the session's last line
        with self._lock:
            new, self._new = self._new, []
        return new

    def _follow(self) -> None:
        try:
            for line in self.backend.follow(self.spec.name, None, stopped=self._closed.is_set):
                with self._lock:
                    self._new.append(line)
        except KstlibError:
            pass  # the session went away: what was seen stays seen

    def close(self) -> None:
        """End the follower and wait for it (bounded): it may run a ``logs --follow`` client,
        which must not outlive this command."""
        self._closed.set()
        if self._follower is not None:
            self._follower.join(self.FINAL_WAIT)

    def run(self, argv: Sequence[str], timeout: float) -> int:
        return self.backend.run_probe(self.spec.name, argv, env=self.env,
                                      cwd=self.spec.working_dir, timeout=timeout)

    def ended(self) -> int | None:
        try:
            status = self.backend.status(self.spec.name)
        except KstlibError:
            return None  # a backend hiccup is not the session's end
        if status is None:
            return -1  # removed: ended, code unknown
        if status.state in (State.EXITED, State.STOPPED):
            return status.exit_code if status.exit_code is not None else -1
        return None


def _epoch(iso: str | None) -> float:
    if not iso:
        return time.time()
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _probe(spec: SessionSpec) -> probes.ProbeSpec | None:
    """The spec's probe with ``$VAR`` expanded in exec words and http URLs."""
    return launching.probe(spec)


def _last_output(backend: Backend | None, name: str) -> list[str]:
    if backend is None:
        return []
    try:
        return [line for line in backend.logs(name, OUTPUT_LINES * 3) if line.strip()][
            -OUTPUT_LINES:]
    except KstlibError:
        return []


# --------------------------------------------------------------------------- up


class Up:
    """One ``up`` run (see the module docstring)."""

    def __init__(self, manager: SessionManager, order: list[str], wanted: list[str], *,
                 wait: bool, deadline: float | None, recreate: bool, report: Report,
                 front: str = "kstlib"):
        self.manager = manager
        self.front = front  # hints in error lines name the front end in use
        self.config = manager.config
        self.order = order
        self.wait = wait
        self.deadline = deadline
        self.recreate = recreate
        self.report = report
        self.abort = threading.Event()
        self.results = {n: Result(n, self.config.sessions[n].backend) for n in order}
        self.gates = {n: {c: Gate() for c in probes_conditions()} for n in order}
        self.needs: dict[str, set[str]] = {n: set() for n in order}
        for name in order:
            for edge in self.config.sessions[name].depends_on:
                self.needs[edge.name].add(edge.condition)
        if wait:
            for name in wanted:
                self.needs[name].add("ready")
        for name in order:
            # a one-shot step awaited to completion and with no probe: "ready" says nothing
            spec = self.config.sessions[name]
            if "completed" in self.needs[name] and spec.ready is None:
                self.needs[name].discard("ready")
        self.rows: dict[str, SessionStatus] = {}
        self.elsewhere: dict[str, SessionStatus] = {}

    def run(self) -> None:
        for row in self.manager.list():
            if row.name in self.results:
                if row.defined:
                    self.rows[row.name] = row
                elif row.state == State.RUNNING:
                    self.elsewhere[row.name] = row
        threads = [threading.Thread(target=self._session, args=(name,), daemon=True)
                   for name in self.order]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def fail(self, name: str, error: str, *, exit_code: int | None = None,
             timed_out: bool = False, backend: Backend | None = None,
             code: int | None = None) -> None:
        result = self.results[name]
        result.state = "failed" if not timed_out else "not ready"
        result.error = error
        result.code = code
        result.exit_code = exit_code if exit_code is not None else result.exit_code
        result.timed_out = timed_out
        result.output = _last_output(backend, name)
        self.report(f"{name}: {error}")
        self.abort.set()
        for gate in self.gates[name].values():
            if not gate._event.is_set():
                gate.settle(False)

    def fail_on(self, name: str, exc: KstlibError, *, backend: Backend | None,
                prefix: str = "") -> None:
        """:meth:`fail` with one of our errors: its line for this front end, and its code."""
        self.fail(name, prefix + exc.line(self.front), backend=backend, code=exc.exit_code)

    def _session(self, name: str) -> None:
        spec = self.config.sessions[name]
        result = self.results[name]
        # 1. the dependencies' conditions
        for edge in spec.depends_on:
            passed = self.gates[edge.name][edge.condition].wait(self.deadline, self.abort)
            if passed is None or not passed:
                if passed is None and not self.abort.is_set():
                    self.fail(name, f"not started: {edge.name} not {edge.condition} in time",
                              timed_out=True)
                    return
                self._skip(name, "not started: another session failed" if self.abort.is_set()
                           else f"not started: {edge.name} did not become {edge.condition}")
                return
        if self.abort.is_set():
            self._skip(name, "not started: another session failed")
            return
        # 2. start it, leave it, or recreate it
        begun = time.monotonic()
        try:
            backend, context = self._bring_up(name, spec)
        except KstlibError as exc:
            self.fail_on(name, exc, backend=None, prefix="could not start: ")
            return
        result.state = "running"
        self.gates[name]["started"].settle(True)
        # 3. what the others (and --wait) need of it
        try:
            self._establish(name, spec, backend, context, begun)
        except KstlibError as exc:  # a probe that cannot be run there: one line, not a traceback
            self.fail_on(name, exc, backend=backend)
        finally:
            context.close()

    def _establish(self, name: str, spec: SessionSpec, backend: Backend, context: RunContext,
                   begun: float) -> None:
        result = self.results[name]
        if "ready" in self.needs[name]:
            try:
                probe = _probe(spec)
            except KstlibError as exc:  # a variable of the probe unset since it was started
                self.fail_on(name, exc, backend=backend)
                return
            outcome = probes.wait_ready(probe, context, deadline=self.deadline,
                                        cancelled=self.abort.is_set)
            if not outcome.ready:
                self._probe_failed(name, spec, outcome, backend, "ready")
                return
            result.ready = True
            result.seconds = time.monotonic() - begun
            self.report(f"{name}: ready after {result.seconds:.1f} s")
            self.gates[name]["ready"].settle(True)
        if "completed" in self.needs[name]:
            outcome = probes.wait_completed(context, deadline=self.deadline,
                                            cancelled=self.abort.is_set)
            if not outcome.ready:
                self._probe_failed(name, spec, outcome, backend, "completed")
                return
            result.state = "completed"
            result.exit_code = 0
            result.seconds = time.monotonic() - begun
            self.report(f"{name}: completed after {result.seconds:.1f} s")
            self.gates[name]["completed"].settle(True)
        if result.seconds is None:
            result.seconds = time.monotonic() - begun

    def _skip(self, name: str, why: str) -> None:
        result = self.results[name]
        result.state, result.error = "skipped", why
        self.report(f"{name}: {why}")
        for gate in self.gates[name].values():
            gate.settle(False)

    def _probe_failed(self, name: str, spec: SessionSpec, outcome: probes.Outcome,
                      backend: Backend, condition: str) -> None:
        if self.abort.is_set() and not outcome.exit_code and "cancel" in outcome.reason:
            self.results[name].state = "cancelled"
            self.report(f"{name}: no longer awaited (another session failed; left running "
                        "for down)")
            for gate in self.gates[name].values():
                gate.settle(False)
            return
        timed_out = outcome.exit_code is None
        reason = outcome.reason or f"not {condition}"
        self.fail(name, reason, exit_code=outcome.exit_code, timed_out=timed_out,
                  backend=backend)

    def _bring_up(self, name: str, spec: SessionSpec) -> tuple[Backend, RunContext]:
        manager = self.manager
        home = manager.places.home(spec)
        backend = manager.places.backend(home)
        row = self.rows.get(name)
        if name in self.elsewhere:
            other = self.elsewhere[name]
            raise errors.SessionAlreadyRunningError(
                f"session '{name}' is already running elsewhere ({other.backend}"
                f"{' ' + other.scope if other.scope else ''})", hint=Suggest("stop", name))
        if row is not None and row.state == State.RUNNING:
            if row.drifted and self.recreate:
                self.report(f"{name}: recreating (drifted: {', '.join(row.drift)})")
                backend.stop(name)
            else:
                note = " (drifted: kept, --no-recreate)" if row.drifted else ""
                self.report(f"{name}: already running{note}")
                env = launching.host_env(spec)
                return backend, RunContext(backend, spec, env, _epoch(row.created_at))
        self.report(f"{name}: starting")
        prepared = launching.prepare(spec, {}, fresh=row is None or row.state == State.DEFINED)
        started_at = time.time()
        status = backend.start(prepared)
        manager.places.kind(home[0]).remember(home[1])
        if status.state == State.EXITED:
            self.results[name].exit_code = status.exit_code
            if not self.needs[name]:  # nobody waits for it: say it, as start does
                self.report(f"warning: {name}: already exited with code {status.exit_code}")
        return backend, RunContext(backend, spec, dict(prepared.env), started_at)


def probes_conditions() -> tuple[str, ...]:
    from ..graph import CONDITIONS

    return CONDITIONS


def up(manager: SessionManager, targets: Sequence[str], *, wait: bool, timeout: float | None,
       recreate: bool, json: bool, report: Report, front: str = "kstlib") -> int:
    graph = manager.config.graph()
    wanted = manager.config.targets(graph, targets)
    order = graph.up_order(wanted)
    deadline = None if timeout is None else time.monotonic() + timeout
    run = Up(manager, order, wanted, wait=wait, deadline=deadline, recreate=recreate,
             report=report, front=front)
    run.run()
    return _finish(list(run.results.values()), json=json, report=report, verb="up")


def _finish(results: list[Result], *, json: bool, report: Report, verb: str) -> int:
    failed = [r for r in results if r.error and r.state not in ("skipped", "cancelled")]
    codes = {r.code or errors.FAILED for r in failed if not r.timed_out}
    if len(codes) == 1:
        code = codes.pop()  # one kind of failure: its own code (3: a backend is missing)
    elif codes:
        code = errors.FAILED
    elif failed:
        code = errors.TIMEOUT
    else:
        code = errors.OK
    if json:
        print(jsonlib.dumps({"ok": code == 0, "exit_code": code,
                             "sessions": [r.as_dict() for r in results]}, indent=2))
    for result in failed:
        if result.output:
            report(f"{result.name}: last output:")
            for line in result.output:
                report(f"{result.name} | {line}")
    if failed:
        names = ", ".join(r.name for r in failed)
        report(f"{verb} failed: {names}")
    return code


# --------------------------------------------------------------------------- down


def down(manager: SessionManager, targets: Sequence[str], *, force: bool, timeout: float,
         json: bool, report: Report, front: str = "kstlib") -> int:
    """Stop the targets and what depends on them, dependents first.

    In waves: every session whose dependents (among those being stopped) are down goes in the
    same wave; a wave is stopped with one ``stop_many`` per place, all places in parallel (a
    container runtime then stops its containers with a handful of calls in all).
    """
    config = manager.config
    graph = config.graph()
    # Entries refused by validation (a typo made while they run) are still stopped: what this
    # tool started under their name is theirs. Their dependencies are unknown: they go first.
    broken = [t for t in targets if t in config.invalid and t not in config.sessions]
    wanted = [t for t in targets if t not in broken]
    if targets:
        names = config.targets(graph, wanted) if wanted else []
    else:
        names, broken = list(config.sessions), list(config.invalid)
    order = graph.down_order(names)
    live = (State.RUNNING, State.EXITED, State.STOPPED)
    listed = manager.list()
    rows = {r.name: r for r in listed if r.defined and r.state in live}
    for row in listed:
        if row.name in broken and row.name not in rows and row.state in live and row.managed:
            rows[row.name] = row
            order.insert(0, row.name)
    todo = [n for n in order if n in rows]
    results = {n: Result(n, rows[n].backend) for n in todo}
    left = list(todo)

    def dependents(name: str) -> tuple[str, ...]:
        return graph.dependents(name) if name in config.sessions else ()

    while left:
        wave = [n for n in left
                if not any(d in left and d != n for d in dependents(n))]
        by_place: dict[Place, list[str]] = {}
        for name in wave:
            row = rows[name]
            by_place.setdefault((row.backend, row.scope), []).append(name)
            if row.state == State.RUNNING:
                report(f"{name}: stopping")
        begun = time.monotonic()

        def stop_at(place: Place, names: dict[Place, list[str]] = by_place) -> dict[str, Any]:
            return dict(manager.places.backend(place).stop_many(
                names[place], timeout=timeout, force=force))

        for place, outcome in zip(by_place, each(list(by_place), stop_at), strict=True):
            for name in by_place[place]:
                result = results[name]
                value = outcome.get(name) if isinstance(outcome, dict) else outcome
                result.seconds = time.monotonic() - begun
                if isinstance(value, errors.SessionNotRunningError):
                    result.state = "stopped"
                elif isinstance(value, KstlibError):
                    result.state, result.error = "failed", value.line(front)
                    result.code = value.exit_code
                    report(f"{name}: {result.error}")
                elif isinstance(value, SessionStatus):
                    was_running = rows[name].state == State.RUNNING
                    result.state = "stopped" if was_running else "removed"
                    result.exit_code = value.exit_code
                    if value.note:
                        report(f"warning: session '{name}': {value.note}")
                    code = f" (exit code {value.exit_code})" if value.exit_code is not None else ""
                    report(f"{name}: {result.state}{code} after {result.seconds:.1f} s")
        left = [n for n in left if n not in wave]
    if not todo:
        report("nothing to stop")
    return _finish(list(results.values()), json=json, report=report, verb="down")


# --------------------------------------------------------------------------- wait


def wait(manager: SessionManager, names: Sequence[str], *, timeout: float | None, json: bool,
         report: Report, front: str = "kstlib") -> int:
    from .follow import expand_targets

    targets = expand_targets(manager, list(names))
    deadline = None if timeout is None else time.monotonic() + timeout
    results: dict[str, Result] = {}
    threads = []

    def one(name: str) -> None:
        spec, place, status = manager.find(name)
        result = results[name]
        if place is None or status is None:
            if spec is None:
                result.error = manager.not_found(name).line(front)
            else:
                result.error = "is not running"
                result.state = "defined"
            report(f"{name}: {result.error}")
            return
        backend = manager.places.backend(place)
        use = spec or SessionSpec(name=name, backend=status.backend)
        env = launching.host_env(use)
        context = RunContext(backend, use, env, _epoch(status.created_at))
        begun = time.monotonic()
        try:
            outcome = probes.wait_ready(_probe(use), context, deadline=deadline)
        except KstlibError as exc:
            result.error, result.code = exc.line(front), exc.exit_code
            report(f"{name}: {result.error}")
            return
        finally:
            context.close()
        result.seconds = time.monotonic() - begun
        result.exit_code = outcome.exit_code
        if outcome.ready:
            result.state, result.ready = "running", True
            report(f"{name}: ready after {result.seconds:.1f} s")
        else:
            result.state, result.ready = "not ready", False
            result.error = outcome.reason
            result.timed_out = outcome.exit_code is None
            result.output = _last_output(backend, name)
            report(f"{name}: {outcome.reason}")

    for name in targets:
        results[name] = Result(name, "?")
        spec = manager.config.sessions.get(name)
        if spec is not None:
            results[name].backend = spec.backend
        threads.append(threading.Thread(target=one, args=(name,), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _finish(list(results.values()), json=json, report=report, verb="wait")
