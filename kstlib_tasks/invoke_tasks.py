"""Invoke task collections generated from ``kstlib.conf.yml`` and the verb table.

``namespace()`` gives a repo ``inv astro-dev.start`` (one sub-collection per valid session) and
``inv ops.start NAME`` (the generic verbs). Every task parses its flags from the same table as
the ``kstlib`` command (:mod:`kstlib_tasks.verbs`) and runs the same handler
(:func:`kstlib_tasks.frontend.run_verb`); this module only maps invoke's parsing onto it.

Why a ``Task`` subclass: invoke picks short flags by "first free letter" and turns a bad int into
a traceback. :class:`KTask` declares each flag explicitly (``-n`` for ``--lines``, ``-L`` for
``--socket``), keeps numbers as text so that the shared rules refuse a bad one with exit code 2,
and compares by identity, so ``inv a.start b.start`` is never "deduplicated" into one call.

invoke deep-copies every task's parser context on each run (``inv --list`` included); with one
collection per session that generic deepcopy dominated the start-up time, hence the cheap
copies below (:class:`FastArgument`, :func:`_copy_parser_context`, :class:`SessionCollection`).
"""

from __future__ import annotations

import copy
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext
from invoke.program import Program
from invoke.tasks import Task
from invoke.util import Lexicon  # type: ignore[attr-defined]

from .errors import KstlibError
from .flags import Flag
from .frontend import ConfigSource, Front, run_verb

if TYPE_CHECKING:
    from .models import SessionSpec
    from .verbs import Verb

HELP_WORDS = ("--help", "-h")
FRONT = "inv"


# --------------------------------------------------------------------------- flags and tasks


class FastArgument(Argument):
    """An ``Argument`` that copies itself cheaply (its only mutable state is its value)."""

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


def argument(flag: Flag, help_text: str | None = None) -> Argument:
    """The invoke argument of a table flag; numbers stay text (validated by the handler)."""
    names = (flag.name, flag.short) if flag.short else (flag.name,)
    options: dict[str, Any] = {"names": names, "help": help_text or flag.help,
                               "positional": flag.positional}
    if flag.kind is bool:
        options.update(kind=bool, default=False)
    elif flag.kind is list:
        options.update(kind=list, default=[])
    return FastArgument(**options)


_shared: dict[tuple[int, str], Argument] = {}


def _argument(flag: Flag, help_text: str) -> Argument:
    """One prototype per flag and help text: most flags read the same for every session, and
    invoke never writes to a task's arguments (it parses into copies)."""
    key = (id(flag), help_text)
    found = _shared.get(key)
    if found is None:
        found = _shared[key] = argument(flag, help_text)
    return found


NAME = Flag("name", positional=True, help="session name (as in kstlib.conf.yml, or live)")
NAMES = Flag("names", positional=True, help="session or group names, comma-separated")
TARGETS = Flag("targets", help="session or group names, comma-separated (default: all)",
               metavar="NAMES")


class KTask(Task):  # type: ignore[type-arg]
    """A task whose flags are declared, not guessed from the signature."""

    def __init__(self, body: Callable[..., Any], *, name: str, doc: str,
                 arguments: Sequence[Argument], help_name: str | None = None):
        # invoke copies the docstring when the Task is built: set it first.
        body.__doc__ = doc
        body.__name__ = name
        self.arguments = tuple(arguments)
        self.help_name = help_name or name
        super().__init__(
            body,
            name=name,
            positional=[str(a.name) for a in self.arguments if a.positional],
            iterable=[str(a.name) for a in self.arguments if a.kind is list],
            auto_shortflags=False,
        )

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        # The prototypes themselves: invoke builds every task's context twice per run (`inv
        # --list` included) and its parser deep-copies the contexts before parsing into them,
        # so the prototypes are never written to.
        return list(self.arguments)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __deepcopy__(self, memo: dict[int, Any]) -> KTask:
        # invoke deep-copies the whole tree when it loads ``ns`` from tasks.py; a KTask holds no
        # state worth copying (its arguments are copied per parse by get_arguments), so it is
        # shared.
        return self


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").replace(",", " ").split() if part]


def _task(front: Front, verb: Verb, *, session: SessionSpec | None, prefix: str,
          doc: str) -> KTask:
    """The task running ``verb``, for one session (its name implied) or for any name."""
    flags = list(verb.flags)
    arguments: list[Argument] = []
    if session is None:
        if verb.names == "one":
            arguments.append(argument(NAME))
        elif verb.names == "many":
            arguments.append(argument(NAMES))
        elif verb.names == "any":
            arguments.append(argument(TARGETS))
    from .verbs import help_for

    arguments += [_argument(flag, help_for(flag, session)) for flag in flags]

    dests = {flag.name: flag.dest for flag in flags}

    def body(c: Context, **kwargs: Any) -> None:
        # invoke passes each value under the flag's name (``no-recreate``): the handler's keyword
        # is its dest (``no_recreate``)
        args = {dests.get(key, key): value for key, value in kwargs.items()}
        if session is not None:
            if verb.names == "one":
                args["name"] = session.name
            else:
                args["names"] = [session.name]
        elif verb.names == "one" and args.get("name") in HELP_WORDS:
            print_task_help(task)
            return
        elif verb.names == "many":
            args["names"] = _split(args.pop("names", None))
        elif verb.names == "any":
            args["names"] = _split(args.pop("targets", None))
        code = run_verb(front, verb.name, args)
        if code:
            raise Exit(code=code)

    task = KTask(body, name=verb.name, doc=doc, arguments=arguments,
                 help_name=f"{prefix}.{verb.name}")
    return task


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


# --------------------------------------------------------------------------- cheap copies


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
    def twin(arg: Any) -> Any:
        return copy.deepcopy(arg, memo)

    new.args = _copy_lexicon(self.args, twin)
    new.flags = _copy_lexicon(self.flags, twin)
    new.positional_args = [twin(arg) for arg in self.positional_args]
    new.inverse_flags = dict(self.inverse_flags)
    memo[id(self)] = new
    return new


class _ContextCopy(ParserContext):
    """What a deep copy of a parser context gives: a copy made on first use.

    invoke's parser deep-copies the contexts of every task when it is built, and once more the
    one it switches to before parsing into it: the first copies of the tasks never named on
    the command line are never used (`inv --list` names none). This stands for such a copy and
    becomes one (:func:`_copy_parser_context`) the moment anything reads or writes it. A
    subclass, so that invoke's ``isinstance`` checks see a context; its own state is never set
    (``__init__`` of the base is not called): every attribute is the copy's.
    """

    def __init__(self, source: ParserContext):
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_made", None)

    def _copy(self) -> ParserContext:
        made: ParserContext | None = object.__getattribute__(self, "_made")
        if made is None:
            made = _copy_parser_context(object.__getattribute__(self, "_source"), {})
            object.__setattr__(self, "_made", made)
        return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._copy(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._copy(), name, value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        made = object.__getattribute__(self, "_made")
        source = made if made is not None else object.__getattribute__(self, "_source")
        return copy.deepcopy(source, memo)

    def __repr__(self) -> str:
        made = object.__getattribute__(self, "_made")
        return repr(made if made is not None else object.__getattribute__(self, "_source"))


def _lazy_copy(self: ParserContext, memo: dict[int, Any]) -> Any:
    found = memo.get(id(self))
    if found is None:
        found = memo[id(self)] = _ContextCopy(self)
    return found


ParserContext.__deepcopy__ = _lazy_copy  # type: ignore[attr-defined]


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
    new = Lexicon()  # lexicon has no type hints
    for key, value in old.items():
        new[key] = value_copy(value) if value_copy else value
    for alias, target in old.aliases.items():
        new.alias(alias, to=target)
    return new


# --------------------------------------------------------------------------- collections


def ops_collection(source: ConfigSource, name: str = "ops") -> Collection:
    """The generic verbs taking names: ``ops.list``, ``ops.start NAME``, ``ops.up``..."""
    from .verbs import table

    front = Front(source, FRONT)
    collection = SessionCollection(name)
    for verb in table().values():
        collection.add_task(_task(front, verb, session=None, prefix=name, doc=verb.doc))
    return collection


_SESSION_DOCS = {
    "start": "Start {name} ({summary}).\n\nConfig values are the defaults; a flag overrides "
             "one for this start only.",
    "stop": "Stop {name} ({summary}) gracefully, killing it after --timeout seconds.",
    "restart": "Restart {name} ({summary}).\n\nStop it if live, then start it; the flags are "
               "those of start.",
    "status": "Show the state of {name} ({summary}).",
    "logs": "Print the last output of {name} ({summary}).",
    "attach": "Attach the terminal to {name} ({summary}).",
    "wait": "Wait until {name} is ready ({summary}).",
}
SUMMARY_WIDTH = 48


class _Docs:
    """The help texts of one session's tasks: what they share is worked out once."""

    def __init__(self, spec: SessionSpec, source: str | None):
        from . import backends
        from .render import printable

        self.name = spec.name
        summary = printable(backends.get(spec.backend).summary(spec))
        self.short = (summary if len(summary) <= SUMMARY_WIDTH
                      else summary[: SUMMARY_WIDTH - 3] + "...")
        lines = []
        if spec.description:
            lines.append(f"\n\n{printable(spec.description)}")
        where = f" ({source})" if source else ""
        lines.append(f"\n\nConfigured{where}: {summary}.")
        if spec.depends_on:
            lines.append("\nDepends on: " + ", ".join(f"{e.name} ({e.condition})"
                                                     for e in spec.depends_on) + ".")
        if spec.ready is not None:
            lines.append(f"\nReady when: {printable(spec.ready.describe())}.")
        if spec.groups:
            lines.append("\nGroups: " + ", ".join(spec.groups) + ".")
        self.tail = "".join(lines)

    def doc(self, verb: str) -> str:
        """First line short (``inv --list`` shows it), full command or image in the body."""
        return _SESSION_DOCS[verb].format(name=self.name, summary=self.short) + self.tail


def session_collection(source: ConfigSource, spec: SessionSpec,
                       shown: str | None = None) -> Collection:
    """``<name>.start`` and friends for one configured session, flags mirroring the CLI."""
    from .verbs import table

    front = Front(source, FRONT)
    collection = SessionCollection(spec.name)
    docs = _Docs(spec, source.load().source(spec, shown))
    for verb in table().values():
        if verb.per_session:
            collection.add_task(_task(front, verb, session=spec, prefix=spec.name,
                                      doc=docs.doc(verb.name)))
    return collection


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
        from .render import printable

        print(printable(exc.line(FRONT)), file=sys.stderr)
        source.error_reported = True
        return ns
    shown = loaded.shown  # worked out once for the help texts of every session
    for name, spec in loaded.sessions.items():
        if name == "ops":
            print("warning: session 'ops' gets no invoke tasks of its own (the name is taken by "
                  "the generic verbs): use 'inv ops.start ops'", file=sys.stderr)
            continue
        ns.add_collection(session_collection(source, spec, shown))
    return ns
