"""Readiness probes: when a started session can be relied upon by the sessions that need it.

The waits answer three questions, in this order, each time round: did the session end (a crash
must be reported at once, not after the probe's timeout), is it ready, is time up. The session
itself is reached only through a :class:`ProbeContext`, so the same code serves tmux panes and
containers, and the tests can drive it with plain objects and a fake clock.

Polling starts fast and slows down gently (x1.05 per attempt, up to 1 s): a dev server that
opens its port after a second is seen well within 0.15 s, and a slow database is not hammered.
The session's end is checked before the first attempt and after every failed one: one backend
call per round.
Network modules are imported only by the attempts that use them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from .models import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, ProbeSpec, seconds_text

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_TIMEOUT", "KINDS", "Outcome", "ProbeContext", "ProbeSpec",
           "attempt", "wait_completed", "wait_ready"]

KINDS = ("tcp", "http", "log", "exec", "delay")
GROWTH = 1.05
MAX_INTERVAL = 1.0


class ProbeContext(Protocol):
    """The running session as the probes see it (one per run of the session)."""

    started_at: float  # time.time() when this run started

    def output(self, final: bool = False) -> list[str]:
        """The lines this run printed since the previous call (the first call: since the run
        began; never those of an earlier run). ``final``: the session has ended, so include
        its last lines (a bounded wait for them)."""
        ...

    def run(self, argv: Sequence[str], timeout: float) -> int:
        """Run an exec probe where the session lives (host or container); its exit status."""
        ...

    def ended(self) -> int | None:
        """The exit code once the session's process has ended; None while it runs."""
        ...


class Outcome(NamedTuple):
    """How a wait ended. ``seconds`` is the time waited; ``reason`` is empty when ready."""

    ready: bool
    seconds: float
    exit_code: int | None
    reason: str


def attempt(probe: ProbeSpec, ctx: ProbeContext) -> bool:
    """One try. Any failure to reach the session (refused, reset, timed out) is "not ready"."""
    bound = probe.bound()
    try:
        if probe.kind == "tcp":
            return _tcp(probe.target, bound)
        if probe.kind == "http":
            return _http(probe.target, bound)
        if probe.kind == "log":
            return _log(probe.target, ctx.output())
        if probe.kind == "exec":
            return _exec(probe.target, ctx, bound)
        if probe.kind == "delay":
            return time.time() - ctx.started_at >= float(probe.target)
    except (OSError, TimeoutError):
        return False
    raise ValueError(f"unknown probe kind {probe.kind!r} (expected one of {KINDS})")


def _log(pattern: str, lines: Sequence[str]) -> bool:
    found = re.compile(pattern)
    return any(found.search(line) for line in lines)


def _tcp(target: tuple[str, int], bound: float) -> bool:
    import socket

    host, port = target
    with socket.create_connection((host, port), timeout=bound):
        return True


def _http(url: str, bound: float) -> bool:
    """GET ``url``; ready below 400. Redirects are not followed: a 3xx already says the server
    answers.

    https certificates are NOT verified, on purpose: the probe sends nothing secret and reads
    nothing but the status, and the local dev servers it waits for mostly use self-signed
    certificates, which a verifying probe would wait on until its timeout.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            import ssl

            # PROTOCOL_TLS_CLIENT loads no CA bundle: nothing is verified, so nothing to load.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=bound, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=bound)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            return connection.getresponse().status < 400
        finally:
            connection.close()
    except (http.client.HTTPException, ValueError):  # a garbled answer, a bad port in the URL
        return False


def _exec(argv: Sequence[str], ctx: ProbeContext, bound: float) -> bool:
    import subprocess

    try:
        return ctx.run(argv, bound) == 0
    except subprocess.TimeoutExpired:
        return False


# --------------------------------------------------------------------------- waits


def wait_ready(
    probe: ProbeSpec | None,
    ctx: ProbeContext,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Poll until ready, ended, timed out (the probe's timeout or ``deadline``, a ``clock``
    value) or ``cancelled()``.

    No probe means "ready once running": ready at once unless the session already ended. A
    session that ended with 0 under a log probe whose line it printed is ready (a one-shot
    that says "done" and exits); any other end is a failure with its exit code.
    """
    start = clock()
    if probe is None:
        code = ctx.ended()
        if code is None:
            return Outcome(True, 0.0, None, "")
        return Outcome(False, clock() - start, code,
                       f"exited with code {code} while waiting for ready (no probe: running)")
    limit = start + probe.timeout
    # The probe's own timeout is named as configured; an earlier overall deadline as measured.
    waited: str | None = f"{seconds_text(probe.timeout)} s"
    if deadline is not None and deadline < limit:
        limit, waited = deadline, None
    interval = probe.interval

    def ended(code: int) -> Outcome:
        seconds = clock() - start
        if code == 0 and probe.kind == "log" and _log(probe.target, ctx.output(final=True)):
            return Outcome(True, seconds, 0, "")
        return Outcome(
            False, seconds, code, f"exited with code {code} while waiting for {probe.describe()}"
        )

    code = ctx.ended()
    if code is not None:
        return ended(code)
    while True:
        if cancelled():
            return Outcome(False, clock() - start, None, "cancelled")
        if attempt(probe, ctx):
            return Outcome(True, clock() - start, None, "")
        code = ctx.ended()
        if code is not None:
            return ended(code)
        now = clock()
        if now >= limit:
            shown = waited or f"{seconds_text(round(now - start, 1))} s"
            reason = f"not ready after {shown} ({probe.describe()})"
            return Outcome(False, now - start, None, reason)
        sleep(min(interval, limit - now))
        interval = min(interval * GROWTH, max(MAX_INTERVAL, probe.interval))


def wait_completed(
    ctx: ProbeContext,
    *,
    deadline: float | None = None,
    interval: float = DEFAULT_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] = lambda: False,
) -> Outcome:
    """For the ``completed`` condition: wait for the session to end; ready only with code 0.

    Without a ``deadline`` it waits as long as the session runs (a migration takes what it
    takes); ``cancelled`` is then the way out.
    """
    start = clock()
    while True:
        code = ctx.ended()  # before the cancel: what already ended is reported as it ended
        if code is not None:
            reason = "" if code == 0 else (
                f"exited with code {code} while waiting for completed (exit code 0)")
            return Outcome(code == 0, clock() - start, code, reason)
        if cancelled():
            return Outcome(False, clock() - start, None, "cancelled")
        now = clock()
        if deadline is not None and now >= deadline:
            shown = seconds_text(round(now - start, 1))
            return Outcome(False, now - start, None, f"not completed after {shown} s")
        sleep(interval if deadline is None else min(interval, deadline - now))
        interval = min(interval * GROWTH, MAX_INTERVAL)

