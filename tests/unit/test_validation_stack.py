"""validation (stack keys): every accepted form of the stack keys and every refusal, word for word.

Refusals are read through a voluptuous schema holding the validator under its config key, so
the text checked is the one the loader prints: ``ready.tcp: invalid port ...``.
"""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol

from kstlib_tasks import validation as vs
from kstlib_tasks.graph import Edge
from kstlib_tasks.probes import ProbeSpec
from kstlib_tasks.validation import error_field, invalid_reason


def errors(key: str, value: Any) -> list[str]:
    """Every refusal of ``{key: value}`` as the loader words it (``field: reason``)."""
    schema = vol.Schema({vol.Optional(key): vs.STACK_KEYS[key]})
    with pytest.raises(vol.MultipleInvalid) as info:
        schema({key: value})
    return [f"{error_field(e.path)}: {invalid_reason(e)}" for e in info.value.errors]


def error(key: str, value: Any) -> str:
    found = errors(key, value)
    assert len(found) == 1, found
    return found[0]


def test_session_keys() -> None:
    assert list(vs.STACK_KEYS) == [
        "ready", "depends_on", "groups", "restart", "max_restarts", "env_file",
    ]


# =========================================================================== ready


@pytest.mark.parametrize(
    ("value", "target"),
    [
        (8080, ("127.0.0.1", 8080)),
        ("8080", ("127.0.0.1", 8080)),
        (1, ("127.0.0.1", 1)),
        ("65535", ("127.0.0.1", 65535)),
        ("localhost:5432", ("localhost", 5432)),
        ("db.internal-1.example:5432", ("db.internal-1.example", 5432)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("10.1.2.3:80", ("10.1.2.3", 80)),
        ("[::1]:5432", ("::1", 5432)),
        ("[fe80::1:2]:9", ("fe80::1:2", 9)),
        ("DB:1", ("DB", 1)),
    ],
)
def test_ready_tcp(value: Any, target: tuple[str, int]) -> None:
    assert vs.ready({"tcp": value}) == ProbeSpec("tcp", target, timeout=60.0, interval=0.1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "ready.tcp: invalid port '0': ports are numbers 1-65535"),
        ("65536", "ready.tcp: invalid port '65536': ports are numbers 1-65535"),
        ("123456", "ready.tcp: invalid port '123456': ports are numbers 1-65535"),
        (-1, "ready.tcp: invalid port '-1': ports are numbers 1-65535"),
        ("host:http", "ready.tcp: invalid port 'http': ports are numbers 1-65535"),
        ("host:", "ready.tcp: invalid port '': ports are numbers 1-65535"),
        (True, "ready.tcp: expected a port or 'HOST:PORT', got a boolean"),
        (None, "ready.tcp: expected a port or 'HOST:PORT', got null"),
        ([80], "ready.tcp: expected a port or 'HOST:PORT', got a list"),
        ("localhost", "ready.tcp: invalid tcp target 'localhost': expected PORT or HOST:PORT"),
        (":80", "ready.tcp: host is empty: an IPv4 address, [IPv6] or a hostname of letters, "
                "digits, '.' and '-'"),
        ("::1:80", "ready.tcp: invalid tcp target '::1:80': write an IPv6 address in brackets "
                   "('[::1]:80')"),
        ("[::1]", "ready.tcp: invalid tcp target '[::1]': expected '[IPv6]:PORT'"),
        ("[::1:80", "ready.tcp: invalid tcp target '[::1:80': expected '[IPv6]:PORT'"),
        ("[nope]:80", "ready.tcp: invalid IPv6 address '[nope]'"),
        ("999.1.1.1:80", "ready.tcp: invalid IPv4 address '999.1.1.1'"),
        ("1.2.3:80", "ready.tcp: invalid IPv4 address '1.2.3'"),
        ("ho_st:80", "ready.tcp: invalid host 'ho_st': an IPv4 address, [IPv6] or a hostname of "
                     "letters, digits, '.' and '-'"),
        ("-host:80", "ready.tcp: invalid host '-host': an IPv4 address, [IPv6] or a hostname of "
                     "letters, digits, '.' and '-'"),
        ("a..b:80", "ready.tcp: invalid host 'a..b': an IPv4 address, [IPv6] or a hostname of "
                    "letters, digits, '.' and '-'"),
        ("h st:80", "ready.tcp: invalid host 'h st': an IPv4 address, [IPv6] or a hostname of "
                    "letters, digits, '.' and '-'"),
        ("a\n:80", "ready.tcp: invalid host 'a\\n': an IPv4 address, [IPv6] or a hostname of "
                   "letters, digits, '.' and '-'"),
    ],
)
def test_ready_tcp_refused(value: Any, message: str) -> None:
    assert error("ready", {"tcp": value}) == message


def test_ready_tcp_long_hostname() -> None:
    label = "a" * 63
    host = ".".join([label] * 4)  # 255 characters
    assert error("ready", {"tcp": f"{host}:1"}).startswith("ready.tcp: invalid host 'aaaa")
    assert vs.ready({"tcp": f"{label}.{label}:1"}).target == (f"{label}.{label}", 1)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/health",
        "https://127.0.0.1:8443/",
        "http://example.com",
        "http://[::1]:8080/ready?full=1#x",
        "HTTP://EXAMPLE.COM/",
        "http://h/" + "a" * 2000,
        "http://example.com:/",
        # a variable stands for a name in the host, for a number in the port
        "http://$HOST/health",
        "http://${HOST:-127.0.0.1}:${PORT:-8000}/h$$",
        "http://[::1]:$PORT/$PATH",
    ],
)
def test_ready_http(url: str) -> None:
    assert vs.ready({"http": url}) == ProbeSpec("http", url)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://host/", "ready.http: invalid URL 'ftp://host/': only http:// and https:// are "
                        "supported"),
        ("localhost:3000", "ready.http: invalid URL 'localhost:3000': only http:// and https:// "
                           "are supported"),
        ("http:/x", "ready.http: invalid URL 'http:/x': only http:// and https:// are supported"),
        ("http:///path", "ready.http: invalid URL 'http:///path': no host"),
        ("http://:80/", "ready.http: invalid URL 'http://:80/': no host"),
        ("http://h:99999/", "ready.http: invalid URL 'http://h:99999/': ports are numbers "
                            "1-65535"),
        ("http://h:0/", "ready.http: invalid URL 'http://h:0/': ports are numbers 1-65535"),
        ("http://h:x/", "ready.http: invalid URL 'http://h:x/': ports are numbers 1-65535"),
        ("http://ho_st/", "ready.http: invalid URL 'http://ho_st/': invalid host 'ho_st': an "
                          "IPv4 address, [IPv6] or a hostname of letters, digits, '.' and '-'"),
        ("http://[zz]/", "ready.http: invalid URL 'http://[zz]/': invalid host: an IPv4 "
                         "address, [IPv6] or a hostname of letters, digits, '.' and '-'"),
        ("http://[::1/", "ready.http: invalid URL 'http://[::1/': invalid host: an IPv4 "
                         "address, [IPv6] or a hostname of letters, digits, '.' and '-'"),
        ("http://[::1]x/", "ready.http: invalid URL 'http://[::1]x/': invalid host '[::1]x': an "
                           "IPv4 address, [IPv6] or a hostname of letters, digits, '.' and '-'"),
        ("http://[1.2.3.4]/", "ready.http: invalid URL 'http://[1.2.3.4]/': invalid host: an "
                              "IPv4 address, [IPv6] or a hostname of letters, digits, '.' and "
                              "'-'"),
        ("http://caf\u00e9.fr/", "ready.http: invalid URL 'http://café.fr/': invalid host "
                                  "'café.fr': an IPv4 address, [IPv6] or a hostname of letters, "
                                  "digits, '.' and '-'"),
        ("http://u:p@h/", "ready.http: invalid URL 'http://u:p@h/': no user:password@ in a "
                          "readiness URL"),
        ("http://h/a b", "ready.http: URL 'http://h/a b' contains whitespace (write %20)"),
        ("http://h/\n", "ready.http: URL contains a newline"),
        ("http://h/\x00", "ready.http: URL contains a NUL"),
        ("http://h/\t", "ready.http: URL contains a control character U+0009"),
        ("http://h/\u2028", "ready.http: URL contains a control character U+2028"),
        ("", "ready.http: URL is empty"),
        ("http://h/" + "a" * 2040, "ready.http: URL longer than 2048 characters"),
        (8080, "ready.http: expected a URL, got a int"),
    ],
)
def test_ready_http_refused(value: Any, message: str) -> None:
    assert error("ready", {"http": value}) == message


@pytest.mark.parametrize("pattern", ["ready", r"listening on :\d+", "^Started$", "x" * 256])
def test_ready_log(pattern: str) -> None:
    assert vs.ready({"log": pattern}) == ProbeSpec("log", pattern)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ab(", "ready.log: invalid regular expression 'ab(': missing ), unterminated "
                "subpattern"),
        ("*x", "ready.log: invalid regular expression '*x': nothing to repeat"),
        ("", "ready.log: log pattern is empty"),
        ("x" * 257, "ready.log: log pattern longer than 256 characters"),
        (None, "ready.log: expected a regular expression, got null"),
    ],
)
def test_ready_log_refused(value: Any, message: str) -> None:
    assert error("ready", {"log": value}) == message


def test_ready_exec() -> None:
    assert vs.ready({"exec": "pg_isready -h localhost"}).target == (
        "pg_isready", "-h", "localhost",
    )
    assert vs.ready({"exec": ["redis-cli", "ping"]}) == ProbeSpec("exec", ("redis-cli", "ping"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("check && echo", "ready.exec: contains shell control syntax '&&' (put it in a script "
                          "and run that)"),
        ("", "ready.exec: command is empty"),
        ([], "ready.exec: command is empty"),
        ("'unclosed", "ready.exec: cannot split command: No closing quotation"),
        ("a\nb", "ready.exec: contains a newline"),
        (5, "ready.exec: expected a command string, got a int"),
    ],
)
def test_ready_exec_refused(value: Any, message: str) -> None:
    assert error("ready", {"exec": value}) == message


@pytest.mark.parametrize(("value", "seconds"), [(2, 2.0), ("2", 2.0), ("0.5", 0.5), (".5", 0.5),
                                                (1.5, 1.5), ("59.9", 59.9)])
def test_ready_delay(value: Any, seconds: float) -> None:
    assert vs.ready({"delay": value}) == ProbeSpec("delay", seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "ready.delay: expected more than 0 and at most 3600 seconds, got 0"),
        ("0", "ready.delay: expected more than 0 and at most 3600 seconds, got 0"),
        ("3601", "ready.delay: expected more than 0 and at most 3600 seconds, got 3601"),
        (-1, "ready.delay: expected more than 0 and at most 3600 seconds, got -1"),
        (float("nan"), "ready.delay: expected more than 0 and at most 3600 seconds, got nan"),
        ("-1", "ready.delay: expected a number of seconds, got '-1'"),
        ("2s", "ready.delay: expected a number of seconds, got '2s'"),
        ("1e3", "ready.delay: expected a number of seconds, got '1e3'"),
        ("inf", "ready.delay: expected a number of seconds, got 'inf'"),
        (True, "ready.delay: expected a number of seconds, got a boolean"),
        (None, "ready.delay: expected a number of seconds, got None"),
    ],
)
def test_ready_delay_refused(value: Any, message: str) -> None:
    assert error("ready", {"delay": value}) == message


def test_ready_delay_must_be_shorter_than_the_timeout() -> None:
    assert error("ready", {"delay": 60}) == (
        "ready.delay: delay 60 s is not shorter than the timeout (60 s): raise timeout"
    )
    assert error("ready", {"delay": "5", "timeout": "2.5"}) == (
        "ready.delay: delay 5 s is not shorter than the timeout (2.5 s): raise timeout"
    )
    assert vs.ready({"delay": 90, "timeout": 120}) == ProbeSpec("delay", 90.0, timeout=120.0)


def test_ready_timeout_and_interval() -> None:
    spec = vs.ready({"tcp": 80, "timeout": "120", "interval": "0.5"})
    assert (spec.timeout, spec.interval) == (120.0, 0.5)
    spec = vs.ready({"interval": 1, "timeout": 3600, "log": "x"})
    assert (spec.timeout, spec.interval) == (3600.0, 1.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timeout": 0}, "ready.timeout: expected more than 0 and at most 3600 seconds, got 0"),
        ({"timeout": "4000"}, "ready.timeout: expected more than 0 and at most 3600 seconds, "
                              "got 4000"),
        ({"timeout": "soon"}, "ready.timeout: expected a number of seconds, got 'soon'"),
        ({"interval": "2"}, "ready.interval: expected more than 0 and at most 1 seconds, got 2"),
        ({"interval": 0}, "ready.interval: expected more than 0 and at most 1 seconds, got 0"),
        ({"interval": False}, "ready.interval: expected a number of seconds, got a boolean"),
    ],
)
def test_ready_timeout_and_interval_refused(extra: dict[str, Any], message: str) -> None:
    assert error("ready", {"tcp": 80, **extra}) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "ready: give exactly one of tcp, http, log, exec, delay"),
        ({"timeout": 5}, "ready: give exactly one of tcp, http, log, exec, delay"),
        ({"tcp": 80, "http": "http://h/"}, "ready: give exactly one of tcp, http, log, exec, "
                                           "delay"),
        ({"tpc": 80}, "ready.tpc: unknown key (did you mean 'tcp'?)"),
        ({"tcp": 80, "timout": 5}, "ready.timout: unknown key (did you mean 'timeout'?)"),
        ({"tcp": 80, "retries": 5}, "ready.retries: unknown key (expected tcp, http, log, exec, "
                                    "delay, timeout or interval)"),
        ({"tcp": 80, 5: 5}, "ready.5: unknown key (expected tcp, http, log, exec, delay, "
                            "timeout or interval)"),
        ({"tpc": 80, "http": "x"}, "ready.tpc: unknown key (did you mean 'tcp'?)"),
        (8080, "ready: expected a mapping with one of tcp, http, log, exec or delay, got a int"),
        ("tcp", "ready: expected a mapping with one of tcp, http, log, exec or delay, got a str"),
        (None, "ready: expected a mapping with one of tcp, http, log, exec or delay, got null"),
    ],
)
def test_ready_shape_refused(value: Any, message: str) -> None:
    assert error("ready", value) == message


# =========================================================================== depends_on


def test_depends_on_list() -> None:
    assert vs.depends_on(["db", "cache"]) == (Edge("db", "ready"), Edge("cache", "ready"))
    assert vs.depends_on([]) == ()
    assert vs.depends_on(("db",)) == (Edge("db", "ready"),)


def test_depends_on_mapping() -> None:
    assert vs.depends_on({"db": "ready", "migrate": "completed", "log": "started"}) == (
        Edge("db", "ready"), Edge("migrate", "completed"), Edge("log", "started"),
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("db", ["depends_on: expected a list of session names or a mapping of name: condition, "
                "got a str"]),
        (None, ["depends_on: expected a list of session names or a mapping of name: "
                "condition, got null"]),
        (["db", "db"], ["depends_on[1]: duplicate dependency 'db'"]),
        (["db", "bad_name", 3], [
            "depends_on[1]: invalid session name 'bad_name': start with a letter, then letters, "
            "digits or '-' (use '-', invoke turns '_' into '-')",
            "depends_on[2]: expected a session name, got a int",
        ]),
        ([""], ["depends_on[0]: session name is empty"]),
        ({"db": "redy"}, ["depends_on.db: unknown condition 'redy' (did you mean 'ready'?)"]),
        ({"db": "healthy"}, ["depends_on.db: unknown condition 'healthy' (expected started, "
                             "ready or completed)"]),
        ({"db": None}, ["depends_on.db: expected started, ready or completed, got null"]),
        ({"db": True}, ["depends_on.db: expected started, ready or completed, got a boolean"]),
        ({"1db": "ready"}, ["depends_on.1db: invalid session name '1db': start with a letter, "
                            "then letters, digits or '-'"]),
        ([f"s{i}" for i in range(51)], ["depends_on: more than 50 dependencies"]),
    ],
)
def test_depends_on_refused(value: Any, found: list[str]) -> None:
    assert errors("depends_on", value) == found


def test_depends_on_fifty_is_fine() -> None:
    assert len(vs.depends_on([f"s{i}" for i in range(50)])) == 50


# =========================================================================== groups


def test_groups() -> None:
    assert vs.groups(["backend", "data-1"]) == ("backend", "data-1")
    assert vs.groups("backend") == ("backend",)
    assert vs.groups([]) == ()
    assert len(vs.groups([f"g{i}" for i in range(20)])) == 20


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"a": 1}, ["groups: expected a list of group names, got a mapping"]),
        (5, ["groups: expected a list of group names, got a int"]),
        (["a", "a"], ["groups[1]: duplicate group 'a'"]),
        (["ok", "no_way", ""], [
            "groups[1]: invalid group name 'no_way': start with a letter, then letters, digits "
            "or '-'",
            "groups[2]: group name is empty",
        ]),
        # a single name is checked as the one element of a list
        ("9lives", ["groups: invalid group name '9lives': start with a letter, then letters, "
                    "digits or '-'"]),
        ([None], ["groups[0]: expected a group name, got null"]),
        (["x" * 65], ["groups[0]: group name longer than 64 characters"]),
        ([f"g{i}" for i in range(21)], ["groups: more than 20 group names"]),
    ],
)
def test_groups_refused(value: Any, found: list[str]) -> None:
    assert errors("groups", value) == found


# =========================================================================== restart


@pytest.mark.parametrize(
    ("value", "policy"),
    [("no", "no"), ("on-failure", "on-failure"), ("always", "always"), (False, "no")],
)
def test_restart(value: Any, policy: str) -> None:
    assert vs.restart(value) == policy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "restart: true is not a restart policy: write on-failure or always"),
        ("allways", "restart: unknown restart policy 'allways' (did you mean 'always'?)"),
        ("on_failure", "restart: unknown restart policy 'on_failure' (did you mean "
                       "'on-failure'?)"),
        ("No", "restart: unknown restart policy 'No' (did you mean 'no'?)"),
        ("unless-stopped", "restart: unknown restart policy 'unless-stopped' (expected no, "
                           "on-failure or always)"),
        (None, "restart: expected no, on-failure or always, got null"),
        (3, "restart: expected no, on-failure or always, got a int"),
    ],
)
def test_restart_refused(value: Any, message: str) -> None:
    assert error("restart", value) == message


@pytest.mark.parametrize(("value", "number"), [(0, 0), ("0", 0), (5, 5), ("1000", 1000)])
def test_max_restarts(value: Any, number: int) -> None:
    assert vs.max_restarts(value) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1001, "max_restarts: max_restarts must be between 0 and 1000, got 1001"),
        ("1001", "max_restarts: max_restarts must be between 0 and 1000, got 1001"),
        (-1, "max_restarts: max_restarts must be between 0 and 1000, got -1"),
        ("-1", "max_restarts: expected a whole number, got '-1'"),
        ("3.5", "max_restarts: expected a whole number, got '3.5'"),
        (3.0, "max_restarts: expected a whole number, got 3.0"),
        (True, "max_restarts: expected a whole number, got a boolean"),
        (None, "max_restarts: expected a whole number, got None"),
    ],
)
def test_max_restarts_refused(value: Any, message: str) -> None:
    assert error("max_restarts", value) == message


@pytest.mark.parametrize(
    ("restart", "limit", "reason"),
    [
        ("always", 0, None),
        ("always", 5, None),
        ("on-failure", 5, None),
        ("on-failure", None, None),
        ("no", None, None),
        ("no", 3, None),
        ("on-failure", 0, "0 (no limit) is only allowed with restart: always"),
        ("no", 0, "0 (no limit) is only allowed with restart: always"),
    ],
)
def test_restart_rule(restart: str, limit: int | None, reason: str | None) -> None:
    assert vs.restart_rule(restart, limit) == reason


# =========================================================================== env_file


def test_env_file() -> None:
    assert vs.env_file(".env") == (".env",)
    assert vs.env_file([".env", "~/secrets/app.env", "/etc/app env"]) == (
        ".env", "~/secrets/app.env", "/etc/app env",
    )
    assert vs.env_file([]) == ()
    assert len(vs.env_file(["f"] * 20)) == 20
    assert vs.env_file("p" * 4096) == ("p" * 4096,)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("a\nb", ["env_file: env_file contains a newline"]),
        ("a\tb", ["env_file: env_file contains a control character U+0009"]),
        ("", ["env_file: env_file is empty"]),
        ("p" * 4097, ["env_file: env_file longer than 4096 characters"]),
        ({"a": 1}, ["env_file: expected a list of env files, got a mapping"]),
        (None, ["env_file: expected a list of env files, got null"]),
        ([".env", None, "x\x00"], [
            "env_file[1]: expected a path, got null",
            "env_file[2]: env_file contains a NUL",
        ]),
        (["f"] * 21, ["env_file: more than 20 env files"]),
    ],
)
def test_env_file_refused(value: Any, found: list[str]) -> None:
    assert errors("env_file", value) == found


def test_ready_reports_every_bad_field_probe_first() -> None:
    with pytest.raises(vol.MultipleInvalid) as info:
        vs.ready({"timeout": -1, "tcp": 99999, "interval": "fast"})
    assert [(e.path, e.msg) for e in info.value.errors] == [
        (["tcp"], "invalid port '99999': ports are numbers 1-65535"),
        (["timeout"], "expected more than 0 and at most 3600 seconds, got -1"),
        (["interval"], "expected a number of seconds, got 'fast'"),
    ]
