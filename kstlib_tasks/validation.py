"""The one place where every rule about a value lives (deep defense).

The config loader, the CLI options and the invoke task flags all validate through this module, so
a value refused in ``kstlib.conf.yml`` is refused the same way, with the same words, on the
command line. Each rule is a small named validator raising :class:`voluptuous.Invalid` with its
own precise message (voluptuous' generic "not a valid value" helps nobody); every pattern matches
the WHOLE value (``fullmatch``), so no trailing-newline loophole.

Validators return the clean value: commands come back as an argv tuple (split with shlex, never
handed to a shell unquoted), ports as text, env as a ``dict[str, str]``.
"""

from __future__ import annotations

import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import voluptuous as vol

from .errors import ValidationError
from .models import BACKENDS, RUNTIMES, SessionSpec

MAX_NAME = 64
MAX_COMMAND = 4096
MAX_IMAGE = 256
MAX_VOLUMES = 20
MAX_PORTS = 50
MAX_ENV = 100
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
    }
)
FORBIDDEN_ENV_PREFIXES = ("DYLD_",)

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
    text = repr(value)
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
    text = _require_str(value, "'tmux' or 'container'")
    if text not in BACKENDS:
        raise vol.Invalid(f"unknown backend {_show(text)} (expected 'tmux' or 'container')")
    return text


def runtime(value: Any) -> str | None:
    if value is None:
        return None
    text = _require_str(value, "'podman', 'docker' or null")
    if text not in RUNTIMES:
        raise vol.Invalid(
            f"unknown container runtime {_show(text)} (expected 'podman' or 'docker')"
        )
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
    text = _require_str(value, "a program name or path")
    odd = _odd_character(text, allow_tab=False)
    if not text or odd or any(c in text for c in " ;&|$`<>"):
        raise vol.Invalid(f"invalid tmux binary {_show(text)}")
    return text


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
    return clean


def _env_pair(text: Any) -> tuple[str, str]:
    text = _require_str(text, "'NAME=value'")
    key, eq, val = text.partition("=")
    if not eq:
        raise vol.Invalid(f"invalid environment entry {_show(text)}: expected NAME=value")
    return key, val


def _bounded_list(item: Callable[[Any], str], limit: int, what: str) -> Callable[[Any], list]:
    def validate(value: Any) -> list[str]:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise vol.Invalid(f"expected a list of {what}, got a {type(value).__name__}")
        if len(value) > limit:
            raise vol.Invalid(f"more than {limit} {what}")
        errors = []
        clean = []
        for index, entry in enumerate(value):
            try:
                clean.append(item(entry))
            except vol.Invalid as exc:
                errors.append(vol.Invalid(exc.msg, path=[index]))
        if errors:
            raise vol.MultipleInvalid(errors)
        return clean

    validate.__name__ = f"{what}_list"
    return validate


volumes = _bounded_list(volume, MAX_VOLUMES, "volumes")
ports = _bounded_list(port, MAX_PORTS, "ports")


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


# --------------------------------------------------------------------------- schemas

SESSION_SCHEMA = vol.Schema(
    {
        vol.Optional("backend"): backend,
        vol.Optional("command"): command,
        vol.Optional("working_dir"): working_dir,
        vol.Optional("env"): env,
        vol.Optional("image"): image,
        vol.Optional("volumes"): volumes,
        vol.Optional("ports"): ports,
        vol.Optional("runtime"): runtime,
        vol.Optional("socket_name"): socket_name,
        vol.Optional("init"): boolean,
        vol.Optional("description"): str,
    },
    extra=vol.PREVENT_EXTRA,
)

OPS_SCHEMA = vol.Schema(
    {
        vol.Optional("default_backend", default="tmux"): backend,
        vol.Optional("tmux_binary", default="tmux"): tmux_binary,
        vol.Optional("container_runtime", default=None): runtime,
        vol.Optional("sessions", default=None): vol.Any(
            None, dict, msg="expected a mapping of name: session"
        ),
    },
    extra=vol.PREVENT_EXTRA,
)

# field name (as in the config file / CLI) -> validator
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


def invalid_reason(error: vol.Invalid) -> str:
    """voluptuous' message for one error, in our words for the generic cases."""
    message = error.msg
    if message == "extra keys not allowed":
        return "unknown key (see the README's config reference)"
    if message.startswith("expected str"):
        return "expected a string"
    return message


def check(field: str, value: Any, *, session: str | None = None) -> Any:
    """Validate one value with the shared rules; ValidationError with the shared wording."""
    validator = VALIDATORS[field]
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
    if host.startswith(("./", "~")) or ("/" in host and not host.startswith("/")):
        host = resolve_dir(host, base_dir)
    return f"{host}:{rest}"


def apply_overrides(
    spec: SessionSpec,
    *,
    backend: str | None = None,
    command: str | Iterable[str] | None = None,
    image: str | None = None,
    env: Iterable[str] | Mapping[str, Any] | None = None,
    volumes: Iterable[str] | None = None,
    ports: Iterable[str | int] | None = None,
    working_dir: str | None = None,
    socket_name: str | None = None,
    runtime: str | None = None,
    base_dir: Path | None = None,
) -> SessionSpec:
    """Config values are defaults; options given for one start win (validated the same way).

    ``env`` entries merge over the configured ones (by name); ``volumes``/``ports``, when given,
    replace the configured lists. ``None`` or an empty list keeps the config's value.
    """
    name = spec.name
    changes: dict[str, Any] = {}
    if backend is not None:
        changes["backend"] = check("backend", backend, session=name)
    if command is not None:
        raw = command if isinstance(command, str) else list(command)
        changes["command"] = check("command", raw, session=name)
        changes["command_text"] = command_as_written(raw, changes["command"])
    if image is not None:
        changes["image"] = check("image", image, session=name)
    if env:
        added = check("env", env if isinstance(env, Mapping) else list(env), session=name)
        merged = {**spec.env, **added}
        if len(merged) > MAX_ENV:
            raise ValidationError("env", f"more than {MAX_ENV} environment variables", session=name)
        changes["env"] = merged
    if volumes:
        clean = check("volumes", list(volumes), session=name)
        changes["volumes"] = tuple(resolve_volume(v, base_dir) for v in clean)
    if ports:
        changes["ports"] = tuple(check("ports", list(ports), session=name))
    if working_dir is not None:
        changes["working_dir"] = resolve_dir(
            check("working_dir", working_dir, session=name), base_dir
        )
    if socket_name is not None:
        changes["socket_name"] = check("socket_name", socket_name, session=name)
    if runtime is not None:
        changes["runtime"] = check("runtime", runtime, session=name)
    updated = spec.with_changes(**changes) if changes else spec
    require_complete(updated)
    return updated


def require_complete(spec: SessionSpec) -> None:
    """Cross-field rule: a container session needs an image."""
    if spec.backend == "container" and not spec.image:
        raise ValidationError(
            "image",
            "required for backend 'container' (set image: in the config or pass --image)",
            session=spec.name,
        )
