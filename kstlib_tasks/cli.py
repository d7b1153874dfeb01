"""The ``kstlib`` command: ``kstlib [--config PATH] ops <verb> [NAME...] [options]``.

A small parser generated from the verb table (:mod:`kstlib_tasks.verbs`), not invoke: none of
kstlib's verbs runs invoke tasks, and importing invoke was half the time of a ``list``. Options
are GNU style (``--lines 5``, ``--lines=5``, ``-n 5``, ``-n5``, repeatable ``-e K=V``, ``--``
ends them); the global ``--config``, ``--help``, ``--version`` and ``--debug`` may appear
anywhere. A usage error is one line and exit code 2.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from . import __version__, errors
from .errors import UsageError

if TYPE_CHECKING:
    from .flags import Flag
    from .verbs import Verb

PROGRAM = "kstlib"
SUMMARY = "Start, stop and watch the sessions defined in kstlib.conf.yml."
GLOBAL_HELP = (
    ("--config PATH", "kstlib.conf.yml to use (default: $KSTLIB_CONFIG, else the nearest "
                      "kstlib.conf.yml from the current folder upward)"),
    ("--debug", "log every backend command run (to stderr)"),
    ("-h, --help", "show this help, or a command's: kstlib ops start --help"),
    ("-V, --version", "print the version"),
)


class Parsed:
    __slots__ = ("args", "config", "debug", "help", "verb", "version")

    def __init__(self) -> None:
        self.config: str | None = None
        self.help = False
        self.version = False
        self.debug = False
        self.verb: str | None = None
        self.args: dict[str, Any] = {}


def main(argv: list[str] | None = None) -> None:
    """Run ``kstlib`` on ``argv`` (default: ``sys.argv[1:]``) and exit with its code."""
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        code = errors.INTERRUPTED
    except BrokenPipeError:
        # `kstlib --help | head`: the reader left. Silence the flush at exit, end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    if argv is None:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown (freeing every module and object
    one by one took about a sixth of a `list`): the output is flushed, every file kstlib wrote
    is already closed, and no thread of its own is left running."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a reader gone (BrokenPipeError) or a stream closed
        pass
    if "logging" in sys.modules:  # --debug, or sh: their handlers flushed
        sys.modules["logging"].shutdown()
    os._exit(code)


def run(argv: list[str]) -> int:
    try:
        parsed = parse(argv)
    except UsageError as exc:
        print(f"{PROGRAM}: {exc.line(PROGRAM)}", file=sys.stderr)
        return exc.exit_code
    if parsed.version:
        print(f"kstlib-tasks {__version__}")
        return 0
    if parsed.help or parsed.verb is None:
        print_help(parsed.verb)
        return 0
    if parsed.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="debug: %(message)s", stream=sys.stderr)
    from .frontend import ConfigSource, Front, run_verb

    return run_verb(Front(ConfigSource(parsed.config), PROGRAM), parsed.verb, parsed.args)


# --------------------------------------------------------------------------- parsing


def parse(argv: list[str]) -> Parsed:
    """``argv`` -> Parsed; UsageError (exit 2) for anything that is not a valid command."""
    from .verbs import table

    parsed = Parsed()
    tokens: list[str] = []
    rest = list(argv)
    # pass 1: the global options, wherever they are (up to a `--`)
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--":
            tokens.extend(rest[i:])
            break
        if token in ("-h", "--help"):
            parsed.help = True
        elif token in ("-V", "--version"):
            parsed.version = True
        elif token == "--debug":
            parsed.debug = True
        elif token == "--config":
            if i + 1 >= len(rest):
                raise UsageError(f"option --config needs a value ({_see(None)})")
            i += 1
            parsed.config = rest[i]
        elif token.startswith("--config="):
            parsed.config = token.partition("=")[2]
        else:
            tokens.append(token)
        i += 1
    # pass 2: the command words are the first two tokens that are not options
    words: list[str] = []
    options: list[str] = []
    for token in tokens:
        if len(words) < 2 and not token.startswith("-") and "--" not in options:
            words.append(token)
        else:
            options.append(token)
    if not words:
        if options and not parsed.help:
            raise UsageError(f"unknown option {options[0]!r} ({_see(None)})")
        return parsed
    if words[0] != "ops":
        if tokens[0].startswith("-"):  # `-f my.yml ops list`: the option is what is wrong
            raise UsageError(f"unknown option {tokens[0]!r} ({_see(None)})")
        from .suggest import did_you_mean

        raise UsageError(f"unknown command {words[0]!r}{did_you_mean(words[0], ['ops'])} "
                         f"({_see(None)})")
    if len(words) == 1:
        parsed.help = True
        return parsed
    verbs = table()
    if words[1] not in verbs:
        from .suggest import did_you_mean

        raise UsageError(f"unknown command 'ops {words[1]}'{did_you_mean(words[1], verbs)} "
                         f"(commands: {', '.join(verbs)}; {_see(None)})")
    parsed.verb = words[1]
    if parsed.help or parsed.version:
        return parsed
    parsed.args = parse_verb(verbs[words[1]], options)
    return parsed


def parse_verb(verb: Verb, tokens: list[str]) -> dict[str, Any]:
    """The verb's keyword arguments from its tokens (flags and NAMEs)."""
    by_name: dict[str, Flag] = {}
    for flag in verb.flags:
        by_name[f"--{flag.name}"] = flag
        if flag.short:
            by_name[f"-{flag.short}"] = flag
    values: dict[str, Any] = {f.dest: ([] if f.kind is list else None) for f in verb.flags}
    for flag in verb.flags:
        if flag.kind is bool:
            values[flag.dest] = False
    names: list[str] = []
    i = 0
    only_names = False
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if only_names or not token.startswith("-") or token == "-":
            names.append(token)
            continue
        if token == "--":
            only_names = True
            continue
        if token.startswith("--"):
            option, eq, inline = token.partition("=")
        else:  # -n5, -n=5, -eK=V: the value is attached to the short option
            option, inline = token[:2], token[2:].removeprefix("=")
            eq = "=" if len(token) > 2 else ""
        found = by_name.get(option)
        if found is None:
            from .suggest import did_you_mean

            close = did_you_mean(option, [n for n in by_name if n.startswith("--")]) \
                if option.startswith("--") else ""
            raise UsageError(f"unknown option {token!r}{close} ({_see(verb.name)})")
        flag = found
        if flag.kind is bool:
            if eq and not option.startswith("--") and not token.startswith(f"{option}="):
                # bundled short flags: -ft 3 is -f -t 3
                tokens.insert(i, f"-{token[2:]}")
                values[flag.dest] = True
                continue
            if eq:
                raise UsageError(f"option --{flag.name} takes no value ({_see(verb.name)})")
            values[flag.dest] = True
            continue
        if eq:
            value = inline
        else:
            if i >= len(tokens):
                raise UsageError(f"option --{flag.name} needs a value ({_see(verb.name)})")
            value = tokens[i]
            i += 1
        if flag.kind is list:
            values[flag.dest].append(value)
        else:
            values[flag.dest] = value
    if verb.names == "one":
        if not names:
            raise UsageError(f"'ops {verb.name}' needs a session NAME ({_see(verb.name)})")
        if len(names) > 1:
            raise UsageError(f"unknown option or extra argument {names[1]!r} "
                             f"({_see(verb.name)})")
        values["name"] = names[0]
    elif verb.names in ("many", "any"):
        if verb.names == "many" and not names:
            raise UsageError(f"'ops {verb.name}' needs at least one NAME ({_see(verb.name)})")
        values["names"] = names
    elif names:
        raise UsageError(f"unknown option or extra argument {names[0]!r} ({_see(verb.name)})")
    return values


def _see(verb: str | None) -> str:
    return f"see: {PROGRAM} ops {verb} --help" if verb else f"see: {PROGRAM} --help"


# --------------------------------------------------------------------------- help


def _columns(rows: list[tuple[str, str]]) -> None:
    import shutil
    import textwrap

    width = min(max(len(left) for left, _ in rows) + 4, 34)
    total = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    for left, right in rows:
        lines = textwrap.wrap(right, total - width) or [""]
        if len(left) + 4 > width:
            print(f"  {left}")
            lines_out = lines
        else:
            print(f"  {left.ljust(width - 2)}{lines[0]}")
            lines_out = lines[1:]
        for line in lines_out:
            print(" " * width + line)
    print()


def flag_label(flag: Flag) -> str:
    names = f"-{flag.short}, --{flag.name}" if flag.short else f"--{flag.name}"
    return f"{names} {flag.metavar}" if flag.kind is not bool else names


def print_help(verb_name: str | None) -> None:
    from .verbs import table

    verbs = table()
    if verb_name is None:
        print(f"Usage: {PROGRAM} [--config PATH] ops <command> [NAME...] [options]")
        print()
        print(SUMMARY)
        print()
        print("Commands:")
        print()
        _columns([(v.usage.split(" [")[0], v.doc) for v in verbs.values()])
        print("Options:")
        print()
        _columns(list(GLOBAL_HELP))
        print(f"Run '{PROGRAM} ops <command> --help' for the options of one command.")
        return
    verb = verbs[verb_name]
    print(f"Usage: {PROGRAM} [--config PATH] {verb.usage}")
    print()
    print(verb.doc)
    print()
    print("Options:")
    print()
    if verb.flags:
        _columns([(flag_label(f), f.help) for f in verb.flags])
    else:
        print("  none")
        print()


if __name__ == "__main__":
    main()
