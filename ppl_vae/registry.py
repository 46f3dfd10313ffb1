"""Name lookups in the toolkit's registries, with errors that list the valid names."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, what: str) -> T:
    """Returns ``table[name]``, or raises an error listing valid names and the closest one."""
    try:
        return table[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(table), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UnknownNameError(
        f"unknown {what} {name!r}.{hint} Valid names: {', '.join(sorted(table))}."
    )
