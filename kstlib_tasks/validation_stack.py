"""The rules of the stack keys (``ready``, ``depends_on``, ``groups``, ``restart``,
``max_restarts``, ``env_file``), in the style and with the helpers of :mod:`validation`.

Kept apart from validation.py so that module stays the one for values a CLI option can also
carry; the rules are the same kind: small named validators raising :class:`voluptuous.Invalid`
with the exact reason, the offending sub-key in ``path`` (so the loader prints ``ready.tcp``),
and the clean value returned. Numbers are accepted as text because the YAML loader keeps every
number as the text written (``"8080"``, ``"0.5"``).

Wiring: add ``vol.Optional(key): validator`` for each item of :data:`SESSION_KEYS` to the session
schema, and check :func:`restart_rule` once both values are known (it is a cross-field rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import voluptuous as vol

from .graph import CONDITIONS, Edge
from .probes import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, KINDS, ProbeSpec
from .suggest import did_you_mean
from .validation import (
    IPV4_RE,
    MAX_NAME,
    MAX_PATH,
    NAME_RE,
    PORT_NUMBER_RE,
    _bounded_text,
    _kind,
    _odd_character,
    _require_str,
    _show,
    command,
    session_name,
)

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
    timeout = _field(value, "timeout", lambda v: _seconds(v, MAX_SECONDS), DEFAULT_TIMEOUT)
    interval = _field(value, "interval", lambda v: _seconds(v, MAX_INTERVAL), DEFAULT_INTERVAL)
    target = _field(value, kind, _PROBE_TARGETS[kind], None)
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


def http_target(value: Any) -> str:
    """An http:// or https:// URL with a host; no credentials (they would show in messages,
    and the probe would not send them anyway)."""
    text = _bounded_text(value, "a URL", "URL", MAX_URL)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"URL contains a {odd}")
    if any(c.isspace() for c in text):
        raise vol.Invalid(f"URL {_show(text)} contains whitespace (write %20)")
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
    except ValueError:  # unbalanced brackets, a bad [IPv6] host
        raise vol.Invalid(f"invalid URL {_show(text)}: invalid host: {_HOST_RULE}") from None
    if parts.scheme.lower() not in ("http", "https") or not text[len(parts.scheme) :].startswith(
        "://"
    ):
        raise vol.Invalid(f"invalid URL {_show(text)}: only http:// and https:// are supported")
    if "@" in parts.netloc:
        raise vol.Invalid(f"invalid URL {_show(text)}: no user:password@ in a readiness URL")
    hostname = parts.netloc.rpartition(":")[0] if _has_port(parts.netloc) else parts.netloc
    if not hostname:
        raise vol.Invalid(f"invalid URL {_show(text)}: no host")
    try:
        _host(hostname)
        port = parts.port
    except vol.Invalid as exc:
        raise vol.Invalid(f"invalid URL {_show(text)}: {exc.msg}") from None
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise vol.Invalid(f"invalid URL {_show(text)}: ports are numbers 1-65535")
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
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise vol.Invalid(f"expected a list of group names, got {_kind(value)}")
    if len(value) > MAX_GROUPS:
        raise vol.Invalid(f"more than {MAX_GROUPS} groups")
    clean: list[str] = []
    errors: list[vol.Invalid] = []
    for index, entry in enumerate(value):
        try:
            name = group_name(entry)
            if name in clean:
                raise vol.Invalid(f"duplicate group {_show(name)}")
            clean.append(name)
        except vol.Invalid as exc:
            errors.append(vol.Invalid(exc.msg, path=[index]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return tuple(clean)


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
    if isinstance(value, str):
        return (_env_path(value),)
    if not isinstance(value, (list, tuple)):
        raise vol.Invalid(f"expected a path or a list of paths, got {_kind(value)}")
    if len(value) > MAX_ENV_FILES:
        raise vol.Invalid(f"more than {MAX_ENV_FILES} env files")
    clean: list[str] = []
    errors: list[vol.Invalid] = []
    for index, entry in enumerate(value):
        try:
            clean.append(_env_path(entry))
        except vol.Invalid as exc:
            errors.append(vol.Invalid(exc.msg, path=[index]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return tuple(clean)


def _env_path(value: Any) -> str:
    text = _bounded_text(value, "a path", "env_file", MAX_PATH)
    odd = _odd_character(text, allow_tab=False)
    if odd:
        raise vol.Invalid(f"env_file contains a {odd}")
    return text


# key in a session entry -> its validator (restart_rule is checked once both are known)
SESSION_KEYS: dict[str, Callable[[Any], Any]] = {
    "ready": ready,
    "depends_on": depends_on,
    "groups": groups,
    "restart": restart,
    "max_restarts": max_restarts,
    "env_file": env_file,
}
