"""A small program for the end-to-end tests to run as a session (on the host or in a container).

kstlib runs commands without a shell and refuses ``;`` ``&`` ``|`` ``>`` in them, so what a
session does is spelled as steps on the command line, separated by ``+``::

    python3 e2e_tool.py stamp /p/a.start + sleep 2 + say ready + serve 8123 http

Steps (run in order; the last one may run forever):

- ``say WORDS...``      print a line
- ``sleep SECONDS``     wait
- ``stamp FILE``        append the current time.time() to FILE
- ``touch FILE``        create FILE
- ``pid FILE``          append this process's pid to FILE
- ``once FILE CODE``    the first time (FILE missing): create FILE and exit CODE; later: go on
- ``env NAMES...``      print ``env: NAME=value`` (or ``env: NAME unset``) for each name
- ``need-port PORT``    exit 3 unless 127.0.0.1:PORT accepts a connection
- ``need-http URL``     exit 3 unless URL answers HTTP 200
- ``need-file FILE``    exit 3 unless FILE exists
- ``at-stop PORT``      when stopped (SIGINT/SIGTERM), say whether 127.0.0.1:PORT is open
- ``serve PORT [http] [any]``  listen (127.0.0.1, or every interface with ``any``), answer
                        HTTP when asked, forever
- ``ticks N SECONDS``   print ``tick I`` N times, SECONDS apart
- ``args WORDS...``     print the words as a Python list (``repr``)
- ``exit CODE``         exit with CODE
- ``forever``           wait until stopped

Only the standard library's socket module (no http.server: the minimal test image has none).
On SIGINT or SIGTERM it says ``stopping``, runs the ``at-stop`` checks and exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

AT_STOP: list[int] = []


def say(*words: str) -> None:
    print(" ".join(words), flush=True)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    try:
        with socket.create_connection((host, int(port or 80)), timeout=3) as conn:
            conn.sendall(f"GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and answer.split(b" ", 2)[1:2] == [b"200"]


def on_stop(signum: int, frame: object) -> None:
    say("stopping")
    for port in AT_STOP:
        say(f"at-stop: port {port} {'open' if port_open(port) else 'closed'}")
    sys.stdout.flush()
    os._exit(0)


def serve(port: int, http: bool, everywhere: bool) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0" if everywhere else "127.0.0.1", port))
    server.listen(16)
    say(f"listening {port}")
    while True:
        conn, _ = server.accept()
        with conn:
            if not http:
                continue
            conn.settimeout(3)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass


def run(steps: list[list[str]]) -> int:
    for step in steps:
        verb, args = step[0], step[1:]
        if verb == "say":
            say(*args)
        elif verb == "sleep":
            time.sleep(float(args[0]))
        elif verb == "stamp":
            with open(args[0], "a") as fh:
                fh.write(f"{time.time()}\n")
        elif verb == "touch":
            open(args[0], "a").close()
        elif verb == "pid":
            with open(args[0], "a") as fh:
                fh.write(f"{os.getpid()}\n")
        elif verb == "once":
            if not os.path.exists(args[0]):
                open(args[0], "a").close()
                return int(args[1])
        elif verb == "env":
            for key in args:
                value = os.environ.get(key)
                say(f"env: {key} unset" if value is None else f"env: {key}={value}")
        elif verb == "need-port":
            if not port_open(int(args[0])):
                say(f"need: port {args[0]} not open")
                return 3
            say(f"need: port {args[0]} open")
        elif verb == "need-http":
            if not http_ok(args[0]):
                say(f"need: {args[0]} did not answer")
                return 3
            say(f"need: {args[0]} answered")
        elif verb == "need-file":
            if not os.path.exists(args[0]):
                say(f"need: {args[0]} missing")
                return 3
            say(f"need: {args[0]} present")
        elif verb == "at-stop":
            AT_STOP.append(int(args[0]))
        elif verb == "serve":
            serve(int(args[0]), "http" in args[1:], "any" in args[1:])
        elif verb == "ticks":
            for i in range(int(args[0])):
                say(f"tick {i}")
                time.sleep(float(args[1]))
        elif verb == "flood":  # flood N WORDS...: the words, then N lines, in ONE write
            lines = [" ".join(args[1:])] + [f"flood {i}" for i in range(int(args[0]))]
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        elif verb == "args":
            say(repr(args))  # no json: the minimal container image has no json module
        elif verb == "exit":
            return int(args[0])
        elif verb == "forever":
            while True:
                time.sleep(60)
        else:
            say(f"e2e_tool: unknown step {verb!r}")
            return 64
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    steps: list[list[str]] = [[]]
    for word in argv:
        if word == "+":
            steps.append([])
        else:
            steps[-1].append(word)
    return run([s for s in steps if s])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
