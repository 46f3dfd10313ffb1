"""torch's intra-op threads for one job: ``train.threads`` and every command's ``--threads``.

On a machine whose cores other jobs also use, torch's threads wait on each other at every small
operation; one thread per job is then much faster than the default of one per core
(docs/performance.md measures it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T")


def check_threads(threads: object) -> None:
    """``threads`` is a whole number >= 0 (0: torch's default)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InputError(
            f"threads must be a whole number >= 1, or 0 for torch's default (one per core); "
            f"got {threads!r}. On a machine shared with other jobs, use 1."
        )


@contextlib.contextmanager
def using_threads(threads: int) -> Iterator[None]:
    """Inside the block torch runs ``threads`` intra-op threads (0: as it is); the previous
    count comes back after."""
    import torch

    check_threads(threads)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads:
            torch.set_num_threads(previous)


def in_threads(fn: Callable[..., T]) -> Callable[..., T]:
    """Runs ``fn`` with torch at its ``threads`` keyword (``using_threads``); ``fn`` keeps the
    keyword in its signature and documents it."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        with using_threads(kwargs.get("threads", 0)):
            return fn(*args, **kwargs)

    return run
