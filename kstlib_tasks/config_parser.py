"""Parse and validate the text of ``kstlib.conf.yml`` (the slow part of loading, done once).

The file is composed (not loaded) with PyYAML's safe parser so every value keeps its line: a bad
entry is reported as ``kstlib.conf.yml:12: session 'astro-prod': image: ...`` and skipped, while
the valid entries of the same file keep working. YAML 1.1 surprises (duplicate keys silently
replacing earlier ones, ``22:22`` read as the base-60 integer 1342, ``yes``/``no``/``on``/``off``
read as booleans) are refused with "quote it" instead of being passed on as something the user
did not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from . import backends, validation
from .errors import ConfigError, ValidationError
from .models import SessionSpec
from .opsconfig import OpsConfig, Problem, display_path

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YamlPath = tuple[Any, ...]  # keys and indexes from the entry's root to a value
YamlError = tuple[YamlPath, int, str]  # (path, line, message) of a YAML-level problem
_TAG = "tag:yaml.org,2002:"
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
# Keys whose unquoted `no` YAML 1.1 reads as false, and where that false is what was meant.
_NO_MEANS_NO = {"restart"}
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
    node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int], errors: list[YamlError]
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
    node: yaml.MappingNode, path: YamlPath, lines: dict[YamlPath, int], errors: list[YamlError]
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
        if (key in _NO_MEANS_NO and isinstance(value_node, yaml.ScalarNode)
                and value_node.tag == _TAG + "bool" and value_node.value.lower() == "no"):
            lines[(*path, key)] = _line(value_node)
            result[key] = "no"  # `restart: no` unquoted means what it says
            continue
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


def parse_config(text: str, path: Path) -> OpsConfig:
    """Validate the text of a config file found at ``path`` (its folder anchors relative paths).

    ConfigError when the file cannot be used at all; invalid entries are in ``.invalid``.
    """
    shown = display_path(path)
    root = _compose(text, shown)
    base_dir = path.parent.resolve()
    if root is None:
        return OpsConfig(path=path, base_dir=base_dir)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{shown}:{_line(root)}: expected a mapping with an 'ops:' key")
    _refuse_duplicate_keys(root, shown, "")
    unknown_top = tuple(_top_level_typos(root))
    ops_node = _child(root, "ops")
    if ops_node is None or _is_null(ops_node):
        return OpsConfig(path=path, base_dir=base_dir, unknown_top=unknown_top,
                         warnings=unknown_top)
    if not isinstance(ops_node, yaml.MappingNode):
        raise ConfigError(f"{shown}:{_line(ops_node)}: ops: expected a mapping")

    _refuse_duplicate_keys(ops_node, shown, "ops.")
    settings, ops_env = _ops_settings(ops_node, shown, base_dir)
    default_backend = settings.pop("default_backend")
    env_files = list(ops_env.files)
    sessions_node = _child(ops_node, "sessions")
    sessions: dict[str, SessionSpec] = {}
    invalid: dict[str, Problem] = {}
    warnings: list[Problem] = list(unknown_top)
    every: list[Problem] = []
    lines_of: dict[str, dict[str, int]] = {}
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
            warnings.append((line, f"more than {validation.MAX_SESSIONS} sessions: "
                                   f"dropped {dropped}"))
            break
        if name in seen:
            problem = (line, f"session '{shown_name}': defined twice (also at line "
                             f"{seen[name]}): rename one")
            sessions.pop(name, None)
            invalid[name] = problem
            warnings.append(problem)
            every.append(problem)
            continue
        seen[name] = line
        context = _Entry(default_backend, settings, base_dir, ops_env)
        try:
            spec = _session(key_node, value_node, context)
        except _EntryError as exc:
            problem = (exc.line, f"session '{shown_name}': {exc.field}: {exc.reason}")
            invalid[name] = problem
            warnings.append(problem)
            every += [(n, f"session '{shown_name}': {f}: {r}") for n, f, r in exc.every]
            env_files += context.files
            continue
        env_files += context.files
        sessions[name] = spec.with_changes(source=str(line))
        lines_of[name] = {**context.lines, "entry": line}
    for name, (problem, *hidden) in _graph_problems(sessions, invalid, lines_of).items():
        sessions.pop(name)
        invalid[name] = problem
        warnings.append(problem)
        every += [problem, *hidden]
    return OpsConfig(
        path=path,
        base_dir=base_dir,
        default_backend=default_backend,
        settings=settings,
        sessions=sessions,
        invalid=invalid,
        warnings=tuple(sorted(warnings, key=lambda p: p[0])),
        unknown_top=unknown_top,
        problems=tuple(sorted(every, key=lambda p: p[0])),
        env_files=tuple(dict.fromkeys(env_files)),
    )


def _top_level_typos(root: yaml.MappingNode) -> list[Problem]:
    """Top-level keys that were surely meant for kstlib: a typo of ``ops:`` (``opps:``
    silently gives nothing), or a key of ``ops:`` written at the top level (``sessions:``
    indented one level too little gives no sessions).

    Other keys are other tools' settings and are left alone.
    """
    from .suggest import closest
    from .validation import ops_keys

    keys = [(k, getattr(k, "value", None)) for k, _ in root.value]
    has_ops = any(key == "ops" for _, key in keys)
    ours = ops_keys()
    found: list[Problem] = []
    for node, key in keys:
        if not isinstance(key, str) or key == "ops":
            continue
        if key in ours:
            found.append((_line(node), f"{_printable(key)}: a key of ops: written at the top "
                                       "level (indent it under ops:; kstlib reads only ops:)"))
        elif not has_ops and closest(key, ["ops"]):
            found.append((_line(node), f"{_printable(key)}: unknown top-level key (did you "
                                       "mean 'ops'? kstlib reads only ops:)"))
    return found


def _graph_problems(sessions: dict[str, SessionSpec], invalid: dict[str, Problem],
                    lines_of: dict[str, dict[str, int]]) -> dict[str, list[Problem]]:
    """Entries made unusable by their dependencies or groups (they are skipped, never run),
    each with its problems: the one that refuses it first, then what that one hides (every
    other bad edge in the order written, a group named like a session: ``check`` lists all)."""
    from . import graph

    deps = {name: spec.depends_on for name, spec in sessions.items()}
    found = graph.problems(deps, invalid=set(invalid))
    groups = {name: spec.groups for name, spec in sessions.items()}
    group_reasons = graph.group_problems(groups, [*sessions, *invalid])
    result: dict[str, list[Problem]] = {}
    for name in sessions:
        if name not in found and name not in group_reasons:
            continue
        reasons = [found.get(name) or group_reasons[name],
                   *graph.edge_problems(name, deps[name], set(sessions), set(invalid)),
                   *([group_reasons[name]] if name in group_reasons else [])]
        result[name] = [(lines_of[name].get(reason.partition(":")[0], lines_of[name]["entry"]),
                         f"session '{_printable(name)}': {reason}")
                        for reason in dict.fromkeys(reasons)]
    return result


def _printable(text: str) -> str:
    """A name as shown in a warning: control characters escaped, so it stays one line."""
    if text.isprintable() and not validation.INVISIBLE.intersection(text):
        return text
    return "".join(f"\\u{ord(c):04x}" if c in validation.INVISIBLE else c
                   for c in repr(text)[1:-1])


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


class _EnvSource:
    """Variables read from env files, with where each came from (for messages and drift)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.files: list[str] = []
        self.problem: tuple[int, str] | None = None  # (line, why) when it could not be read


def _read_env_files(paths: list[str], base_dir: Path,
                    source: _EnvSource | None = None) -> _EnvSource:
    """Read ``env_file`` paths (relative to the config's folder) in order, later winning.

    ValueError naming ``file:line`` for a file that is missing, untrusted (held to the config
    file's own rules: it can set PATH) or has a bad line, or a value the env rules refuse;
    ``source`` (filled in place) then still names the files read, for the cache.
    """
    from . import envfiles, trust

    source = source if source is not None else _EnvSource()
    for raw in paths:
        file = Path(validation.resolve_dir(raw, base_dir))
        source.files.append(str(file))
        if file.exists():
            try:
                trust.check(file, "env file")
            except ConfigError as exc:
                raise ValueError(exc.line()) from None
        try:
            entries = envfiles.read(file)
        except envfiles.EnvFileError as exc:
            raise ValueError(str(exc)) from None
        for entry in entries:
            where = f"{raw}:{entry.line}"
            try:
                key = validation.env_key(entry.key)
                source.values[key] = validation.env_value(entry.value)
            except vol.Invalid as exc:
                raise ValueError(f"{where}: {_printable(entry.key)}: {exc.msg}") from None
    return source


def _ops_settings(ops_node: yaml.MappingNode, shown: str,
                  base_dir: Path) -> tuple[dict[str, Any], _EnvSource]:
    """The ``ops:`` keys but ``sessions``, validated; a bad one makes the file unusable."""
    known = validation.ops_keys()
    lines: dict[YamlPath, int] = {}
    clean: dict[str, Any] = {key: default for key, (_, default) in known.items()}
    clean.pop("sessions", None)
    clean.pop("env_file", None)  # read into the env of each session, not a setting
    env_source = _EnvSource()
    for key_node, value_node in ops_node.value:
        key = getattr(key_node, "value", None)
        if key == "sessions":
            if not isinstance(value_node, yaml.MappingNode) and not _is_null(value_node):
                raise ConfigError(
                    f"{shown}:{_line(value_node)}: ops.sessions: expected a mapping of "
                    "name: session"
                )
            continue
        errors: list[YamlError] = []
        value = _to_python(value_node, (key,), lines, errors)
        if errors:
            err_path, err_line, message = errors[0]
            field = validation.error_field(err_path)
            raise ConfigError(f"{shown}:{err_line}: ops.{field}: {message}")
        line = lines.get((key,), _line(key_node))
        if key == "env_file":
            try:
                files = validation.env_file(value)
            except vol.Invalid as exc:
                raise ConfigError(f"{shown}:{line}: ops.env_file: {exc.msg}") from None
            env_source = _EnvSource()
            try:
                _read_env_files(list(files), base_dir, env_source)
            except ValueError as exc:
                # every entry needs it: each is refused saying why (a missing .env must not
                # keep what runs from being listed and stopped)
                env_source.problem = (line, str(exc))
            continue
        if key not in known:
            reason = validation.unknown_key(str(key), None, where="ops")
            raise ConfigError(f"{shown}:{_line(key_node)}: ops.{_printable(str(key))}: {reason}")
        try:
            clean[key] = known[key][0](value)
        except vol.Invalid as exc:
            first = exc.errors[0] if isinstance(exc, vol.MultipleInvalid) else exc
            where = lines.get((key, *first.path), line)
            raise ConfigError(
                f"{shown}:{where}: ops.{validation.error_field([key, *first.path])}: "
                f"{validation.invalid_reason(first, where='ops')}"
            ) from None
    return clean, env_source


class _EntryError(Exception):
    def __init__(self, line: int, field: str, reason: str,
                 every: list[tuple[int, str, str]] | None = None):
        super().__init__(f"{field}: {reason}")
        self.line, self.field, self.reason = line, field, reason
        self.every = every or [(line, field, reason)]


class _Entry:
    """What parsing one entry needs from the file, and what it learns (lines, env files)."""

    def __init__(self, default_backend: str, settings: dict[str, Any], base_dir: Path,
                 ops_env: _EnvSource):
        self.default_backend = default_backend
        self.settings = settings
        self.base_dir = base_dir
        self.ops_env = ops_env
        self.files: list[str] = []
        self.lines: dict[str, int] = {}


def _session(key_node: yaml.Node, value_node: yaml.Node, entry: _Entry) -> SessionSpec:
    """One entry -> SessionSpec, or _EntryError naming the line, field and reason."""
    line = _line(key_node)
    try:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        name = validation.session_name(key)
    except vol.Invalid as exc:
        raise _EntryError(line, "name", exc.msg) from None
    lines: dict[YamlPath, int] = {}
    yaml_errors: list[YamlError] = []
    raw = _to_python(value_node, (), lines, yaml_errors)
    if raw is None and not yaml_errors:
        raw = {}
    if not isinstance(raw, dict):
        if yaml_errors:
            err_path, err_line, message = yaml_errors[0]
            raise _EntryError(err_line, validation.error_field(err_path) or "entry", message)
        raise _EntryError(_line(value_node), "entry", "expected a mapping of settings")
    entry.lines = {str(p[0]): n for p, n in lines.items() if len(p) == 1}

    backend_name = raw.get("backend", entry.default_backend)
    try:
        backend_name = validation.backend(backend_name)
    except vol.Invalid as exc:
        raise _EntryError(lines.get(("backend",), line), "backend", exc.msg) from None
    kind = backends.get(backend_name)
    # Every stage runs on what the earlier ones accepted, so that an entry's problems are all
    # found at once (`check` lists them all; the warning names the first and the others' fields)
    problems = [(line_, validation.error_field(p) or "entry", m) for p, line_, m in yaml_errors]
    clean = _clean_keys(raw, kind.session_keys(), lines, line, yaml_errors, backend_name,
                        problems)
    problems += _semantic_problems(clean, lines, line)

    env = dict(entry.ops_env.values)
    if entry.ops_env.problem is not None:
        problems.append((entry.ops_env.problem[0], "ops.env_file", entry.ops_env.problem[1]))
    files = list(clean.get("env_file", ()))
    if files:
        # recorded before reading: the cache must see a missing or refused file appear or change
        entry.files += [validation.resolve_dir(f, entry.base_dir) for f in files]
        try:
            env.update(_read_env_files(files, entry.base_dir).values)
        except ValueError as exc:
            problems.append((lines.get(("env_file",), line), "env_file", str(exc)))
    env.update(clean.get("env", {}))
    try:
        validation.env_size(env)
    except vol.Invalid as exc:
        field = "env" if "env" in raw or not files else "env_file"
        problems.append((lines.get((field,), line), field, exc.msg))

    own = {k: v for k, v in clean.items() if k not in validation.COMMON_KEYS}
    problems += [(_line_for(path, lines, line), validation.error_field(path), reason)
                 for path, reason in kind.option_problems(own, entry.base_dir)]
    options = None
    try:
        options = kind.options(own, entry.settings, entry.base_dir)
    except vol.Invalid as exc:
        errors = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
        problems += [(_line_for(e.path, lines, line), validation.error_field(e.path), e.msg)
                     for e in errors]
    command = clean.get("command", ())
    if "working_dir" in clean:
        workdir: str | None = validation.resolve_dir(clean["working_dir"], entry.base_dir)
    else:
        workdir = kind.default_workdir(entry.base_dir)
    spec = SessionSpec(
        name=name,
        backend=backend_name,
        command=command,
        command_text=validation.command_as_written(raw.get("command"), command),
        working_dir=workdir,
        env=env,
        description=clean.get("description"),
        ready=clean.get("ready"),
        depends_on=clean.get("depends_on", ()),
        groups=clean.get("groups", ()),
        restart=clean.get("restart", "no"),
        max_restarts=clean.get("max_restarts", 5),
        options=options or kind.options_class(),
        env_files=tuple(entry.ops_env.files) + tuple(
            validation.resolve_dir(f, entry.base_dir) for f in files),
    )
    problems.sort(key=lambda item: item[0])
    if options is not None:
        try:
            kind.complete(spec)
        except ValidationError as exc:
            # a missing key comes after the values written wrong; a refused one says it already
            if not any(field == exc.field for _, field, _ in problems):
                problems.append((line, exc.field, exc.reason))
    if problems:
        first_line, field_name, reason = problems[0]
        if len(problems) > 1:
            reason += f" (also invalid: {', '.join(f for _, f, _ in problems[1:])})"
        raise _EntryError(first_line, field_name, reason, problems)
    return spec


def _clean_keys(raw: dict[str, Any], own_keys: Any, lines: dict[YamlPath, int], line: int,
                yaml_errors: list[YamlError], backend_name: str,
                problems: list[tuple[int, str, str]]) -> dict[str, Any]:
    """Each key through its validator, one by one: the values accepted, the problems added."""
    validators = {**validation.COMMON_KEYS, **own_keys}
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        if any(p[:1] == (key,) for p, _, _ in yaml_errors):
            continue  # already explained by the YAML-level problem
        if key not in validators:
            problems.append((lines.get((key,), line), validation.error_field([key]),
                             validation.unknown_key(str(key), backend_name)))
            continue
        try:
            clean[key] = validators[key](value)
        except vol.Invalid as exc:
            errors = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
            for error in errors:
                path = [key, *error.path]
                problems.append((_line_for(path, lines, line), validation.error_field(path),
                                 validation.invalid_reason(error, backend_name)))
    return clean


def _semantic_problems(clean: dict[str, Any], lines: dict[YamlPath, int],
                       line: int) -> list[tuple[int, str, str]]:
    """Rules across keys, and ``$VAR`` syntax in the command and the exec probe."""
    from . import interpolate

    found = []
    rule = validation.restart_rule(clean.get("restart", "no"), clean.get("max_restarts", 5))
    if rule:
        found.append((lines.get(("max_restarts",), line), "max_restarts", rule))
    probe = clean.get("ready")
    words = [("command", w) for w in clean.get("command", ())]
    if probe is not None and probe.kind == "exec":
        words += [("ready.exec", w) for w in probe.target]
    for field, word in words:
        problem = interpolate.syntax_error(word)
        if problem:
            key = field.partition(".")[0]
            found.append((lines.get((key,), line), field, problem))
            break
    return found


def _line_for(path: list[Any], lines: dict[YamlPath, int], default: int) -> int:
    """The line of the deepest recorded node on ``path`` (voluptuous paths -> YAML lines)."""
    parts = tuple(path)
    while parts:
        if parts in lines:
            return lines[parts]
        parts = parts[:-1]
    return default
