"""The ``kstlib`` Program: invoke's ``Program`` running the same ``ops`` tasks as ``inv ops.*``.

Three adaptations make invoke speak the seed's syntax:

* ``kstlib ops start NAME`` is two words for invoke (two tasks ``ops`` and ``start``): after the
  core options are parsed, :meth:`KstlibProgram.parse_core` merges ``ops`` + verb into the task
  ``ops.start``. Doing it there (not in ``normalize_argv``) means core options before the
  command, ``kstlib --config my.yml ops start x``, are already out of the way.
* invoke's own ``-f/--config`` (its runtime config file, loaded unvalidated, a missing file
  silently ignored) is replaced by ours: the ``kstlib.conf.yml`` to use, a missing file being an
  error that names it. It is also accepted after the command (``kstlib ops list --config x``).
* A positional ``NAME`` swallows ``--help`` (``kstlib ops start --help`` would start a session
  named ``--help``): :meth:`KstlibProgram.parse_tasks` turns that back into the command's help.

Nothing heavy happens before parsing: the config is read, and tmux/podman called, only when a
command runs.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from invoke import Collection, Program
from invoke.exceptions import Exit, ParseError, UnexpectedExit
from invoke.parser import Argument
from invoke.util import enable_logging

from . import __version__
from .errors import INTERRUPTED_EXIT
from .invoke_tasks import (
    HELP_WORDS,
    OPS_DOCS,
    VERBS,
    ConfigSource,
    ops_collection,
    print_task_help,
)

# The core options that still mean something for kstlib (no shell commands are run, so
# invoke's --echo, --dry, --pty, --warn-only... are gone). --list* stay for invoke's machinery.
KEPT_CORE = ("complete", "debug", "help", "list", "list-depth", "list-format",
             "print-completion-script", "version")
SHOWN_CORE = ("config", "debug", "help", "version")

USAGES = {
    "list": "ops list [--json] [--backend tmux|container]",
    "start": "ops start NAME [-b BACKEND] [-c COMMAND] [-i IMAGE] [-e K=V]... [-v VOL]... "
             "[-p PORT]... [-w DIR] [-L SOCKET]",
    "stop": "ops stop NAME [--force] [--timeout SECONDS]",
    "restart": "ops restart NAME [start options] [--force] [--timeout SECONDS]",
    "status": "ops status NAME [--json]",
    "logs": "ops logs NAME [--lines N]",
    "attach": "ops attach NAME",
}


class KstlibProgram(Program):
    """``kstlib [--config PATH] ops <verb> [NAME] [options]``."""

    def __init__(self, source: ConfigSource | None = None):
        self.source = source or ConfigSource()
        namespace = Collection()
        namespace.add_collection(ops_collection(self.source))
        super().__init__(version=__version__, namespace=namespace, name="kstlib",
                         binary="kstlib", binary_names=["kstlib"])

    # ---------------------------------------------------------------- options

    def core_args(self) -> list[Argument]:
        kept = [arg for arg in super().core_args() if arg.name in KEPT_CORE]
        ours = Argument(
            names=("config",),
            help="kstlib.conf.yml to use (default: $KSTLIB_CONFIG, else the nearest "
                 "kstlib.conf.yml from the current folder upward)",
        )
        return [ours, *kept]

    def update_config(self, merge: bool = True) -> None:
        """Hand our --config to the tasks; never load it as invoke's runtime config."""
        path = self.args.config.value
        if path is not None:
            self.source.explicit = path
        if merge:
            self.config.merge()

    # ---------------------------------------------------------------- parsing

    def parse_core(self, argv: list[str] | str | None) -> None:
        self.normalize_argv(argv)
        self.parse_core_args()
        self.merge_command_words()
        if self.args.debug.value:
            enable_logging()
        if self.args.version.value:
            self.print_version()
            raise Exit
        if self.args["print-completion-script"].value:
            from invoke.completion.complete import print_completion_script

            print_completion_script(shell=self.args["print-completion-script"].value,
                                    names=self.binary_names)
            raise Exit

    def merge_command_words(self) -> None:
        """``ops start`` -> ``ops.start`` in the tokens left after the core options."""
        rest = self.core.unparsed
        help_value = self.args.help.value
        if help_value == "ops":  # kstlib --help ops [start]
            if rest and rest[0] in VERBS:
                self.args.help.value = f"ops.{rest.pop(0)}"
            else:
                self.args.help.set_value(True, cast=False)
            return
        if not rest or rest[0] != "ops":
            return
        if len(rest) == 1 or rest[1] in HELP_WORDS:
            self.args.help.set_value(True, cast=False)
            del rest[:]
        elif rest[1] in VERBS:
            rest[0:2] = [f"ops.{rest[1]}"]
        else:
            raise ParseError(
                f"unknown command 'ops {rest[1]}' (commands: {', '.join(VERBS)}; "
                "see: kstlib --help)"
            )

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            command = next((word.replace(".", " ") for word in self.core.unparsed
                            if word.startswith("ops.")), None)
            raise ParseError(_reword(str(exc), command)) from None
        for context in self.tasks:
            for arg in context.positional_args:
                if arg.value in HELP_WORDS:
                    self.args.help.value = context.name

    # ---------------------------------------------------------------- running

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        """invoke's run, except that Ctrl-C exits 130 (as a shell does), not 1."""
        try:
            self.create_config()
            self.parse_core(argv)
            self.parse_collection()
            self.parse_tasks()
            self.parse_cleanup()
            self.update_config()
            self.execute()
        except (UnexpectedExit, Exit, ParseError) as exc:
            code = 1
            if isinstance(exc, ParseError):
                print(f"kstlib: {exc}", file=sys.stderr)
            elif isinstance(exc, Exit):
                if exc.message:
                    print(exc.message, file=sys.stderr)
                code = exc.code
            else:
                code = exc.result.exited
            if exit:
                sys.exit(code)
        except KeyboardInterrupt:
            if exit:
                sys.exit(INTERRUPTED_EXIT)

    # ---------------------------------------------------------------- help

    def print_help(self) -> None:
        print("Usage: kstlib [--config PATH] ops <command> [NAME] [options]")
        print("")
        print("Start, stop and watch the sessions defined in kstlib.conf.yml (tmux or container).")
        print("")
        print("Commands:")
        print("")
        self.print_columns([(USAGES[verb].split(" [")[0], OPS_DOCS[verb]) for verb in VERBS])
        print("Options:")
        print("")
        self.print_columns([self.initial_context.help_for(f"--{name}") for name in SHOWN_CORE])
        print("Run 'kstlib ops <command> --help' for the options of one command.")

    def print_task_help(self, name: str) -> None:
        verb = name.rpartition(".")[2]
        task: Any = self.collection[name]
        print_task_help(task, usage=f"Usage: kstlib [--config PATH] {USAGES.get(verb, name)}")


def _reword(message: str, command: str | None = None) -> str:
    """invoke's parser messages, in the words of this command, with where to read more."""
    see = f"see: kstlib {command} --help" if command else "see: kstlib --help"
    if "did not receive required positional arguments" in message:
        command = message.split("'")[1].replace(".", " ")
        return f"'{command}' needs a session NAME (see: kstlib {command} --help)"
    unknown = re.fullmatch(r"No idea what '(.*)' is!", message)
    if unknown:
        return f"unknown option or extra argument '{unknown[1]}' ({see})"
    no_value = re.fullmatch(r"Flag (\S+) needed value and was not given one!", message)
    if no_value:
        return f"option {no_value[1]} needs a value ({see})"
    return message
