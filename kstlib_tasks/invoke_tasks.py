"""Invoke task collections generated from ``kstlib.conf.yml``: ONE implementation of the verbs.

``namespace()`` gives a repo ``inv astro-dev.start`` (one sub-collection per valid session) and
``inv ops.start NAME`` (the generic verbs); the ``kstlib`` command (:mod:`kstlib_tasks.program`)
runs the very same ``ops`` tasks inside its own invoke ``Program``. Every verb goes through
:class:`~kstlib_tasks.manager.SessionManager`; this module only maps flags to arguments and
errors to exit codes.

Why a ``Task`` subclass: invoke picks short flags by "first free letter" and turns a bad int into
a traceback. :class:`KTask` declares each flag explicitly (``-n`` for ``--lines``, ``-L`` for
``--socket``, as users of the earlier tool know them) and validates numbers at parse time with the
shared rules, so ``-n x`` is one line. Tasks compare by identity, so ``inv a.start b.start`` is
never "deduplicated" into one call although both bodies share their code.
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke import Collection, Context, Program, Task
from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument, ParserContext
from invoke.util import Lexicon

from .errors import INTERRUPTED_EXIT, KstlibError

if TYPE_CHECKING:
    from .config import OpsConfig
    from .manager import SessionManager
    from .models import SessionSpec, SessionStatus

HELP_WORDS = ("--help", "-h")
VERBS = ("list", "start", "stop", "restart", "status", "logs", "attach")
UNEXPECTED_EXIT = 70


# --------------------------------------------------------------------------- config source


class ConfigSource:
    """Where the config comes from; loaded once, on first use, warnings printed once.

    The ``kstlib`` program sets :attr:`explicit` after parsing its ``--config`` option, which is
    why tasks hold this object rather than a loaded config.
    """

    def __init__(self, explicit: str | os.PathLike[str] | None = None, *,
                 cwd: Path | None = None):
        self.explicit = explicit
        self.cwd = cwd
        self._config: OpsConfig | None = None
        self._manager: SessionManager | None = None
        self._error: KstlibError | None = None
        self.error_reported = False

    def load(self) -> OpsConfig:
        if self._error is not None:
            raise self._error
        if self._config is None:
            from .config import load_config

            try:
                self._config = load_config(self.explicit, cwd=self.cwd)
            except KstlibError as exc:
                self._error = exc
                raise
        return self._config

    def manager(self) -> SessionManager:
        if self._manager is None:
            from .manager import SessionManager

            self._manager = SessionManager(self.load())
        return self._manager

    def already_reported(self, exc: BaseException) -> bool:
        """True for the load error :func:`namespace` printed when it built the tasks."""
        return self.error_reported and exc is self._error


# --------------------------------------------------------------------------- flags and tasks


class FastArgument(Argument):
    """An ``Argument`` that copies itself cheaply.

    invoke deep-copies every task's parser context on each run (``inv --list`` included); with
    one collection per session that generic deepcopy dominated the start-up time. The only
    mutable state of an Argument is its value (a list for repeatable flags).
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> FastArgument:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for attr in ("_value", "raw_value", "default"):
            value = getattr(self, attr)
            if isinstance(value, list):
                setattr(new, attr, list(value))
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        # invoke formats every context's repr into debug messages even when debugging is off
        # (twice per run, for every argument of every task): keep it short. It also ends up in
        # invoke's "Flag ... needed value" error, where the option as typed reads best.
        return f"--{self.names[0]}"


class CheckedArgument(FastArgument):
    """A value validated by the shared rules while parsing: a bad value is a ParseError (one
    line), never a ValueError traceback. ``kind`` only drives the help text (``INT``)."""

    def __init__(self, *, field: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.field = field

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and isinstance(value, str):
            from .validation import check

            try:
                value = check(self.field, value)
            except KstlibError as exc:
                raise ParseError(str(exc)) from None
        super().set_value(value, cast=False)


class Flag:
    """One task argument, declared once for every task that takes it.

    A plain class, not a dataclass: this module is imported on every ``inv`` call and a
    dataclass costs a code generation at import time.
    """

    __slots__ = ("field", "help", "kind", "name", "positional", "short")

    def __init__(self, name: str, short: str | None = None, help: str = "", kind: type = str,
                 field: str | None = None, positional: bool = False):
        self.name = name
        self.short = short
        self.help = help
        self.kind = kind
        self.field = field  # validated at parse time with this rule (lines, timeout)
        self.positional = positional

    def argument(self) -> Argument:
        names = (self.name, self.short) if self.short else (self.name,)
        options: dict[str, Any] = {"names": names, "help": self.help,
                                   "positional": self.positional}
        if self.kind is bool:
            options.update(kind=bool, default=False)
        elif self.kind is list:
            options.update(kind=list, default=[])
        if self.field:
            return CheckedArgument(field=self.field, kind=self.kind, **options)
        return FastArgument(**options)


class KTask(Task):
    """A task whose flags are declared, not guessed from the signature."""

    def __init__(self, body: Callable[..., Any], *, name: str, doc: str,
                 flags: Sequence[Flag], help_name: str | None = None):
        # invoke copies the docstring when the Task is built: set it first.
        body.__doc__ = doc
        body.__name__ = name
        self.flags = tuple(flags)
        self.help_name = help_name or name
        super().__init__(
            body,
            name=name,
            positional=[f.name for f in self.flags if f.positional],
            iterable=[f.name for f in self.flags if f.kind is list],
            auto_shortflags=False,
        )

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        return [flag.argument() for flag in self.flags]

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict[int, Any]) -> KTask:
        # invoke deep-copies the whole tree when it loads ``ns`` from tasks.py; a KTask holds no
        # state worth copying (its flags are frozen), so it is shared.
        return self


NAME = Flag("name", positional=True, help="session name (as in kstlib.conf.yml, or live)")
JSON = Flag("json", kind=bool, help="print JSON on stdout (warnings go to stderr)")
FORCE = Flag("force", "f", kind=bool, help="kill at once, no graceful stop")
TIMEOUT = Flag("timeout", "t", kind=int, field="timeout",
               help="seconds to wait for a graceful stop before killing (default 10)")
LINES = Flag("lines", "n", kind=int, field="lines", help="only the last INT lines (default: all)")
LIST_BACKEND = Flag("backend", "b", help="only sessions of this backend: tmux or container")


def start_flags(spec: SessionSpec | None = None) -> tuple[Flag, ...]:
    """The override flags of start/restart; with a spec, the help shows its configured value."""

    def conf(value: Any) -> str:
        if spec is None:
            return "from the config"
        if value in (None, "", (), {}):
            return "config: none"
        return f"config: {value}"

    return (
        Flag("backend", "b", help=f"tmux or container ({conf(spec and spec.backend)}); "
             "another backend than the config's does not take its command or workdir (a "
             "container runs its image's CMD unless -c is given)"),
        Flag("command", "c", help="command to run, split like a shell would but never run by "
             f"one; no ; & | > < $( ` ({conf(spec and spec.command_text)})"),
        Flag("image", "i", help=f"container image ({conf(spec and spec.image)})"),
        Flag("env", "e", kind=list,
             help="-e NAME=value, repeatable; merged over the config's env"),
        Flag("volume", "v", kind=list,
             help="-v host:container[:options], repeatable; replaces the config's volumes"),
        Flag("port", "p", kind=list,
             help="-p [ip:][host:]container[/tcp|udp], repeatable; replaces the config's ports"),
        Flag("workdir", "w", help=f"working directory ({conf(spec and spec.working_dir)})"),
        Flag("socket", "L", help="tmux server socket name, as tmux -L "
             f"({conf(spec and spec.socket_name) if spec else 'default server'})"),
    )


# --------------------------------------------------------------------------- the verbs


def _overrides(backend: str | None = None, command: str | None = None, image: str | None = None,
               env: Iterable[str] = (), volume: Iterable[str] = (), port: Iterable[str] = (),
               workdir: str | None = None, socket: str | None = None) -> dict[str, Any]:
    """Task flags -> ``apply_overrides`` keywords; an empty repeatable keeps the config's."""
    return {
        "backend": backend,
        "command": command,
        "image": image,
        "env": list(env) or None,
        "volumes": list(volume) or None,
        "ports": list(port) or None,
        "working_dir": workdir,
        "socket_name": socket,
    }


class Ops:
    """The seven verbs, bound to a config source; what both front ends execute."""

    def __init__(self, source: ConfigSource):
        self.source = source

    def list(self, json: bool = False, backend: str | None = None) -> None:
        from . import render

        statuses = self.source.manager().list(backend=backend)
        if json:
            print(render.list_json(statuses))
        else:
            print(render.table(statuses, color=render.use_color(sys.stdout)))

    def status(self, name: str, json: bool = False) -> None:
        from . import render

        status = self.source.manager().status(name)
        if json:
            print(render.status_json(status))
        else:
            print(render.details(status, color=render.use_color(sys.stdout)))

    def start(self, name: str, **flags: Any) -> None:
        status = self.source.manager().start(name, **_overrides(**flags))
        print(f"started {_describe(status)}")

    def restart(self, name: str, force: bool = False, timeout: float | None = None,
                **flags: Any) -> None:
        status = self.source.manager().restart(
            name, force=force, timeout=10.0 if timeout is None else timeout,
            **_overrides(**flags),
        )
        print(f"restarted {_describe(status)}")

    def stop(self, name: str, force: bool = False, timeout: float | None = None) -> None:
        status = self.source.manager().stop(
            name, force=force, timeout=10.0 if timeout is None else timeout
        )
        print(f"stopped {name} ({status.backend})")

    def logs(self, name: str, lines: int | None = None) -> None:
        for line in self.source.manager().logs(name, lines):
            print(line)

    def attach(self, name: str) -> None:
        self.source.manager().attach(name)


def _describe(status: SessionStatus) -> str:
    where = status.backend
    if status.runtime:
        where += f" {status.runtime}"
    if status.pid:
        where += f", pid {status.pid}"
    return f"{status.name} ({where})"


def run_safely(action: Callable[[], None], source: ConfigSource | None = None) -> None:
    """Errors become one line on stderr and an exit code: invoke prints an ``Exit``'s message
    and exits with its code, no traceback. Ctrl-C exits 130 like a shell would."""
    try:
        action()
    except KstlibError as exc:
        message = None if source is not None and source.already_reported(exc) else str(exc)
        raise Exit(message, code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit(code=INTERRUPTED_EXIT) from None
    except BrokenPipeError:
        # `kstlib ops logs x | head`: the reader left; nothing more to say.
        sys.stderr.close()
        raise Exit(code=0) from None
    except Exit:
        raise
    except Exception as exc:
        if os.environ.get("KSTLIB_DEBUG"):
            raise
        raise Exit(
            f"unexpected error: {type(exc).__name__}: {exc} (set KSTLIB_DEBUG=1 for details)",
            code=UNEXPECTED_EXIT,
        ) from None


# --------------------------------------------------------------------------- collections

_VERB_FLAGS: dict[str, tuple[Flag, ...]] = {
    "list": (JSON, LIST_BACKEND),
    "start": start_flags(),
    "stop": (FORCE, TIMEOUT),
    "restart": (*start_flags(), FORCE, TIMEOUT),
    "status": (JSON,),
    "logs": (LINES,),
    "attach": (),
}

OPS_DOCS = {
    "list": "List sessions: defined in the config, and every live tmux session and container.",
    "start": "Start session NAME from the config; the flags override config values once.",
    "stop": "Stop session NAME gracefully (SIGINT/SIGTERM, then kill after --timeout).",
    "restart": "Stop session NAME if live, then start it again (flags as for start).",
    "status": "Show the state of session NAME (the live state wins over the config).",
    "logs": "Print the last output of session NAME (kept after it exits or is stopped).",
    "attach": "Attach the terminal to session NAME (detach: tmux Ctrl+B D, containers "
              "Ctrl+P Ctrl+Q).",
}


def print_task_help(task: KTask, usage: str | None = None) -> None:
    """Per-task help, as invoke prints it, for the cases where invoke cannot (a positional
    argument swallowed ``--help``)."""
    program = Program(binary=os.path.basename(sys.argv[0] or "inv"))
    tuples = ParserContext(name=task.help_name, args=task.get_arguments()).help_tuples()
    print(usage or f"Usage: {program.binary} [--core-opts] {task.help_name} [--options] "
          "[other tasks here ...]")
    print("")
    print("Docstring:")
    for line in (inspect.getdoc(task) or "none").splitlines():
        print(program.leading_indent + line if line.strip() else "")
    print("")
    print("Options:")
    if tuples:
        program.print_columns(tuples)
    else:
        print(program.leading_indent + "none")
        print("")


def _ops_task(ops: Ops, verb: str, prefix: str) -> KTask:
    takes_name = verb != "list"

    def body(c: Context, **kwargs: Any) -> None:
        if takes_name and kwargs.get("name") in HELP_WORDS:
            print_task_help(task)
            return
        run_safely(lambda: getattr(ops, verb)(**kwargs), ops.source)

    flags = (NAME, *_VERB_FLAGS[verb]) if takes_name else _VERB_FLAGS[verb]
    task = KTask(body, name=verb, doc=OPS_DOCS[verb], flags=flags,
                 help_name=f"{prefix}.{verb}")
    return task


def _copy_parser_context(self: ParserContext, memo: dict[int, Any]) -> ParserContext:
    """``copy.deepcopy`` of a parser context, without the generic machinery.

    invoke's parser deep-copies every task's context twice per run (``inv --list`` included);
    with one collection per session, the generic deepcopy of their Lexicons was the largest
    cost of start-up. Only the arguments hold parse state: they are copied (once each, through
    ``memo``) and the dictionaries around them rebuilt; the rest is immutable and shared. The
    contexts are built by invoke's own ``Collection.to_contexts`` (``from_module`` turns the
    root of a tasks.py into a plain Collection), so the method is set on invoke's class: the
    result is the same as a generic deepcopy, only cheaper.
    """
    new = object.__new__(type(self))
    new.__dict__.update(self.__dict__)
    twin = lambda arg: copy.deepcopy(arg, memo)  # noqa: E731
    new.args = _copy_lexicon(self.args, twin)
    new.flags = _copy_lexicon(self.flags, twin)
    new.positional_args = [twin(arg) for arg in self.positional_args]
    new.inverse_flags = dict(self.inverse_flags)
    memo[id(self)] = new
    return new


ParserContext.__deepcopy__ = _copy_parser_context  # type: ignore[attr-defined]


class SessionCollection(Collection):
    """A generated collection that copies cheaply: invoke deep-copies the whole tree when it
    loads ``ns`` from tasks.py, on every run; the tasks inside are immutable and shared."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionCollection:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.tasks = _copy_lexicon(self.tasks)
        new.collections = copy.deepcopy(self.collections, memo)
        new._configuration = copy.deepcopy(self._configuration, memo)
        memo[id(self)] = new
        return new


def _copy_lexicon(old: Lexicon, value_copy: Callable[[Any], Any] | None = None) -> Lexicon:
    """A new Lexicon with the same values (or ``value_copy`` of them) and aliases."""
    new = Lexicon()
    for key, value in old.items():
        new[key] = value_copy(value) if value_copy else value
    for alias, target in old.aliases.items():
        new.alias(alias, to=target)
    return new


def ops_collection(source: ConfigSource, name: str = "ops") -> Collection:
    """The generic verbs taking a session name: ``ops.list``, ``ops.start NAME``, ..."""
    ops = Ops(source)
    collection = SessionCollection(name)
    for verb in VERBS:
        collection.add_task(_ops_task(ops, verb, name))
    return collection


def _summary(spec: SessionSpec) -> str:
    """What the session runs, for help texts: backend and command or image."""
    if spec.backend == "container":
        text = f"container: image {spec.image}"
        if spec.command_text:
            text += f", command {spec.command_text}"
        return text
    text = f"tmux: {spec.command_text or ' '.join(spec.command) or 'default shell'}"
    if spec.socket_name:
        text += f", socket {spec.socket_name}"
    return text


_SESSION_DOCS = {
    "start": "Start {name} ({summary}).\n\nConfig values are the defaults; a flag overrides "
             "one for this start only.",
    "stop": "Stop {name} ({summary}) gracefully, killing it after --timeout seconds.",
    "restart": "Restart {name} ({summary}): stop it if live, then start it from the config.",
    "status": "Show the state of {name} ({summary}).",
    "logs": "Print the last output of {name} ({summary}).",
    "attach": "Attach the terminal to {name} ({summary}).",
}
SUMMARY_WIDTH = 48


def _doc(verb: str, spec: SessionSpec) -> str:
    """First line short (``inv --list`` shows it), full command or image in the body."""
    summary = _summary(spec)
    short = summary if len(summary) <= SUMMARY_WIDTH else summary[: SUMMARY_WIDTH - 3] + "..."
    doc = _SESSION_DOCS[verb].format(name=spec.name, summary=short)
    if spec.description:
        doc += f"\n\n{spec.description}"
    where = f" ({spec.source})" if spec.source else ""
    return f"{doc}\n\nConfigured{where}: {summary}."


def session_collection(source: ConfigSource, spec: SessionSpec) -> Collection:
    """``<name>.start`` and friends for one configured session, flags mirroring the CLI."""
    ops = Ops(source)
    collection = SessionCollection(spec.name)
    # restart keeps only its stop flags here (inv ops.restart NAME takes the start flags too):
    # every flag is parsed, copied and listed on each inv call, for every session.
    flags = {"start": start_flags(spec), "restart": (FORCE, TIMEOUT)}
    for verb in VERBS[1:]:
        collection.add_task(_session_task(ops, spec.name, verb,
                                          flags.get(verb, _VERB_FLAGS[verb]), _doc(verb, spec)))
    return collection


def _session_task(ops: Ops, name: str, verb: str, flags: Sequence[Flag], doc: str) -> KTask:
    def body(c: Context, **kwargs: Any) -> None:
        run_safely(lambda: getattr(ops, verb)(name, **kwargs), ops.source)

    return KTask(body, name=verb, doc=doc, flags=flags, help_name=f"{name}.{verb}")


def _caller_folder(depth: int = 2) -> Path | None:
    """The folder of the module calling :func:`namespace` (a repo's tasks.py): invoke does not
    chdir there, so the config is looked up from that file's folder on purpose."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    filename = frame.f_globals.get("__file__")
    return Path(filename).resolve().parent if filename else None


def namespace(config: str | os.PathLike[str] | None = None, *,
              search_from: str | os.PathLike[str] | None = None) -> Collection:
    """The invoke collection for a repo's ``tasks.py``: ``ns = namespace()``.

    ``config`` names the file (relative to the calling file's folder); otherwise
    ``$KSTLIB_CONFIG``, else the nearest ``kstlib.conf.yml`` from the calling file's folder
    (``search_from`` to choose another folder) upward. Invalid sessions get no tasks (their
    warning says why). A config that cannot be loaded at all is reported on stderr once and
    leaves the ``ops`` tasks (which repeat the error) and the repo's own tasks usable.

    Extend the result with ``ns.add_task(...)`` / ``ns.add_collection(...)``.
    """
    folder = Path(search_from) if search_from is not None else _caller_folder()
    explicit = config
    if explicit is not None and folder is not None and not Path(explicit).is_absolute():
        explicit = folder / Path(explicit).expanduser()
    source = ConfigSource(explicit, cwd=folder)
    ns = Collection()
    ns.add_collection(ops_collection(source))
    try:
        loaded = source.load()
    except KstlibError as exc:
        print(str(exc), file=sys.stderr)
        source.error_reported = True
        return ns
    for name, spec in loaded.sessions.items():
        if name == "ops":
            print("warning: session 'ops' gets no invoke tasks of its own (the name is taken by "
                  "the generic verbs): use 'inv ops.start ops'", file=sys.stderr)
            continue
        ns.add_collection(session_collection(source, spec))
    return ns
