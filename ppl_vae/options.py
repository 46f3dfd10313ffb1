"""A recipe's option tables checked against what they are passed to, before anything is built.

``guide.options``, ``objective.options``, ``model.likelihood_options`` and ``data.options`` are
free-form tables: each becomes keyword arguments of a registered class or builder. Without a
check, a misspelt key or a string where a number belongs fails deep inside the builder or the
first training step. ``check_options`` reads the builder's signature (a class's ``__init__``,
following ``**kwargs`` up to its base classes) and its type annotations, and raises a
``RecipeError`` naming the key, the file and the fix.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .runs.recipe import RecipeError

_OPEN = inspect.Parameter.VAR_KEYWORD


def accepted(fn: Callable) -> tuple[dict[str, Any], bool]:
    """The keyword arguments ``fn`` accepts, as ``{name: annotation}``, and whether that list is
    complete (False when a ``**kwargs`` goes where it cannot be followed)."""
    if isinstance(fn, type):
        inits = [vars(c)["__init__"] for c in fn.__mro__ if "__init__" in vars(c)]
    else:
        inits = [fn]
    names: dict[str, Any] = {}
    for f in inits:
        if getattr(f, "__module__", "").split(".")[0] in ("torch", "builtins"):
            return names, True  # nn.Module.__init__ and object.__init__ take no options
        try:
            sig = inspect.signature(f)
        except (TypeError, ValueError):
            return names, False
        try:
            hints = typing.get_type_hints(f)
        except Exception:  # an annotation that cannot be resolved: check names only
            hints = {}
        for name, p in sig.parameters.items():
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.setdefault(name, hints.get(name, Any))
        if not any(p.kind is _OPEN for p in sig.parameters.values()):
            return names, True
        if not isinstance(fn, type):
            return names, False  # a function's **kwargs may go anywhere
    return names, True


def check_options(
    fn: Callable,
    options: Mapping[str, Any],
    key: str,
    source: str,
    reserved: Mapping[str, str] | None = None,
    names_only_of_fn: bool = True,
) -> None:
    """Raises RecipeError unless every entry of ``options`` is a keyword argument of ``fn`` whose
    annotation its value fits. ``reserved`` maps arguments the recipe sets elsewhere to where.
    With ``names_only_of_fn=False``, names ``fn`` does not declare are left to the code that
    calls it (it may take options of its own); only the types of declared ones are checked."""
    names, complete = accepted(fn)
    complete = complete and names_only_of_fn
    reserved = dict(reserved or {})
    valid = sorted(set(names) - set(reserved))
    for name, value in options.items():
        full = f"{key}.{name}"
        if name in reserved:
            raise RecipeError(
                f"{source}: key '{full}' cannot be set here: it comes from {reserved[name]}. "
                f"Remove it from {key}."
            )
        if name not in names:
            if not complete:
                continue
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean '{key}.{close[0]}'?" if close else ""
            raise RecipeError(
                f"{source}: unknown key '{full}'.{hint} Valid keys here: "
                f"{', '.join(valid) if valid else '(none: it takes no options)'}."
            )
        if not _fits(value, names[name]):
            raise RecipeError(
                f"{source}: key '{full}' must be of type {_show(names[name])}, got {value!r} "
                f"({type(value).__name__})."
            )


def _fits(value: Any, tp: Any) -> bool:
    """Whether a TOML value fits an annotation; types TOML cannot spell are not checked."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    sequences = (list, tuple, collections.abc.Sequence)
    if tp in sequences or origin in sequences:
        return isinstance(value, list) and (not args or all(_fits(v, args[0]) for v in value))
    if tp is dict or origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _show(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
