"""Parse and validate the text of ``kstlib.conf.yml`` (the slow part of loading, done once).

The file is composed (not loaded) with PyYAML's safe parser so every value keeps its line: a bad
entry is reported as ``kstlib.conf.yml:12: session 'astro-prod': image: ...`` and skipped, while
the valid entries of the same file keep working. YAML 1.1 surprises (duplicate keys silently
replacing earlier ones, ``22:22`` read as the base-60 integer 1342, ``yes``/``no``/``on``/``off``
read as booleans) are refused with "quote it" instead of being passed on as something the user
did not write.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from . import validation
from .config import OpsConfig
from .errors import ConfigError, ValidationError
from .models import SessionSpec

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
# No valid entry comes near these; they stop deep nesting and alias bombs ("billion laughs").
_MAX_DEPTH = 20
_MAX_NODES = 10_000


# --------------------------------------------------------------------------- YAML -> Python


class _YamlValueError(Exception):
    def __init__(self, node: yaml.Node, message: str):
        super().__init__(message)
        self.node = node
        self.message = message


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag == _TAG + "str":
        return text
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if text.lower() in _YAML11_BOOLEANS:
            raise _YamlValueError(
                node, f"'{text}' is read as a boolean by YAML: quote it (or write true/false)"
            )
        return text.lower() == "true"
    if tag in (_TAG + "int", _TAG + "float"):
        if ":" in text:
            raise _YamlValueError(
                node, f"'{text}' is read as a base-60 number by YAML: quote it ('{text}')"
            )
        if tag == _TAG + "int" and len(text) > 1 and text.lstrip("+-").startswith("0") and (
            text.lstrip("+-")[1:2].isdigit()
        ):
            raise _YamlValueError(node, f"'{text}' is read as an octal number by YAML: quote it")
        # Numbers are kept as the text the user wrote: env values and ports want exactly that.
        return text
    if tag == _TAG + "timestamp":
        return text
    raise _YamlValueError(node, f"unsupported YAML tag {tag}")


def _to_python(
    node: yaml.Node, path: tuple, lines: dict[tuple, int], errors: list[tuple[tuple, int, str]]
) -> Any:
    """Build plain Python values, recording the line of every value under its path.

    A YAML-level problem (an unquoted ``yes``, a duplicate key) is collected in ``errors`` and
    the value becomes None, so the schema can still report the entry's other problems.
    """
    lines[path] = _line(node)
    try:
        if len(path) > _MAX_DEPTH or len(lines) > _MAX_NODES:
            raise _YamlValueError(node, "too deeply nested or too many values")
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if node.tag not in (_TAG + "seq", _TAG + "map"):
            raise _YamlValueError(node, f"unsupported YAML tag {node.tag}")
        if isinstance(node, yaml.SequenceNode):
            return [
                _to_python(item, (*path, i), lines, errors) for i, item in enumerate(node.value)
            ]
        if isinstance(node, yaml.MappingNode):
            return _mapping(node, path, lines, errors)
        raise _YamlValueError(node, "unsupported YAML node")
    except _YamlValueError as exc:
        errors.append((path, _line(exc.node), exc.message))
        return None


def _mapping(
    node: yaml.MappingNode, path: tuple, lines: dict[tuple, int], errors: list
) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _TAG + "merge":
            raise _YamlValueError(key_node, "YAML merge keys ('<<') are not supported")
        if not isinstance(key_node, yaml.ScalarNode):
            raise _YamlValueError(key_node, "mapping keys must be plain names")
        key = _scalar(key_node)
        if key in first_line:
            errors.append(
                ((*path, key), _line(key_node), f"duplicate key (first at line {first_line[key]})")
            )
            continue
        first_line[key] = _line(key_node)
        result[key] = _to_python(value_node, (*path, key), lines, errors)
    return result


def _compose(text: str, shown: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: YAML error: {exc}") from None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    """The value node of ``key`` (its duplicates are refused before anyone asks)."""
    return next((v for k, v in node.value if getattr(k, "value", None) == key), None)


def _mapping_items(node: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


# --------------------------------------------------------------------------- loading


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def parse_config(text: str, path: Path) -> OpsConfig:
    """Validate the text of a config file found at ``path`` (its folder anchors relative paths)."""
    shown = _display(path)
    root = _compose(text, shown)
    base_dir = path.parent.resolve()
    if root is None:
        return OpsConfig(path=path, base_dir=base_dir)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{shown}:{_line(root)}: expected a mapping with an 'ops:' key")
    _refuse_duplicate_keys(root, shown, "")
    ops_node = _child(root, "ops")
    if ops_node is None or _is_null(ops_node):
        return OpsConfig(path=path, base_dir=base_dir)
    if not isinstance(ops_node, yaml.MappingNode):
        raise ConfigError(f"{shown}:{_line(ops_node)}: ops: expected a mapping")

    _refuse_duplicate_keys(ops_node, shown, "ops.")
    defaults = _ops_defaults(ops_node, shown)
    sessions_node = _child(ops_node, "sessions")
    sessions: dict[str, SessionSpec] = {}
    invalid: dict[str, str] = {}
    warnings: list[str] = []
    seen: dict[str, int] = {}
    entries = _mapping_items(sessions_node)
    for index, (key_node, value_node) in enumerate(entries):
        name = str(getattr(key_node, "value", "?"))
        shown_name = _printable(name)
        line = _line(key_node)
        if index >= validation.MAX_SESSIONS:
            dropped = ", ".join(
                f"'{_printable(str(getattr(k, 'value', '?')))}'" for k, _ in entries[index:]
            )
            warnings.append(
                f"{shown}:{line}: more than {validation.MAX_SESSIONS} sessions: "
                f"dropped {dropped}"
            )
            break
        if name in seen:
            reason = f"defined twice (also at line {seen[name]}): rename one"
            message = f"{shown}:{line}: session '{shown_name}': {reason}"
            sessions.pop(name, None)
            invalid[name] = message
            warnings.append(message)
            continue
        seen[name] = line
        try:
            spec = _session(key_node, value_node, defaults, base_dir)
            sessions[name] = spec.with_changes(source=f"{shown}:{line}")
        except _EntryError as exc:
            message = f"{shown}:{exc.line}: session '{shown_name}': {exc.field}: {exc.reason}"
            invalid[name] = message
            warnings.append(message)
    return OpsConfig(
        path=path,
        base_dir=base_dir,
        sessions=sessions,
        invalid=invalid,
        warnings=tuple(warnings),
        **defaults,
    )


def _printable(text: str) -> str:
    """A name as shown in a warning: control characters escaped, so it stays one line."""
    return text if text.isprintable() else repr(text)[1:-1]


def _refuse_duplicate_keys(node: yaml.MappingNode, shown: str, prefix: str) -> None:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = getattr(key_node, "value", None)
        if not isinstance(key, str):
            continue
        if key in first:
            raise ConfigError(
                f"{shown}:{_line(key_node)}: {prefix}{_printable(key)}: duplicate key "
                f"(first at line {first[key]})"
            )
        first[key] = _line(key_node)


def _ops_defaults(ops_node: yaml.MappingNode, shown: str) -> dict[str, Any]:
    lines: dict[tuple, int] = {}
    raw: dict[str, Any] = {}
    for key_node, value_node in ops_node.value:
        key = getattr(key_node, "value", None)
        if key == "sessions":
            if not isinstance(value_node, yaml.MappingNode) and not _is_null(value_node):
                raise ConfigError(
                    f"{shown}:{_line(value_node)}: ops.sessions: expected a mapping of "
                    "name: session"
                )
            continue
        errors: list[tuple[tuple, int, str]] = []
        raw[key] = _to_python(value_node, (key,), lines, errors)
        if errors:
            err_path, err_line, message = errors[0]
            field = validation.error_field(err_path)
            raise ConfigError(f"{shown}:{err_line}: ops.{field}: {message}")
    try:
        clean = validation.OPS_SCHEMA(raw)
    except vol.MultipleInvalid as exc:
        first = exc.errors[0]
        key = first.path[0] if first.path else "ops"
        line = lines.get((key,), _line(ops_node))
        raise ConfigError(
            f"{shown}:{line}: ops.{validation.error_field(first.path)}: "
            f"{validation.invalid_reason(first)}"
        ) from None
    clean.pop("sessions", None)
    return clean


class _EntryError(Exception):
    def __init__(self, line: int, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.line, self.field, self.reason = line, field, reason


def _session(
    key_node: yaml.Node, value_node: yaml.Node, defaults: dict[str, Any], base_dir: Path
) -> SessionSpec:
    """One entry -> SessionSpec, or _EntryError naming the line, field and reason."""
    line = _line(key_node)
    try:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        name = validation.session_name(key)
    except vol.Invalid as exc:
        raise _EntryError(line, "name", exc.msg) from None
    lines: dict[tuple, int] = {}
    yaml_errors: list[tuple[tuple, int, str]] = []
    raw = _to_python(value_node, (), lines, yaml_errors)
    if raw is None and not yaml_errors:
        raw = {}
    if not isinstance(raw, dict):
        if yaml_errors:
            err_path, err_line, message = yaml_errors[0]
            raise _EntryError(err_line, validation.error_field(err_path) or "entry", message)
        raise _EntryError(_line(value_node), "entry", "expected a mapping of settings")
    problems = [(line_, validation.error_field(p) or "entry", m) for p, line_, m in yaml_errors]
    clean: dict[str, Any] = {}
    try:
        clean = validation.SESSION_SCHEMA(raw)
    except vol.MultipleInvalid as exc:
        for error in exc.errors:
            path = tuple(error.path)
            if any(path[: len(p)] == p for p, _, _ in yaml_errors):
                continue  # already explained by the YAML-level problem
            problems.append(
                (
                    _line_for(error.path, lines, line),
                    validation.error_field(error.path),
                    validation.invalid_reason(error),
                )
            )
    if problems:
        problems.sort(key=lambda item: item[0])
        first_line, field_name, reason = problems[0]
        if len(problems) > 1:
            reason += f" (also invalid: {', '.join(f for _, f, _ in problems[1:])})"
        raise _EntryError(first_line, field_name, reason)

    command = clean.get("command", ())
    backend = clean.get("backend", defaults["default_backend"])
    if "working_dir" in clean:
        workdir: str | None = validation.resolve_dir(clean["working_dir"], base_dir)
    else:
        # A tmux session runs in the project (the config's folder), wherever inv was called
        # from; a container keeps its image's WORKDIR.
        workdir = str(base_dir) if backend == "tmux" else None
    spec = SessionSpec(
        name=name,
        backend=backend,
        command=command,
        command_text=validation.command_as_written(raw.get("command"), command),
        working_dir=workdir,
        env=clean.get("env", {}),
        image=clean.get("image"),
        volumes=tuple(validation.resolve_volume(v, base_dir) for v in clean.get("volumes", ())),
        ports=tuple(clean.get("ports", ())),
        runtime=clean.get("runtime", defaults["container_runtime"]),
        init=clean.get("init", True),
        socket_name=clean.get("socket_name"),
        tmux_binary=defaults["tmux_binary"],
        description=clean.get("description"),
    )
    try:
        validation.require_complete(spec)
    except ValidationError as exc:
        raise _EntryError(line, exc.field, exc.reason) from None
    return spec


def _line_for(path: list, lines: dict[tuple, int], default: int) -> int:
    """The line of the deepest recorded node on ``path`` (voluptuous paths -> YAML lines)."""
    parts = tuple(path)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return default

