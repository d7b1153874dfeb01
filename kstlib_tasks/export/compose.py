"""A Compose file (the Compose Specification: no ``version:`` key) with one service per
container session, ``depends_on`` with its conditions, and healthchecks from ``ready:``.

A healthcheck runs inside the container, so a tcp or http probe needs a program there that
can open a connection. Images differ (busybox has ``nc`` but no working ``wget`` here, a
minimal Debian Python image has ``python3`` without ``http.client``, others have ``curl``), so
the check is one ``CMD-SHELL`` line that tries, in order, ``python3`` (sockets only), ``curl``,
``wget``, then ``nc`` (and bash's ``/dev/tcp`` for tcp): the first that answers "ready" wins.
An exec probe is its argv as ``CMD``, with no shell. See docs/export.md.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

from .plan import CHECK_PERIOD, Check, Dependency, Plan, Service

CONDITIONS = {"started": "service_started", "ready": "service_healthy",
              "completed": "service_completed_successfully"}


def escape(value: Any) -> Any:
    """Compose interpolates ``$`` everywhere: every ``$`` of every string is doubled, so the
    values (already expanded by kstlib from the config's env) arrive as written."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: escape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escape(item) for item in value]
    return value


def document(result: Plan) -> dict[str, Any]:
    services: dict[str, Any] = {}
    volumes: set[str] = set()
    for service in result.services:
        services[service.name] = _service(service, result)
        volumes.update(m.source for m in service.mounts if m.kind == "volume")
    doc: dict[str, Any] = {"services": services}
    if volumes:
        # `name:` keeps the volume's own name (not prefixed with the project): the same data
        # as the container backend's sessions use.
        doc["volumes"] = {name: {"name": name} for name in sorted(volumes)}
    return escape(doc)  # type: ignore[no-any-return]


def seconds_text(value: float) -> str:
    """A duration as Compose writes it: ``1s``, ``1.5s``, ``500ms``."""
    if value >= 1 and float(value).is_integer():
        return f"{int(value)}s"
    return f"{round(value * 1000)}ms"


def restart(service: Service) -> str:
    spec = service.spec
    if spec.restart == "on-failure":
        return f"on-failure:{spec.max_restarts}"
    return spec.restart  # "no" (dumped quoted: YAML 1.1 would read no as false) or "always"


def _service(service: Service, result: Plan) -> dict[str, Any]:
    spec = service.spec
    entry: dict[str, Any] = {"image": service.image}
    if service.argv:
        entry["command"] = list(service.argv)
    if spec.working_dir:
        entry["working_dir"] = spec.working_dir
    if service.env:
        entry["environment"] = dict(service.env)
    if service.ports:
        entry["ports"] = [port.text for port in service.ports]
    if service.mounts:
        entry["volumes"] = [_volume(m.source, m.target, m.options) for m in service.mounts]
    if service.init:
        entry["init"] = True
    # As kstlib runs it (--interactive --tty): output unbuffered, `attach` works.
    entry["tty"] = True
    entry["stdin_open"] = True
    entry["restart"] = restart(service)
    if service.depends:
        entry["depends_on"] = {d.name: {"condition": _condition(d)}
                               for d in service.depends}
    if service.check is not None:
        entry["healthcheck"] = healthcheck(service.check, result, spec.name)
    if service.replicas is not None:
        entry["deploy"] = {"replicas": service.replicas}
    return entry


def _volume(source: str, target: str, options: tuple[str, ...]) -> str:
    return ":".join([source, target, *([",".join(options)] if options else [])])


def _condition(dependency: Dependency) -> str:
    if dependency.condition == "ready" and not dependency.checked:
        # no probe: kstlib counts it ready once started; a log probe: no healthcheck to wait for
        return CONDITIONS["started"]
    return CONDITIONS[dependency.condition]


def healthcheck(check: Check, result: Plan, session: str) -> dict[str, Any]:
    interval = CHECK_PERIOD
    if check.kind == "exec":
        test = ["CMD", *check.argv]
    elif check.kind == "delay":
        result.note(session, f"ready: delay {check.delay:g}s becomes a healthcheck running "
                    "'true' every delay seconds (the image needs a 'true' program)")
        test = ["CMD", "true"]
        interval = check.delay  # the first check runs one interval after the start
    else:
        result.note(session, f"ready: {check.kind} is checked inside the container with "
                    "python3, curl, wget, nc or bash, whichever the image has")
        test = ["CMD-SHELL", tcp_script(check) if check.kind == "tcp" else http_script(check)]
    retries = max(1, math.ceil(check.timeout / interval))
    return {"test": test, "interval": seconds_text(interval),
            "timeout": seconds_text(check.attempt), "retries": retries}


def _target(check: Check) -> tuple[str, int]:
    return check.host or "127.0.0.1", int(check.port or 0)


def _literal(text: str) -> str:
    """A Python string literal in double quotes (JSON's escapes are Python's), so the code
    needs no single quote and reads plainly inside the shell's single quotes."""
    return json.dumps(text)


def tcp_script(check: Check) -> str:
    host, port = _target(check)
    seconds = int(check.attempt)
    code = (f"import socket; socket.create_connection(({_literal(host)}, {port}), "
            f"{seconds}).close()")
    q = shlex.quote
    return " || ".join([
        f"python3 -c {q(code)} 2>/dev/null",
        f"nc -z -w {seconds} {q(host)} {port} 2>/dev/null",  # openbsd/traditional netcat
        f"nc -w {seconds} {q(host)} {port} -e true 2>/dev/null",  # busybox nc (no -z)
        f"bash -c {q(f'exec 3<>/dev/tcp/{host}/{port}')} 2>/dev/null",
        "exit 1",  # unhealthy, whatever the last step said (127: no bash)
    ])


def http_script(check: Check) -> str:
    host, port = _target(check)
    seconds = int(check.attempt)
    https = check.scheme == "https"
    shown = f"[{host}]" if ":" in host else host
    default = 443 if https else 80
    header = shown if port == default else f"{shown}:{port}"
    url = f"{check.scheme}://{header}{check.path}"
    request = f"GET {check.path} HTTP/1.0\r\nHost: {header}\r\n\r\n"
    lines = ["import socket, sys",
             f"s = socket.create_connection(({_literal(host)}, {port}), {seconds})"]
    if https:  # like kstlib's own probe: the certificate is not verified
        lines += ["import ssl",
                  "c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",
                  "c.check_hostname = False",
                  "c.verify_mode = ssl.CERT_NONE",
                  f"s = c.wrap_socket(s, server_hostname={_literal(host)})"]
    lines += [f"s.sendall({_literal(request)}.encode())",
              'w = s.makefile("rb").readline().split()',
              'sys.exit(0 if len(w) > 1 and w[1][:1] in b"123" else 1)']
    code = "; ".join(lines)
    q = shlex.quote
    insecure = " -k" if https else ""
    no_check = " --no-check-certificate" if https else ""
    steps = [
        f"python3 -c {q(code)} 2>/dev/null",
        f"curl -fsS{insecure} -o /dev/null --max-time {seconds} {q(url)} 2>/dev/null",
        f"wget -q{no_check} -T {seconds} -O /dev/null {q(url)} 2>/dev/null",
    ]
    if not https:  # busybox: a raw request through nc, the status line read by grep
        steps.append(
            f"printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' {q(check.path)} {q(header)} "
            f"| nc -w {seconds} {q(host)} {port} 2>/dev/null | head -n 1 "
            "| grep -q '^HTTP/[0-9.]* [123]'")
    return " || ".join([*steps, "exit 1"])
