"""Explicit checks on data; they run whatever the Pyro validation setting, even under -O."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import pyro
import torch

from ..core.contract import ChecksData, QuietChecks, has
from ..core.errors import DataError


def check_finite(x: torch.Tensor) -> tuple[float, float]:
    """Raises DataError when ``x`` holds NaN or Inf; returns its smallest and largest value."""
    if x.numel() == 0:
        return 0.0, 0.0
    lo, hi = (float(v) for v in torch.aminmax(x))  # one pass; NaN and Inf show in the extremes
    if not (math.isfinite(lo) and math.isfinite(hi)):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise DataError(
            f"data hold {n_nan} NaN and {n_inf} Inf values; clean or drop those data points "
            f"before training or evaluation."
        )
    return lo, hi


def check_batch(x: torch.Tensor, x_dim: int) -> None:
    """Raises DataError unless ``x`` is a non-empty float tensor of shape ``[N, x_dim]``."""
    if not isinstance(x, torch.Tensor):
        raise DataError(f"data must be a torch.Tensor of shape [N, {x_dim}], got {type(x)}.")
    if x.dim() != 2 or x.shape[-1] != x_dim:
        raise DataError(
            f"data must have shape [N, {x_dim}] (one flattened data point per row), got "
            f"{list(x.shape)}; flatten images with x.reshape(len(x), -1)."
        )
    if x.shape[0] == 0:
        raise DataError("the data are empty (N = 0); pass at least one data point.")
    if not x.is_floating_point():
        raise DataError(f"data must be floating point, got {x.dtype}; use x.float().")


@contextlib.contextmanager
def checked_once(model: Callable, *xs: torch.Tensor) -> Iterator[None]:
    """Checks each data tensor once (the model's ``check``, else finiteness), then runs the
    block with the model's per-call data checks and Pyro's validation off: the hot loop of
    training or evaluation then pays for neither."""
    check = model.check if has(model, ChecksData) else check_finite
    for x in xs:
        if len(x):
            check(x)
    quiet = model.data_checks_off() if has(model, QuietChecks) else contextlib.nullcontext()
    with quiet, pyro.validation_enabled(False):
        yield
