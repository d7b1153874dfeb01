"""probes: each kind against real loopback servers, and the waits with a fake clock.

Timing assertions against the real clock keep a wide margin (CI machines are loaded); the exact
polling schedule is checked with a fake clock instead.
"""

from __future__ import annotations

import http.server
import itertools
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from kstlib_tasks.probes import Outcome, ProbeSpec, attempt, wait_completed, wait_ready

# --------------------------------------------------------------------------- helpers


class Ctx:
    """A session as the probes see it; ``codes`` are the successive answers of ended()."""

    def __init__(
        self,
        *,
        lines: Sequence[str] = (),
        codes: Sequence[int | None] = (),
        run: Callable[[Sequence[str], float], int] | None = None,
        started_at: float | None = None,
    ):
        self.started_at = time.time() if started_at is None else started_at
        self.lines = list(lines)
        self.codes = list(codes)
        self.ended_calls = 0
        self.runs: list[tuple[tuple[str, ...], float]] = []
        self._run = run

    def output(self, final: bool = False) -> list[str]:
        new, self.lines = self.lines, []  # each line once, as a follower delivers them
        return new

    def run(self, argv: Sequence[str], timeout: float) -> int:
        self.runs.append((tuple(argv), timeout))
        assert self._run is not None
        return self._run(argv, timeout)

    def ended(self) -> int | None:
        self.ended_calls += 1
        if not self.codes:
            return None
        return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]


class Clock:
    """A fake monotonic clock that only sleep() advances (attempts take no time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def exec_probe(
    answer: Callable[[float], int], **kw: float
) -> tuple[ProbeSpec, Callable[[Sequence[str], float], int]]:
    return ProbeSpec("exec", ("check",), **kw), lambda argv, timeout: answer(timeout)


@pytest.fixture
def bound_port() -> Iterator[socket.socket]:
    """A loopback socket bound to a free port but not listening yet: connects are refused until
    the test calls listen(), with no window for another program to take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        status = {"/ok": 200, "/fail": 500, "/moved": 302, "/missing": 404, "/teapot": 418}.get(
            self.path.split("?")[0], 200
        )
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/fail")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(server: http.server.HTTPServer) -> Iterator[str]:
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def web() -> Iterator[tuple[str, http.server.HTTPServer]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for address in serve(server):
        yield f"http://{address}", server


@pytest.fixture
def tls_web(tmp_path: Path) -> Iterator[str]:
    """The same server behind a self-signed certificate (what local dev servers use)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=not-this-host"],
        check=True, capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for address in serve(server):
        yield f"https://{address}"


# --------------------------------------------------------------------------- describe / bound


@pytest.mark.parametrize(
    ("probe", "text"),
    [
        (ProbeSpec("tcp", ("127.0.0.1", 8080)), "tcp 127.0.0.1:8080"),
        (ProbeSpec("tcp", ("::1", 5432)), "tcp [::1]:5432"),
        (ProbeSpec("tcp", ("db.local", 5432)), "tcp db.local:5432"),
        (ProbeSpec("http", "http://localhost:3000/health"), "http http://localhost:3000/health"),
        (ProbeSpec("log", "ready"), "log /ready/"),
        (ProbeSpec("exec", ("pg_isready",)), "exec pg_isready"),
        (ProbeSpec("exec", ("pg_isready", "-h", "my db")), "exec pg_isready -h 'my db'"),
        (ProbeSpec("delay", 2.0), "delay 2s"),
        (ProbeSpec("delay", 0.5), "delay 0.5s"),
    ],
)
def test_describe(probe: ProbeSpec, text: str) -> None:
    assert probe.describe() == text


def test_defaults() -> None:
    probe = ProbeSpec("log", "x")
    assert (probe.timeout, probe.interval) == (60.0, 0.1)


@pytest.mark.parametrize(("interval", "bound"), [(0.1, 0.5), (0.5, 0.5), (1.0, 1.0), (5.0, 3.0)])
def test_attempt_bound(interval: float, bound: float) -> None:
    assert ProbeSpec("log", "x", interval=interval).bound() == bound


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown probe kind 'udp'"):
        attempt(ProbeSpec("udp", None), Ctx())


# --------------------------------------------------------------------------- tcp


def test_tcp_refused_then_ready(bound_port: socket.socket) -> None:
    probe = ProbeSpec("tcp", ("127.0.0.1", port_of(bound_port)))
    assert attempt(probe, Ctx()) is False
    bound_port.listen()
    assert attempt(probe, Ctx()) is True


def test_tcp_unresolvable_host_is_not_ready() -> None:
    assert attempt(ProbeSpec("tcp", ("no-such-host.invalid", 80)), Ctx()) is False


def test_tcp_listener_opened_later_in_a_thread(bound_port: socket.socket) -> None:
    timer = threading.Timer(0.3, bound_port.listen)
    timer.start()
    try:
        outcome = wait_ready(ProbeSpec("tcp", ("127.0.0.1", port_of(bound_port))), Ctx())
    finally:
        timer.cancel()
    assert outcome.ready, outcome
    assert 0.25 < outcome.seconds < 5


def test_latency_of_a_port_opened_after_one_second(bound_port: socket.socket) -> None:
    opened: list[float] = []

    def open_port() -> None:
        bound_port.listen()
        opened.append(time.monotonic())

    timer = threading.Timer(1.0, open_port)
    timer.start()
    try:
        outcome = wait_ready(ProbeSpec("tcp", ("127.0.0.1", port_of(bound_port))), Ctx())
        seen = time.monotonic()
    finally:
        timer.cancel()
    assert outcome.ready, outcome
    # About 0.15 s by the schedule (see test_schedule_sees_an_event_at_one_second); the margin
    # is for loaded CI machines.
    assert seen - opened[0] < 0.5


# --------------------------------------------------------------------------- http


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/ok", True), ("/moved", True), ("/fail", False), ("/missing", False), ("/teapot", False)],
)
def test_http_status(web: tuple[str, http.server.HTTPServer], path: str, ready: bool) -> None:
    url, _ = web
    assert attempt(ProbeSpec("http", url + path), Ctx()) is ready


def test_http_redirect_not_followed(web: tuple[str, http.server.HTTPServer]) -> None:
    url, server = web
    assert attempt(ProbeSpec("http", url + "/moved"), Ctx()) is True
    assert server.paths == ["/moved"]  # type: ignore[attr-defined]


def test_http_sends_path_and_query(web: tuple[str, http.server.HTTPServer]) -> None:
    url, server = web
    assert attempt(ProbeSpec("http", url + "/ok?deep=1"), Ctx()) is True
    assert attempt(ProbeSpec("http", url), Ctx()) is True
    assert server.paths == ["/ok?deep=1", "/"]  # type: ignore[attr-defined]


def test_http_nothing_listening(bound_port: socket.socket) -> None:
    assert attempt(ProbeSpec("http", f"http://127.0.0.1:{port_of(bound_port)}/"), Ctx()) is False


def test_http_server_that_never_answers_is_bounded(bound_port: socket.socket) -> None:
    bound_port.listen()  # accepts connections (the kernel does), never answers
    start = time.monotonic()
    assert attempt(ProbeSpec("http", f"http://127.0.0.1:{port_of(bound_port)}/"), Ctx()) is False
    assert time.monotonic() - start < 2.5  # bound 0.5 s per socket operation


def test_http_garbage_answer_is_not_ready(bound_port: socket.socket) -> None:
    bound_port.listen()

    def answer() -> None:
        conn, _ = bound_port.accept()
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    assert attempt(ProbeSpec("http", f"http://127.0.0.1:{port_of(bound_port)}/"), Ctx()) is False
    thread.join(5)


def test_https_self_signed_is_accepted(tls_web: str) -> None:
    assert attempt(ProbeSpec("http", tls_web + "/ok"), Ctx()) is True
    assert attempt(ProbeSpec("http", tls_web + "/fail"), Ctx()) is False


def test_https_against_plain_http_is_not_ready(web: tuple[str, http.server.HTTPServer]) -> None:
    url, _ = web
    assert attempt(ProbeSpec("http", url.replace("http:", "https:") + "/ok"), Ctx()) is False


def test_http_wait_ready(web: tuple[str, http.server.HTTPServer]) -> None:
    url, _ = web
    outcome = wait_ready(ProbeSpec("http", url + "/ok"), Ctx())
    assert outcome == Outcome(True, outcome.seconds, None, "")


# --------------------------------------------------------------------------- log / exec / delay


def test_log() -> None:
    probe = ProbeSpec("log", r"listening on :\d+")
    assert attempt(probe, Ctx(lines=["starting", "listening on :8080"])) is True
    assert attempt(probe, Ctx(lines=["starting", "listening on :"])) is False
    assert attempt(probe, Ctx()) is False


def test_log_searches_anywhere_in_a_line() -> None:
    assert attempt(ProbeSpec("log", "ready"), Ctx(lines=["[12:00] server ready!"])) is True
    assert attempt(ProbeSpec("log", "^ready$"), Ctx(lines=["server ready"])) is False


def test_exec_runs_through_the_context_with_the_bound() -> None:
    ctx = Ctx(run=lambda argv, timeout: 0)
    assert attempt(ProbeSpec("exec", ("pg_isready", "-q"), interval=1.0), ctx) is True
    assert ctx.runs == [(("pg_isready", "-q"), 1.0)]
    assert attempt(ProbeSpec("exec", ("false",)), Ctx(run=lambda argv, timeout: 1)) is False


@pytest.mark.parametrize(
    "error", [OSError("no such file"), TimeoutError(), subprocess.TimeoutExpired(["x"], 0.5)]
)
def test_exec_errors_are_not_ready(error: Exception) -> None:
    def fail(argv: Sequence[str], timeout: float) -> int:
        raise error

    assert attempt(ProbeSpec("exec", ("check",)), Ctx(run=fail)) is False


def test_delay() -> None:
    assert attempt(ProbeSpec("delay", 2.0), Ctx(started_at=time.time() - 5)) is True
    assert attempt(ProbeSpec("delay", 10.0), Ctx(started_at=time.time() - 5)) is False


def test_delay_wait_with_real_time() -> None:
    outcome = wait_ready(ProbeSpec("delay", 0.3), Ctx())
    assert outcome.ready
    assert 0.25 < outcome.seconds < 3


# --------------------------------------------------------------------------- wait_ready


def test_no_probe_means_ready_once_running() -> None:
    assert wait_ready(None, Ctx()) == Outcome(True, 0.0, None, "")


def test_no_probe_and_already_ended() -> None:
    outcome = wait_ready(None, Ctx(codes=[2]))
    assert (outcome.ready, outcome.exit_code, outcome.reason) == (
        False, 2, "exited with code 2 while waiting for ready (no probe: running)")


def test_crash_is_noticed_at_once(bound_port: socket.socket) -> None:
    port = port_of(bound_port)
    ctx = Ctx(codes=[None, 3])
    start = time.monotonic()
    outcome = wait_ready(ProbeSpec("tcp", ("127.0.0.1", port)), ctx)
    assert time.monotonic() - start < 0.5  # one refused connect, no sleep
    assert outcome.ready is False
    assert outcome.exit_code == 3
    assert outcome.reason == f"exited with code 3 while waiting for tcp 127.0.0.1:{port}"
    assert ctx.ended_calls == 2


def test_ended_before_the_first_attempt_makes_no_attempt() -> None:
    ctx = Ctx(codes=[1], run=lambda argv, timeout: 0)
    outcome = wait_ready(ProbeSpec("exec", ("check",)), ctx)
    assert (outcome.ready, outcome.exit_code) == (False, 1)
    assert ctx.runs == []


def test_exit_zero_is_a_failure_for_other_probes() -> None:
    outcome = wait_ready(ProbeSpec("delay", 30.0), Ctx(codes=[0]))
    assert outcome == Outcome(False, outcome.seconds, 0, "exited with code 0 while waiting for "
                              "delay 30s")


def test_log_line_printed_then_exit_zero_is_ready() -> None:
    outcome = wait_ready(ProbeSpec("log", "migrated"), Ctx(lines=["migrated 3"], codes=[0]))
    assert (outcome.ready, outcome.exit_code, outcome.reason) == (True, 0, "")


def test_log_exit_zero_without_the_line_fails() -> None:
    outcome = wait_ready(ProbeSpec("log", "migrated"), Ctx(lines=["oops"], codes=[0]))
    assert outcome.reason == "exited with code 0 while waiting for log /migrated/"
    assert outcome.exit_code == 0


def test_log_line_printed_then_crash_fails() -> None:
    outcome = wait_ready(ProbeSpec("log", "migrated"), Ctx(lines=["migrated"], codes=[1]))
    assert (outcome.ready, outcome.exit_code) == (False, 1)


def test_probe_timeout_with_a_fake_clock() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 1, timeout=2.0)
    ctx = Ctx(run=run)
    outcome = wait_ready(probe, ctx, clock=clock, sleep=clock.sleep)
    assert outcome == Outcome(False, 2.0, None, "not ready after 2 s (exec check)")
    assert clock.now == pytest.approx(102.0)
    assert sum(clock.sleeps) == pytest.approx(2.0)  # the last sleep stops at the limit
    assert len(ctx.runs) == len(clock.sleeps) + 1  # one last attempt at the limit


def test_timeout_with_real_time(bound_port: socket.socket) -> None:
    probe = ProbeSpec("tcp", ("127.0.0.1", port_of(bound_port)), timeout=0.4)
    outcome = wait_ready(probe, Ctx())
    assert outcome.reason == f"not ready after 0.4 s (tcp 127.0.0.1:{port_of(bound_port)})"
    assert 0.35 < outcome.seconds < 3


def test_overall_deadline_before_the_probe_timeout() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 1, timeout=60.0)
    outcome = wait_ready(probe, Ctx(run=run), deadline=clock.now + 1.5, clock=clock,
                         sleep=clock.sleep)
    assert outcome.reason == "not ready after 1.5 s (exec check)"
    assert outcome.seconds == pytest.approx(1.5)


def test_probe_timeout_before_the_overall_deadline() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 1, timeout=1.0)
    outcome = wait_ready(probe, Ctx(run=run), deadline=clock.now + 50, clock=clock,
                         sleep=clock.sleep)
    assert outcome.reason == "not ready after 1 s (exec check)"


def test_deadline_already_passed_still_tries_once() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 0)
    outcome = wait_ready(probe, Ctx(run=run), deadline=clock.now - 1, clock=clock,
                         sleep=clock.sleep)
    assert outcome.ready


def test_cancelled() -> None:
    clock = Clock()
    calls: list[int] = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    probe, run = exec_probe(lambda timeout: 1)
    outcome = wait_ready(probe, Ctx(run=run), clock=clock, sleep=clock.sleep, cancelled=cancelled)
    assert (outcome.ready, outcome.reason) == (False, "cancelled")
    assert len(clock.sleeps) == 3


def test_interval_grows_by_a_twentieth_up_to_one_second() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 1, timeout=30.0)
    wait_ready(probe, Ctx(run=run), clock=clock, sleep=clock.sleep)
    sleeps = clock.sleeps
    assert sleeps[:4] == pytest.approx([0.1, 0.105, 0.11025, 0.1157625])
    assert all(b >= a for a, b in itertools.pairwise(sleeps[:-1]))  # the last stops at the limit
    assert max(sleeps) == pytest.approx(1.0)
    assert sleeps[-2] == pytest.approx(1.0)


def test_interval_above_one_second_is_kept() -> None:
    clock = Clock()
    probe, run = exec_probe(lambda timeout: 1, timeout=10.0, interval=2.0)
    wait_ready(probe, Ctx(run=run), clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:2] == pytest.approx([2.0, 2.0])


def test_schedule_sees_an_event_at_one_second() -> None:
    """The brief's latency promise, exactly: a port opening at t=1 s is seen by t=1.15 s."""
    clock = Clock()
    start = clock.now
    probe, run = exec_probe(lambda timeout: 0 if clock.now - start >= 1.0 else 1)
    outcome = wait_ready(probe, Ctx(run=run), clock=clock, sleep=clock.sleep)
    assert outcome.ready
    assert 1.0 <= outcome.seconds <= 1.15


# --------------------------------------------------------------------------- wait_completed


def test_completed_with_zero() -> None:
    clock = Clock()
    outcome = wait_completed(Ctx(codes=[None, None, 0]), clock=clock, sleep=clock.sleep)
    assert outcome == Outcome(True, pytest.approx(0.205), 0, "")  # type: ignore[arg-type]


def test_completed_with_failure() -> None:
    outcome = wait_completed(Ctx(codes=[4]))
    assert (outcome.ready, outcome.exit_code, outcome.reason) == (
        False, 4, "exited with code 4 while waiting for completed (exit code 0)")


def test_completed_deadline() -> None:
    clock = Clock()
    outcome = wait_completed(Ctx(), deadline=clock.now + 3, clock=clock, sleep=clock.sleep)
    assert outcome == Outcome(False, pytest.approx(3.0), None,  # type: ignore[arg-type]
                              "not completed after 3 s")


def test_completed_without_deadline_waits_until_cancelled() -> None:
    clock = Clock()
    calls: list[int] = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 100

    outcome = wait_completed(Ctx(), clock=clock, sleep=clock.sleep, cancelled=cancelled)
    assert outcome.reason == "cancelled"
    assert max(clock.sleeps) == pytest.approx(1.0)


def test_completed_real_time() -> None:
    ctx = Ctx(codes=[None, None, None, 0])
    outcome = wait_completed(ctx)
    assert outcome.ready and outcome.seconds < 3
