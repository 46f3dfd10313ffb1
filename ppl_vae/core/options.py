"""Values and option tables checked against the types and signatures they are passed to.

The one checker of the toolkit. ``check_value`` checks a value against a type annotation (and
promotes an int where a float is expected): the recipe's dataclass fields use it, and so do
the free-form option tables (``data.options``, ``model.likelihood_options``, ``guide.options``,
``objective.options``), whose entries become keyword arguments of a registered class or
builder. ``check_options`` checks such a table against the parameters that class or builder
declares, and ``checked_lookup`` finds a registry entry by name and checks its options. The
recipe checks and the builders call the same function, so a wrong key gets the same message
(the same "did you mean") whether it comes from a TOML file or from Python.
"""

from __future__ import annotations

import collections.abc
import inspect
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import InputError, RecipeError
from .registry import did_you_mean, lookup

T = TypeVar("T")

_SEQUENCES = (list, tuple, collections.abc.Sequence)
_MAPPINGS = (dict, collections.abc.Mapping)
# An __init__ from these packages takes no options (nn.Module's, PyroModule's, object's).
_NO_OPTIONS = ("torch", "pyro", "builtins")


def parameters(fn: Callable, keyword_only: bool = False) -> dict[str, Any]:
    """The keyword parameters ``fn`` declares (a class: its ``__init__``), as
    ``{name: annotation}`` in signature order; with ``keyword_only``, only those after ``*``.

    A ``**kwargs`` adds nothing: what it carries (a guide's encoder settings, say) is filled in
    by the builder that calls ``fn``, not taken from an option table."""
    if isinstance(fn, type):
        fn = next(vars(c)["__init__"] for c in fn.__mro__ if "__init__" in vars(c))
        if getattr(fn, "__module__", "").split(".")[0] in _NO_OPTIONS:
            return {}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return {}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be resolved: check names only
        hints = {}
    kinds = (inspect.Parameter.KEYWORD_ONLY,)
    if not keyword_only:
        kinds += (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
    return {
        name: hints.get(name, Any)
        for name, p in sig.parameters.items()
        if name != "self" and p.kind in kinds
    }


def check_value(
    value: Any, tp: Any, key: str, source: str = "", error: type[Exception] | None = None
) -> Any:
    """Returns ``value`` (an int promoted to float where ``tp`` is float, a sequence as a list),
    or raises ``error`` (as in ``check_options``) naming ``key`` and ``source``, the file, when
    it does not fit ``tp``. Types TOML cannot spell (a ``Path``, a tensor) are not checked."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in _SEQUENCES or origin in _SEQUENCES:
        item = args[0] if args else Any
        if not isinstance(value, list | tuple):
            raise _error(
                source, f"key '{key}' must be a list of {_show(item)}, got {value!r}.", error
            )
        return [check_value(v, item, f"{key}[{i}]", source, error) for i, v in enumerate(value)]
    if tp in _MAPPINGS or origin in _MAPPINGS:
        if not isinstance(value, Mapping):
            raise _error(source, f"key '{key}' must be a table, got {value!r}.", error)
        return dict(value)
    fits, converted = _convert(value, tp)
    if not fits:
        raise _error(
            source,
            f"key '{key}' must be of type {_show(tp)}, got {value!r} ({type(value).__name__}).",
            error,
        )
    return converted


def check_options(
    fn: Callable,
    options: Mapping[str, Any],
    *,
    key: str,
    owner: str,
    source: str = "",
    reserved: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    others: Mapping[str, Callable] | None = None,
    error: type[Exception] | None = None,
) -> None:
    """Raises an error unless every entry of ``options`` is a keyword parameter of ``fn`` (or
    of ``extra``, ``{name: annotation}`` added by the builder) whose annotation its value fits.

    ``key`` is the table's recipe key (``guide.options``), ``owner`` what takes it
    (``guide 'iaf'``), ``source`` the file, if any. ``reserved`` maps parameters set elsewhere
    to where (``{"hidden": "guide.encoder.hidden"}``); ``others``, the registry ``fn`` is in,
    turns an option that only other entries take into "does not apply to <owner>; choose ...".
    The error is ``error``, else a RecipeError with a ``source`` and an InputError without."""
    reserved = dict(reserved or {})
    names = {**parameters(fn), **(extra or {})}
    valid = [n for n in names if n not in reserved]
    takes = f"its options: {', '.join(map(repr, valid))}" if valid else "it takes no options"
    for name, value in options.items():
        full = f"{key}.{name}"
        if name in reserved:
            raise _error(
                source,
                f"key '{full}' cannot be set here: it comes from {reserved[name]}. "
                f"Remove it from {key}.",
                error,
            )
        if name not in names:
            fits = [n for n, f in (others or {}).items() if name in parameters(f)]
            if fits:
                raise _error(
                    source,
                    f"key '{full}' does not apply to {owner} ({takes}); remove it or choose "
                    f"{'one of ' if len(fits) > 1 else ''}{', '.join(map(repr, fits))}.",
                    error,
                )
            raise _error(
                source,
                f"unknown key '{full}'.{did_you_mean(name, valid, f'{key}.')} {owner} has no "
                f"option {name!r}; {takes}.",
                error,
            )
        check_value(value, names[name], full, source, error)


def checked_lookup(
    registry: Mapping[str, T],
    name: str,
    what: str,
    options: Mapping[str, Any],
    key: str,
    source: str = "",
    reserved: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    error: type[Exception] | None = None,
) -> T:
    """``registry[name]`` (an UnknownNameError with the closest name if there is none), with
    ``options`` checked against it by ``check_options``: what a builder does before it builds,
    and what a recipe check does for every name and option table."""
    fn = lookup(registry, name, what)
    check_options(
        fn,
        options,
        key=key,
        owner=f"{what} {name!r}",
        source=source,
        reserved=reserved,
        extra=extra,
        others=registry,
        error=error,
    )
    return fn


def _convert(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits ``tp``, and the value converted to it."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return True, check_value(value, arm, "")
            except InputError:
                pass
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool) and tp in (int, float):
        return False, value  # True is an int to Python, never a count or a rate to a recipe
    if tp is int:
        return isinstance(value, numbers.Integral), value
    if tp is float:
        return isinstance(value, numbers.Real), float(value) if isinstance(value, int) else value
    if tp is str:
        return isinstance(value, str), value
    return True, value


def _error(source: str, message: str, error: type[Exception] | None = None) -> Exception:
    error = error or (RecipeError if source else InputError)
    return error(f"{source}: {message}" if source else message)


def _show(tp: Any) -> str:
    """An annotation as a recipe author reads it: ``int``, ``list[int] | None``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(map(_show, args))
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return " | ".join(map(repr, args))
    if origin in _SEQUENCES:
        return f"list[{_show(args[0])}]" if args else "list"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
