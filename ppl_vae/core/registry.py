"""Name lookups in the toolkit's registries, with errors that list the valid names, and the one
"did you mean" that every such error uses."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """Returns ``table[name]``, or raises an error listing valid names and the closest one."""
    try:
        return table[name]
    except (KeyError, TypeError):
        pass
    raise UnknownNameError(
        f"unknown {what} {name!r}.{did_you_mean(name, table)} Valid names: "
        f"{', '.join(sorted(table))}."
    )


def did_you_mean(name: object, valid: Iterable[str], prefix: str = "") -> str:
    """`` Did you mean '<prefix><closest>'?`` for the valid name closest to ``name``, or ""."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" Did you mean '{prefix}{close[0]}'?" if close else ""
