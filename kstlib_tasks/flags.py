"""One command-line flag, declared once and used by both front ends (``kstlib`` and ``inv``).

A plain class with slots, not a dataclass: this module is imported on every ``inv`` call, and a
dataclass costs a code generation at import time.
"""

from __future__ import annotations


class Flag:
    """A verb's option (or its positional NAME), with what both parsers need to know.

    ``kind`` is ``str``, ``int``, ``float``, ``bool`` or ``list`` (repeatable); ``field`` names
    the shared validation rule applied to the value (``lines``, ``timeout``...), so a bad value
    is refused with the same words everywhere. ``dest`` is the keyword the handler receives.
    """

    __slots__ = ("dest", "field", "help", "kind", "metavar", "name", "positional", "short")

    def __init__(self, name: str, short: str | None = None, help: str = "", kind: type = str,
                 field: str | None = None, positional: bool = False, metavar: str | None = None,
                 dest: str | None = None):
        self.name = name
        self.short = short
        self.help = help
        self.kind = kind
        self.field = field
        self.positional = positional
        self.metavar = metavar or ("" if kind is bool else name.upper().replace("-", "_"))
        self.dest = dest or name.replace("-", "_")

    def __repr__(self) -> str:
        return f"Flag(--{self.name})"
