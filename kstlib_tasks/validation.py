"""The one place where every rule about a value lives (deep defense).

The config loader, the CLI options and the invoke task flags all validate through this module, so
a value refused in ``kstlib.conf.yml`` is refused the same way, with the same words, on the
command line. Each rule is a small named validator raising :class:`voluptuous.Invalid` with its
own precise message (voluptuous' generic "not a valid value" helps nobody); every pattern matches
the WHOLE value (``fullmatch``), so no trailing-newline loophole.

Validators return the clean value: commands come back as an argv tuple (split with shlex, never
handed to a shell unquoted), ports as text, env as a ``dict[str, str]``. Backends build their own
option schemas from these validators (see ``backends/*/__init__.py``); the rules themselves stay
here, in one place.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import voluptuous as vol

from .errors import ValidationError
from .models import CONDITIONS, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Edge, ProbeSpec
from .probes import KINDS
from .suggest import did_you_mean

MAX_NAME = 64
MAX_COMMAND = 4096
MAX_IMAGE = 256
MAX_VOLUMES = 20
MAX_PORTS = 50
MAX_ENV = 100
MAX_ENV_VALUE = 32 * 1024  # one argv word may not exceed 128 KiB (MAX_ARG_STRLEN)
MAX_ENV_TOTAL = 128 * 1024
MAX_DESCRIPTION = 200
MAX_SESSIONS = 50
MAX_PATH = 4096

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*", re.ASCII)
SOCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)

# Keys that make another program load code: a config file must not be able to smuggle that in.
FORBIDDEN_ENV_KEYS = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "NODE_OPTIONS",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "BASH_ENV",
        "ENV",
        "PYTHONUSERBASE",
        "PYTHONWARNINGS",
        "PERLLIB",
        "RUBYLIB",
        "NODE_PATH",
        "GCONV_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "SHELLOPTS",
        "BASHOPTS",
        "PROMPT_COMMAND",
        "PS4",
        "PYTHONBREAKPOINT",  # names the callable breakpoint() runs
        "PERL5DB",  # code run by perl -d
        "LESSOPEN",  # a command less runs on every file it opens
        "LESSCLOSE",
        # git runs programs and hooks named by these
        "GIT_DIR",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_PAGER",
        "GIT_EXTERNAL_DIFF",
        "GIT_PROXY_COMMAND",
        "GIT_TEMPLATE_DIR",
    }
)
FORBIDDEN_ENV_PREFIXES = ("DYLD_", "LD_", "GIT_CONFIG")
# Letters that show as nothing: a name or value holding one does not read as what it is.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")

# Shell control syntax, refused anywhere in a command (even quoted: the text may meet a shell).
SHELL_CONTROL = (
    ("$(", "command substitution '$('"),
    ("`", "backtick command substitution"),
    ("&&", "'&&'"),
    ("||", "'||'"),
    (";", "';'"),
    ("&", "'&'"),
    ("|", "'|'"),
    (">", "redirection '>'"),
    ("<", "redirection '<'"),
)

VOLUME_OPTIONS = frozenset(
    {"ro", "rw", "z", "Z", "U", "O", "shared", "slave", "private", "rshared", "rslave",
     "rprivate", "nocopy", "copy", "delegated", "cached", "consistent", "exec", "noexec",
     "suid", "nosuid", "dev", "nodev"}
)

# --- OCI image reference grammar (distribution/reference), one anchored pattern per part ---
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
TAG_RE = re.compile(_TAG, re.ASCII)
DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]", re.ASCII)
PORT_NUMBER_RE = re.compile(r"[0-9]{1,5}", re.ASCII)


def _show(value: Any, limit: int = 60) -> str:
    """A value as it appears in a message: repr-quoted, control characters visible, bounded."""
    text = "".join(f"\\u{ord(c):04x}" if c in INVISIBLE else c for c in repr(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _require_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise vol.Invalid(f"expected {what}, got {_kind(value)}")
    return value


def _odd_character(text: str, *, allow_tab: bool = True) -> str | None:
    """The first control / line-separator character in ``text``, described, or None."""
    for ch in text:
        if ch == "\t" and allow_tab:
            continue
        if ch in INVISIBLE:
            return f"blank filler character U+{ord(ch):04X}"
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Zl", "Zp"):
            names = {"\x00": "NUL", "\n": "newline", "\r": "carriage return"}
            return names.get(ch, f"control character U+{ord(ch):04X}")
    return None


def _bounded_text(value: Any, what: str, label: str, limit: int) -> str:
    """A non-empty string of at most ``limit`` characters (``label`` names it in messages)."""
    text = _require_str(value, what)
    if not text:
        raise vol.Invalid(f"{label} is empty")
    if len(text) > limit:
        raise vol.Invalid(f"{label} longer than {limit} characters")
    return text


# --------------------------------------------------------------------------- validators


def session_name(value: Any) -> str:
    """Names become tmux targets, container names and invoke collection names."""
    text = _bounded_text(value, "a session name", "session name", MAX_NAME)
    if not NAME_RE.fullmatch(text):
        hint = " (use '-', invoke turns '_' into '-')" if "_" in text else ""
        raise vol.Invalid(
            f"invalid session name {_show(text)}: start with a letter, then letters, digits "
            f"or '-'{hint}"
        )
    return text


def backend(value: Any) -> str:
    """A registered backend name (the registry is the one list of them)."""
    from . import backends

    known = backends.names()
    text = _require_str(value, _words(tuple(repr(n) for n in known)))
    if text not in known:
        from .suggest import did_you_mean

        raise vol.Invalid(f"unknown backend {_show(text)} (expected "
                          f"{_words(tuple(repr(n) for n in known))}){did_you_mean(text, known)}")
    return text


RUNTIMES = ("podman", "docker")


def runtime(value: Any) -> str | None:
    if value is None:
        return None
    text = _require_str(value, "'podman', 'docker' or null")
    if text not in RUNTIMES:
        raise vol.Invalid(
            f"unknown container runtime {_show(text)} (expected 'podman' or 'docker')"
        )
    return text


def description(value: Any) -> str:
    """One line of help text: shown on terminals, so no control characters, bounded."""
    text = _bounded_text(value, "a one-line description", "description", MAX_DESCRIPTION)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"description contains a {odd}")
    return text


def command(value: Any) -> tuple[str, ...]:
    """A command line as text (split with shlex) or as a list of words; returns the argv."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise vol.Invalid("command is empty")
        words = [_command_text(_require_str(w, "a string for each command word")) for w in value]
        if not words[0]:
            raise vol.Invalid("command starts with an empty program name")
        if sum(len(w) + 1 for w in words) > MAX_COMMAND:
            raise vol.Invalid(f"command longer than {MAX_COMMAND} characters")
        return tuple(words)
    text = _command_text(_require_str(value, "a command string"))
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise vol.Invalid(f"cannot split command: {exc}") from None
    if not argv:
        raise vol.Invalid("command is empty")
    if not argv[0]:
        raise vol.Invalid("command starts with an empty program name")
    return tuple(argv)


def command_as_written(raw: Any, argv: Sequence[str]) -> str | None:
    """The command as the user wrote it, for help texts and messages (a list is joined)."""
    if isinstance(raw, str):
        return raw
    return shlex.join(argv) if argv else None


def _command_text(text: str) -> str:
    """One command string or word: bounded, no control characters, no shell syntax."""
    if len(text) > MAX_COMMAND:
        raise vol.Invalid(f"command longer than {MAX_COMMAND} characters")
    odd = _odd_character(text)
    if odd:
        raise vol.Invalid(f"contains a {odd}")
    for token, label in SHELL_CONTROL:
        if token in text:
            raise vol.Invalid(
                f"contains shell control syntax {label} (put it in a script and run that)"
            )
    return text


def image(value: Any) -> str:
    """``[registry[:port]/]path[:tag][@digest]``, repository in lower case (OCI grammar)."""
    text = _bounded_text(value, "an image reference", "image reference", MAX_IMAGE)
    if not _is_image_reference(text):
        raise vol.Invalid(f"invalid image reference {_show(text)}")
    return text


def _is_image_reference(text: str) -> bool:
    rest, _, digest = text.partition("@")
    if "@" in text and not DIGEST_RE.fullmatch(digest):
        return False
    first, slash, remainder = rest.partition("/")
    # The first component is a registry only when it looks like one (dot, port or localhost);
    # otherwise it is part of the lower-case repository path (so 'UPPER/x' is refused).
    if slash and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not DOMAIN_RE.fullmatch(first):
            return False
        rest = remainder
    name, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if colon and not TAG_RE.fullmatch(tag):
        return False
    return bool(name) and bool(PATH_RE.fullmatch(name))


def working_dir(value: Any) -> str:
    text = _bounded_text(value, "a directory path", "working_dir", MAX_PATH)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"working_dir contains a {odd}")
    return text


def socket_name(value: Any) -> str | None:
    if value is None:
        return None
    text = _require_str(value, "a tmux socket name")
    if len(text) > MAX_NAME or not SOCKET_RE.fullmatch(text):
        raise vol.Invalid(
            f"invalid tmux socket name {_show(text)}: letters, digits, '.', '_' or '-', "
            f"at most {MAX_NAME} characters"
        )
    return text


def tmux_binary(value: Any) -> str:
    """A program name or path; whether it exists is checked where it is used (and by check)."""
    text = _require_str(value, "a program name or path")
    odd = _odd_character(text, allow_tab=False)
    if not text or odd or any(c in text for c in " ;&|$`<>"):
        raise vol.Invalid(f"invalid tmux binary {_show(text)}")
    return text


def executable(program: str) -> str | None:
    """The absolute path of ``program`` (a name looked up in PATH, or a path), or None."""
    import shutil

    if "/" in program:
        path = os.path.abspath(os.path.expanduser(program))
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(program)


def volume(value: Any) -> str:
    """``host:container[:options]``; container path absolute, no '..' anywhere."""
    text = _require_str(value, "a volume 'host:container[:options]'")
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"volume contains a {odd}")
    if len(text) > MAX_PATH:
        raise vol.Invalid(f"volume longer than {MAX_PATH} characters")
    if ".." in text:
        raise vol.Invalid(f"volume {_show(text)} contains '..'")
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise vol.Invalid(f"invalid volume {_show(text)}: expected 'host:container[:options]'")
    host, container = parts[0], parts[1]
    if not container.startswith("/"):
        raise vol.Invalid(f"volume {_show(text)}: container path must be absolute")
    if not (host.startswith(("/", "./", "~")) or "/" in host or VOLUME_NAME_RE.fullmatch(host)):
        raise vol.Invalid(f"volume {_show(text)}: invalid host path or volume name")
    if len(parts) == 3:
        options = parts[2].split(",")
        bad = [o for o in options if o not in VOLUME_OPTIONS]
        if bad:
            raise vol.Invalid(f"volume {_show(text)}: unknown option {_show(bad[0])}")
    return text


def port(value: Any) -> str:
    """``[ip:][host:]container[/tcp|/udp]``; a bare integer is that port."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a port, got a boolean")
    if isinstance(value, int):
        value = str(value)
    text = _require_str(value, "a port '[ip:][host:]container[/tcp|/udp]'")
    spec, slash, proto = text.partition("/")
    if slash and proto not in ("tcp", "udp"):
        raise vol.Invalid(f"invalid port {_show(text)}: protocol must be tcp or udp")
    ip = ""
    if spec.startswith("["):
        end = spec.find("]")
        ip, spec = spec[: end + 1], spec[end + 2 :] if end != -1 else ""
        if end == -1 or not IPV6_RE.fullmatch(ip) or text[end + 1 : end + 2] != ":":
            raise vol.Invalid(f"invalid port {_show(text)}: bad IPv6 address")
        parts = [ip, *spec.split(":")]
    else:
        parts = spec.split(":")
    if len(parts) == 3:
        ip, host, container = parts
        if not (IPV4_RE.fullmatch(ip) or IPV6_RE.fullmatch(ip)):
            raise vol.Invalid(f"invalid port {_show(text)}: bad IP address {_show(ip)}")
        numbers = [host, container] if host else [container]
    elif len(parts) in (1, 2):
        numbers = parts
    else:
        raise vol.Invalid(f"invalid port {_show(text)}: expected '[ip:][host:]container[/proto]'")
    for number in numbers:
        if not PORT_NUMBER_RE.fullmatch(number) or not 1 <= int(number) <= 65535:
            raise vol.Invalid(f"invalid port {_show(text)}: ports are numbers 1-65535")
    return text


def env_key(value: Any) -> str:
    text = _require_str(value, "an environment variable name")
    if not ENV_KEY_RE.fullmatch(text):
        raise vol.Invalid(f"invalid environment variable name {_show(text)}")
    if text in FORBIDDEN_ENV_KEYS or text.startswith(FORBIDDEN_ENV_PREFIXES):
        raise vol.Invalid(f"{text} is refused: it makes programs load foreign code")
    return text


def env_value(value: Any) -> str:
    """Strings as they are; integers and floats as their text; booleans and null refused."""
    if isinstance(value, bool) or value is None:
        shown = "null" if value is None else str(value).lower()
        raise vol.Invalid(f"value {shown} is not a string: quote it")
    if isinstance(value, (int, float)):
        return str(value)
    text = _require_str(value, "a string value")
    if "\x00" in text:
        raise vol.Invalid("value contains a NUL")
    if len(text) > MAX_ENV_VALUE:
        raise vol.Invalid(f"value longer than {MAX_ENV_VALUE // 1024} KiB")
    return text


def env(value: Any) -> dict[str, str]:
    """A mapping, or ``KEY=VALUE`` strings (the CLI's --env), to a clean ``dict``."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = [_env_pair(v) for v in value]
    else:
        raise vol.Invalid(f"expected a mapping of NAME: value, got a {type(value).__name__}")
    if len(items) > MAX_ENV:
        raise vol.Invalid(f"more than {MAX_ENV} environment variables")
    clean: dict[str, str] = {}
    for key, val in items:
        try:
            clean[env_key(key)] = env_value(val)
        except vol.Invalid as exc:
            raise vol.Invalid(exc.msg, path=[str(key)]) from None
    env_size(clean)
    return clean


def env_size(values: Mapping[str, str]) -> None:
    """The whole environment a config gives one session stays well under the kernel's limits."""
    if len(values) > MAX_ENV:
        raise vol.Invalid(f"more than {MAX_ENV} environment variables")
    total = sum(len(k) + len(v) + 2 for k, v in values.items())
    if total > MAX_ENV_TOTAL:
        raise vol.Invalid(f"environment larger than {MAX_ENV_TOTAL // 1024} KiB in all "
                          f"({total // 1024} KiB)")


def _env_pair(text: Any) -> tuple[str, str]:
    text = _require_str(text, "'NAME=value'")
    key, eq, val = text.partition("=")
    if not eq:
        raise vol.Invalid(f"invalid environment entry {_show(text)}: expected NAME=value")
    return key, val


def _bounded_list(item: Callable[[Any], str], limit: int, what: str, *,
                  alone: tuple[type, ...] = (str, int), duplicate: str | None = None
                  ) -> Callable[[Any], list[str]]:
    """A validator of lists of ``item`` (at most ``limit``): one value of an ``alone`` type
    stands for a one-element list; every entry's problem is reported, under its index;
    ``duplicate`` names the entry in the message refusing a repeated one."""
    def validate(value: Any) -> list[str]:
        single = isinstance(value, alone) and not isinstance(value, bool)
        if single:
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise vol.Invalid(f"expected a list of {what}, got {_kind(value)}")
        if len(value) > limit:
            raise vol.Invalid(f"more than {limit} {what}")
        errors = []
        clean: list[str] = []
        for index, entry in enumerate(value):
            try:
                checked = item(entry)
                if duplicate and checked in clean:
                    raise vol.Invalid(f"duplicate {duplicate} {_show(checked)}")
                clean.append(checked)
            except vol.Invalid as exc:
                # a value written alone is reported as written, not as item [0]
                path = list(exc.path) if single else [index, *exc.path]
                errors.append(vol.Invalid(exc.msg, path=path))
        if errors:
            raise vol.MultipleInvalid(errors)
        return clean

    validate.__name__ = f"{what.replace(' ', '_')}_list"
    return validate


volumes = _bounded_list(volume, MAX_VOLUMES, "volumes")
ports = _bounded_list(port, MAX_PORTS, "ports")


EXPORT_FORMATS = ("kubernetes", "compose")


def export_format(value: Any) -> str:
    """``ops export --format``: what to write."""
    text = _require_str(value, "'kubernetes' or 'compose'")
    if text not in EXPORT_FORMATS:
        hint = did_you_mean(text, EXPORT_FORMATS) or " (expected 'kubernetes' or 'compose')"
        raise vol.Invalid(f"unknown export format {_show(text)}{hint}")
    return text


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {_show(value)}")
    return value


def lines(value: Any) -> int:
    number = _integer(value, "--lines")
    if not 0 <= number <= 1_000_000:
        raise vol.Invalid(f"lines must be between 0 and 1000000, got {number}")
    return number


def timeout(value: Any) -> float:
    if isinstance(value, bool):
        raise vol.Invalid("expected a number of seconds")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise vol.Invalid(f"expected a number of seconds, got {_show(value)}") from None
    if not 0 <= number <= 3600:
        raise vol.Invalid(f"timeout must be between 0 and 3600 seconds, got {value}")
    return number


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise vol.Invalid(f"expected a whole number for {what}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value, re.ASCII):
        return int(value)
    raise vol.Invalid(f"expected a whole number, got {_show(value)}")


# --------------------------------------------------------------------------- stack keys

MAX_DEPENDENCIES = 50
MAX_GROUPS = 20
MAX_ENV_FILES = 20
MAX_URL = 2048
MAX_PATTERN = 256
MAX_HOST = 253
MAX_SECONDS = 3600.0
MAX_INTERVAL = 1.0
MAX_RESTARTS = 1000
DEFAULT_HOST = "127.0.0.1"
RESTART_POLICIES = ("no", "on-failure", "always")

READY_KEYS = (*KINDS, "timeout", "interval")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.ASCII)
DECIMAL_RE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?|\.[0-9]{1,9}", re.ASCII)
_EXACTLY_ONE = f"give exactly one of {', '.join(KINDS)}"
_HOST_RULE = "an IPv4 address, [IPv6] or a hostname of letters, digits, '.' and '-'"


def _words(items: tuple[str, ...], last: str = "or") -> str:
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


# --------------------------------------------------------------------------- ready


def ready(value: Any) -> ProbeSpec:
    """``{tcp|http|log|exec|delay: ..., timeout?: s, interval?: s}`` -> a ProbeSpec.

    Unknown keys are reported before the count of probes, so a typo (``tpc:``) gets its "did
    you mean" instead of "give exactly one of".
    """
    if not isinstance(value, Mapping):
        raise vol.Invalid(f"expected a mapping with one of {_words(KINDS)}, got {_kind(value)}")
    for key in value:
        if key not in READY_KEYS:
            known = did_you_mean(key, READY_KEYS) if isinstance(key, str) else ""
            hint = known or f" (expected {_words(READY_KEYS)})"
            raise vol.Invalid(f"unknown key{hint}", path=[str(key)])
    kinds = [key for key in value if key in KINDS]
    if len(kinds) != 1:
        raise vol.Invalid(_EXACTLY_ONE)
    kind = kinds[0]
    found: list[vol.Invalid] = []  # every bad field, not only the first (check lists them)

    def field(key: str, check: Callable[[Any], Any], default: Any) -> Any:
        try:
            return _field(value, key, check, default)
        except vol.Invalid as exc:
            found.append(exc)
            return None

    timeout = field("timeout", lambda v: _seconds(v, MAX_SECONDS), DEFAULT_TIMEOUT)
    interval = field("interval", lambda v: _seconds(v, MAX_INTERVAL), DEFAULT_INTERVAL)
    target = field(kind, _PROBE_TARGETS[kind], None)
    if found:
        order = [kind, "timeout", "interval"]  # the probe first, as written in the README
        found.sort(key=lambda e: order.index(str(e.path[0])) if e.path else 0)
        raise found[0] if len(found) == 1 else vol.MultipleInvalid(found)
    if kind == "delay" and target >= timeout:
        raise vol.Invalid(
            f"delay {target:g} s is not shorter than the timeout ({timeout:g} s): raise timeout",
            path=["delay"],
        )
    return ProbeSpec(kind, target, timeout=timeout, interval=interval)


def _field(mapping: Mapping[Any, Any], key: str, check: Callable[[Any], Any], default: Any) -> Any:
    if key not in mapping:
        return default
    try:
        return check(mapping[key])
    except vol.Invalid as exc:
        raise vol.Invalid(exc.msg, path=[key, *exc.path]) from None


def _seconds(value: Any, maximum: float) -> float:
    """More than 0 and at most ``maximum`` seconds, as a number or its text."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a number of seconds, got a boolean")
    numeric = isinstance(value, (int, float))
    if not (numeric or (isinstance(value, str) and DECIMAL_RE.fullmatch(value))):
        raise vol.Invalid(f"expected a number of seconds, got {_show(value)}")
    number = float(value)
    if not (math.isfinite(number) and 0 < number <= maximum):
        raise vol.Invalid(f"expected more than 0 and at most {maximum:g} seconds, got {value}")
    return number


def tcp_target(value: Any) -> tuple[str, int]:
    """``PORT`` (on 127.0.0.1) or ``HOST:PORT``; an IPv6 host in brackets, returned without."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a port or 'HOST:PORT', got a boolean")
    if isinstance(value, int):
        return DEFAULT_HOST, _port(str(value))
    text = _require_str(value, "a port or 'HOST:PORT'")
    if PORT_NUMBER_RE.fullmatch(text) or text.isdigit():
        return DEFAULT_HOST, _port(text)
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or text[end + 1 : end + 2] != ":":
            raise vol.Invalid(f"invalid tcp target {_show(text)}: expected '[IPv6]:PORT'")
        return _host(text[: end + 1]), _port(text[end + 2 :])
    host, colon, port = text.rpartition(":")
    if not colon:
        raise vol.Invalid(f"invalid tcp target {_show(text)}: expected PORT or HOST:PORT")
    if ":" in host:
        raise vol.Invalid(
            f"invalid tcp target {_show(text)}: write an IPv6 address in brackets ('[::1]:{port}')"
        )
    return _host(host), _port(port)


def _port(text: str) -> int:
    if not PORT_NUMBER_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise vol.Invalid(f"invalid port {_show(text)}: ports are numbers 1-65535")
    return int(text)


def _host(text: str) -> str:
    """A host to connect to; an IPv6 address loses its brackets (sockets want it bare)."""
    if not text:
        raise vol.Invalid(f"host is empty: {_HOST_RULE}")
    if text.startswith("[") and text.endswith("]"):
        import ipaddress

        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise vol.Invalid(f"invalid IPv6 address {_show(text)}") from None
        return text[1:-1]
    if all(c.isdigit() or c == "." for c in text):
        if not IPV4_RE.fullmatch(text):
            raise vol.Invalid(f"invalid IPv4 address {_show(text)}")
        return text
    if len(text) > MAX_HOST or not HOSTNAME_RE.fullmatch(text):
        raise vol.Invalid(f"invalid host {_show(text)}: {_HOST_RULE}")
    return text


_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_STANDS_FOR = "\x00"  # where a variable was, while a URL is checked (NUL is refused in it)


def http_target(value: Any) -> str:
    """An http:// or https:// URL with a host; no credentials (they would show in messages,
    and the probe would not send them anyway). ``$PORT``-style variables are expanded at start,
    like the command's words: their syntax is checked here, and the URL with each variable
    standing for a plain value."""
    text = _bounded_text(value, "a URL", "URL", MAX_URL)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"URL contains a {odd}")
    if any(c.isspace() for c in text):
        raise vol.Invalid(f"URL {_show(text)} contains whitespace (write %20)")
    url = text
    if "$" in text:
        from . import interpolate

        problem = interpolate.syntax_error(text)
        if problem:
            raise vol.Invalid(f"URL {_show(text)}: {problem}")
        url = _VARIABLE.sub(_STANDS_FOR, text.replace("$$", ""))
    from urllib.parse import urlsplit, urlunsplit

    def invalid(reason: str) -> vol.Invalid:
        return vol.Invalid(f"invalid URL {_show(text)}: {reason}")

    try:
        parts = urlsplit(url)
        if _STANDS_FOR in url:
            # a variable stands for a name in the host (``http://$HOST:8000/``), for a number
            # anywhere else (``:$PORT``): "1" as a host would be read as a bad IPv4 address
            named, colon, number = parts.netloc.rpartition(":") if _has_port(
                parts.netloc) else (parts.netloc, "", "")
            netloc = named.replace(_STANDS_FOR, "a") + colon + number
            url = urlunsplit(parts._replace(netloc=netloc)).replace(_STANDS_FOR, "1")
            parts = urlsplit(url)
    except ValueError:  # unbalanced brackets, a bad [IPv6] host
        raise invalid(f"invalid host: {_HOST_RULE}") from None
    if parts.scheme.lower() not in ("http", "https") or not url[len(parts.scheme):].startswith(
        "://"
    ):
        raise invalid("only http:// and https:// are supported")
    if "@" in parts.netloc:
        raise invalid("no user:password@ in a readiness URL")
    hostname = parts.netloc.rpartition(":")[0] if _has_port(parts.netloc) else parts.netloc
    if not hostname:
        raise invalid("no host")
    try:
        _host(hostname)
        port = parts.port
    except vol.Invalid as exc:
        raise invalid(exc.msg) from None
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise invalid("ports are numbers 1-65535")
    return text


def _has_port(netloc: str) -> bool:
    """``host:80`` and ``[::1]:80`` have one; ``[::1]`` has not."""
    return ":" in netloc.rpartition("]")[2]


def log_target(value: Any) -> str:
    text = _bounded_text(value, "a regular expression", "log pattern", MAX_PATTERN)
    try:
        re.compile(text)
    except re.error as exc:
        raise vol.Invalid(f"invalid regular expression {_show(text)}: {exc.msg}") from None
    return text


_PROBE_TARGETS: dict[str, Callable[[Any], Any]] = {
    "tcp": tcp_target,
    "http": http_target,
    "log": log_target,
    "exec": command,
    "delay": lambda v: _seconds(v, MAX_SECONDS),
}


# --------------------------------------------------------------------------- depends_on, groups


def depends_on(value: Any) -> tuple[Edge, ...]:
    """A list of names (each must be ready) or a mapping ``name: started|ready|completed``."""
    items: list[tuple[Any, Any, str | int]]  # name, condition, where it is in the value
    if isinstance(value, Mapping):
        items = [(key, cond, str(key)) for key, cond in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(name, "ready", index) for index, name in enumerate(value)]
    else:
        raise vol.Invalid(
            "expected a list of session names or a mapping of name: condition, got "
            f"{_kind(value)}"
        )
    if len(items) > MAX_DEPENDENCIES:
        raise vol.Invalid(f"more than {MAX_DEPENDENCIES} dependencies")
    edges: list[Edge] = []
    seen: set[str] = set()
    errors: list[vol.Invalid] = []
    for name, cond, where in items:
        try:
            clean = session_name(name)
            if clean in seen:
                raise vol.Invalid(f"duplicate dependency {_show(clean)}")
            seen.add(clean)
            edges.append(Edge(clean, condition(cond)))
        except vol.Invalid as exc:
            errors.append(vol.Invalid(exc.msg, path=[where]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return tuple(edges)


def condition(value: Any) -> str:
    if not isinstance(value, str):
        shown = "null" if value is None else _kind(value)
        raise vol.Invalid(f"expected {_words(CONDITIONS)}, got {shown}")
    if value not in CONDITIONS:
        hint = did_you_mean(value, CONDITIONS) or f" (expected {_words(CONDITIONS)})"
        raise vol.Invalid(f"unknown condition {_show(value)}{hint}")
    return value


def group_name(value: Any) -> str:
    """Same grammar as session names: groups are typed where session names are (``up NAME``)."""
    text = _bounded_text(value, "a group name", "group name", MAX_NAME)
    if not NAME_RE.fullmatch(text):
        raise vol.Invalid(
            f"invalid group name {_show(text)}: start with a letter, then letters, digits or '-'"
        )
    return text


def groups(value: Any) -> tuple[str, ...]:
    """A list of group names; one name alone is a one-element list."""
    return tuple(_group_list(value))


# --------------------------------------------------------------------------- restart


def restart(value: Any) -> str:
    """``no``, ``on-failure`` or ``always``. YAML 1.1 reads an unquoted ``no`` as false, so
    false means ``no``; true says nothing about which policy, so it is refused."""
    if value is False:
        return "no"
    if value is True:
        raise vol.Invalid("true is not a restart policy: write on-failure or always")
    if not isinstance(value, str):
        raise vol.Invalid(f"expected {_words(RESTART_POLICIES)}, got {_kind(value)}")
    if value not in RESTART_POLICIES:
        hint = did_you_mean(value, RESTART_POLICIES) or f" (expected {_words(RESTART_POLICIES)})"
        raise vol.Invalid(f"unknown restart policy {_show(value)}{hint}")
    return value


def max_restarts(value: Any) -> int:
    """0 to 1000; 0 means no limit (allowed with ``restart: always`` only, see restart_rule)."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a whole number, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value, re.ASCII):
        number = int(value)
    else:
        raise vol.Invalid(f"expected a whole number, got {_show(value)}")
    if not 0 <= number <= MAX_RESTARTS:
        raise vol.Invalid(f"max_restarts must be between 0 and {MAX_RESTARTS}, got {number}")
    return number


def restart_rule(restart: str, max_restarts: int | None) -> str | None:
    """The reason to refuse ``max_restarts`` given the entry's ``restart``, or None.

    No limit on ``on-failure`` would restart a crashing program forever, each time as fast as
    it crashes: only ``always`` (a server meant to run whatever happens) may ask for that.
    """
    if max_restarts == 0 and restart != "always":
        return "0 (no limit) is only allowed with restart: always"
    return None


# --------------------------------------------------------------------------- env_file


def env_file(value: Any) -> tuple[str, ...]:
    """One path or a list of paths, kept as written (relative ones are resolved by the loader)."""
    return tuple(_env_file_list(value))


def _env_path(value: Any) -> str:
    text = _bounded_text(value, "a path", "env_file", MAX_PATH)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"env_file contains a {odd}")
    return text


_env_file_list = _bounded_list(_env_path, MAX_ENV_FILES, "env files", alone=(str,))
_group_list = _bounded_list(group_name, MAX_GROUPS, "group names", alone=(str,),
                            duplicate="group")


# key in a session entry -> its validator (restart_rule is checked once both are known)
STACK_KEYS: dict[str, Callable[[Any], Any]] = {
    "ready": ready,
    "depends_on": depends_on,
    "groups": groups,
    "restart": restart,
    "max_restarts": max_restarts,
    "env_file": env_file,
}


# --------------------------------------------------------------------------- host mounts

# Host folders a container must not see by default: the system itself, the devices and kernel
# interfaces, the runtime sockets (full control of the engine), the user's ssh keys.
SYSTEM_DIRS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
               "/dev", "/proc", "/sys", "/var/run", "/run")
RUNTIME_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock",
                   "/run/containerd/containerd.sock")
RISKY_VOLUME_OPTIONS = {
    "dev": "lets the container use device files",
    "suid": "lets set-user-id programs gain privileges",
    "U": "changes the owner of the host folder",
}
OPT_IN = "list the host path under allow_host_mounts: to allow it"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _protected() -> list[tuple[str, str]]:
    """(real path, why) of what no mount may reach without an opt-in."""
    found = [("/", "it is the whole host filesystem")]
    for folder in SYSTEM_DIRS:
        found.append((folder, f"{folder} is a system folder"))
        real = os.path.realpath(folder)
        if real != folder:
            found.append((real, f"{folder} is a system folder"))
    sockets = [*RUNTIME_SOCKETS]
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        sockets += [os.path.join(runtime_dir, "podman", "podman.sock"),
                    os.path.join(runtime_dir, "docker.sock")]
    for sock in sockets:
        found.append((os.path.realpath(sock), "it is a container engine's socket (full "
                      "control of the engine)"))
    ssh = os.path.realpath(os.path.expanduser("~/.ssh"))
    found.append((ssh, "it holds your ssh keys"))
    return found


def host_path(host: str, base_dir: Path | None) -> str | None:
    """The absolute host path of a volume's host side; None for a named volume."""
    if not (host.startswith(("/", ".", "~")) or "/" in host):
        return None
    expanded = os.path.expanduser(host)
    if not os.path.isabs(expanded) and base_dir is not None:
        expanded = os.path.join(base_dir, expanded)
    return os.path.normpath(expanded)


def mount_root(text: str, base_dir: Path | None) -> str:
    """The folder a volume's host path must stay inside once symlinks are resolved: the
    config's folder when the path was written relative to it, ``''`` otherwise. Kept beside
    the (absolute) stored volume, so that the checks repeated later still apply the rule."""
    host = text.partition(":")[0]
    if base_dir is None or host_path(host, base_dir) is None:
        return ""
    return "" if os.path.isabs(os.path.expanduser(host)) else str(base_dir)


def mount_problem(text: str, *, base_dir: Path | None, allowed: Sequence[str] = (),
                  inside: str | None = None) -> str | None:
    """Why the volume ``host:container[:options]`` must not be mounted, or None.

    Paths are compared after symlinks are resolved (``./etclink -> /etc`` is ``/etc``), so the
    check is repeated at start, when the link may have changed since the config was read. A
    relative host path must stay inside the config's folder (``base_dir``; for a volume stored
    absolute, ``inside`` is that folder, see :func:`mount_root`). A host path under one of
    ``allowed`` (the session's ``allow_host_mounts``) is the user's explicit choice.
    """
    host, _, rest = text.partition(":")
    options = rest.partition(":")[2].split(",") if ":" in rest else []
    path = host_path(host, base_dir)
    real = os.path.realpath(path) if path is not None else None
    real_allowed = [os.path.realpath(os.path.expanduser(a)) for a in allowed]
    if real is not None and any(_inside(real, a) for a in real_allowed):
        return None
    for option in options:
        # on a named volume U only chowns the engine's own folder; dev and suid stay risky
        if option in RISKY_VOLUME_OPTIONS and (real is not None or option != "U"):
            where = OPT_IN if real is not None else "not allowed on a named volume"
            return f"option {option!r} {RISKY_VOLUME_OPTIONS[option]} ({where})"
    if path is None or real is None:
        return None
    relative = not os.path.isabs(os.path.expanduser(host))
    root = inside or (str(base_dir) if relative and base_dir is not None else None)
    if root:
        base = os.path.realpath(root)
        if not _inside(real, base):
            return f"{host!r} resolves to {real}, outside the config's folder ({OPT_IN})"
    shown = host if real == path else f"{host!r} (resolves to {real})"
    for protected, why in _protected():
        if _inside(real, protected) and (protected != "/" or real == "/"):
            return f"refused host path {shown}: {why} ({OPT_IN})"
        if protected != "/" and real != "/" and _inside(protected, real) and (
                os.path.lexists(protected)):
            return f"refused host path {shown}: it contains {protected}, and {why} ({OPT_IN})"
    return None


def _host_path(value: Any) -> str:
    text = _bounded_text(value, "a host path", "host path", MAX_PATH)
    odd = _odd_character(text, allow_tab=False)
    if odd or ".." in text.split("/") or not text.startswith(("/", "~/")):
        reason = f"contains a {odd}" if odd else "must be absolute (or ~/...) without '..'"
        raise vol.Invalid(f"host path {_show(text)} {reason}")
    return text


_host_path_list = _bounded_list(_host_path, MAX_VOLUMES, "host paths", alone=(str,))


def host_mounts(value: Any) -> tuple[str, ...]:
    """``allow_host_mounts``: absolute host paths (or ``~/...``) the session may mount anyway."""
    return tuple(_host_path_list(value))


class Port(NamedTuple):
    """One validated ``ports:`` entry: ``[ip:][host:]container[/proto]``."""

    text: str
    container: int
    protocol: str  # tcp | udp
    host: int | None = None  # None: not published on a fixed host port
    host_ip: str | None = None  # None: every interface (an IPv6 address without brackets)


def parse_port(text: str) -> Port:
    """A ``ports:`` entry that :func:`port` accepted, taken apart."""
    spec, _, proto = text.partition("/")
    ip: str | None = None
    if spec.startswith("["):
        end = spec.index("]")
        ip, spec = spec[1:end], spec[end + 2:]
    parts = spec.split(":")
    if len(parts) == 3:
        ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    else:
        host, container = "", parts[0]
    return Port(text=text, container=int(container), protocol=proto or "tcp",
                host=int(host) if host else None, host_ip=ip or None)


def port_on_all_interfaces(text: str) -> bool:
    """``8080:80``, ``80`` (a random host port) and ``0.0.0.0:``/``[::]:`` publish on every
    interface; ``127.0.0.1:8080:80`` does not."""
    return parse_port(text).host_ip in (None, "0.0.0.0", "::")


def port_on_this_machine(text: str) -> str:
    """The same port published on 127.0.0.1 only (what ``check`` suggests)."""
    parsed = parse_port(text)
    host = "" if parsed.host is None else parsed.host  # empty: any free host port
    suffix = text[text.index("/"):] if "/" in text else ""
    return f"127.0.0.1:{host}:{parsed.container}{suffix}"


# --------------------------------------------------------------------------- schemas

# The keys every session has, whatever its backend (the backend's own keys are added to these).
COMMON_KEYS: dict[str, Callable[[Any], Any]] = {
    "backend": backend,
    "command": command,
    "working_dir": working_dir,
    "env": env,
    "description": description,
    **STACK_KEYS,
}


def ops_keys() -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """``ops:`` keys -> (validator, default), the backends' own keys included."""
    from . import backends

    keys: dict[str, tuple[Callable[[Any], Any], Any]] = {
        "default_backend": (backend, "tmux"),
        "env_file": (env_file, ()),
        "sessions": (_sessions_node, None),
    }
    for kind in backends.every():
        keys.update(kind.ops_keys())
    return keys


def _sessions_node(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise vol.Invalid("expected a mapping of name: session")
    return value


def unknown_key(key: str, backend_name: str | None, where: str = "session") -> str:
    """Why ``key`` is refused, with the closest valid key or the backend it belongs to."""
    from . import backends
    from .suggest import did_you_mean

    if where == "ops":
        return f"unknown key{did_you_mean(str(key), ops_keys())}"
    for kind in backends.every():
        if kind.name != backend_name and key in kind.session_keys():
            return (f"unknown key for backend {backend_name!r} (it is a key of backend "
                    f"{kind.name!r})")
    valid = [*COMMON_KEYS]
    if backend_name is not None:
        valid += list(backends.get(backend_name).session_keys())
    return f"unknown key{did_you_mean(str(key), valid)}"


# field name (as in the config file / CLI) -> validator, for values checked one at a time
VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "name": session_name,
    "backend": backend,
    "command": command,
    "working_dir": working_dir,
    "env": env,
    "image": image,
    "volume": volume,
    "volumes": volumes,
    "port": port,
    "ports": ports,
    "runtime": runtime,
    "socket_name": socket_name,
    "tmux_binary": tmux_binary,
    "init": boolean,
    "lines": lines,
    "timeout": timeout,
    "description": description,
    "format": export_format,
}


def error_field(path: Iterable[Any]) -> str:
    """``['ports', 1]`` -> ``ports[1]``; ``['env', 'X']`` -> ``env.X``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).isprintable():  # a key with a newline must not split the message
            text += f".{_show(str(part))}" if text else _show(str(part))
        else:
            text += f".{part}" if text else str(part)
    return text


def invalid_reason(error: vol.Invalid, backend_name: str | None = None,
                   where: str = "session") -> str:
    """voluptuous' message for one error, in our words for the generic cases."""
    message = error.msg
    if message == "extra keys not allowed":
        key = error.path[-1] if error.path else "?"
        return unknown_key(str(key), backend_name, where)
    if message.startswith("expected str"):
        return "expected a string"
    return message


def check(field: str, value: Any, *, session: str | None = None) -> Any:
    """Validate one value with the shared rules; ValidationError with the shared wording."""
    validator = VALIDATORS[field]
    return check_with(field, validator, value, session=session)


def check_with(field: str, validator: Callable[[Any], Any], value: Any, *,
               session: str | None = None) -> Any:
    try:
        return validator(value)
    except vol.Invalid as exc:
        first = exc.errors[0] if isinstance(exc, vol.MultipleInvalid) else exc
        label = error_field([field, *first.path])
        raise ValidationError(label, invalid_reason(first), session=session) from None


def resolve_dir(path: str, base_dir: Path | None) -> str:
    """Relative paths are relative to the config file's folder, not to wherever inv runs."""
    expanded = Path(path).expanduser()
    if not expanded.is_absolute() and base_dir is not None:
        expanded = base_dir / expanded
    return os.path.normpath(expanded)


def resolve_volume(text: str, base_dir: Path | None) -> str:
    """A relative host path (``./data:/data``) is made absolute against the config folder."""
    host, _, rest = text.partition(":")
    path = host_path(host, base_dir)
    return f"{path}:{rest}" if path is not None else text
