"""Data simulated from a model's joint distribution, with the latents that generated it: the
ground truth of bidirectional Monte Carlo (``bdmc.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pyro.poutine as poutine
import torch

from ..core.contract import Samples, has
from ..core.errors import InputError
from ..core.tracing import is_latent
from ..model.checks import checked_once


def simulate(
    model: Callable, n: int, like: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Draws ``(x, z)`` from p(x, z): ``x[n, ...]`` and a dict from each latent site to its
    values. The model is run unconditioned on a placeholder batch shaped like one row of
    ``like`` (default: zeros ``[n, model.x_dim]`` in the dtype of the model's parameters)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n must be an integer >= 1, got {n!r}.")
    if like is None:
        if not has(model, Samples):
            raise InputError("pass like=<a data tensor>: the model has no x_dim to shape x by.")
        p = next(model.parameters(), torch.zeros(()))
        like = torch.zeros(1, model.x_dim, dtype=p.dtype, device=p.device)
    x0 = like[:1].new_zeros(n, *like.shape[1:])
    with torch.no_grad(), checked_once(model, x0):
        tr = poutine.trace(poutine.uncondition(model)).get_trace(x0)
    if "x" not in tr.nodes:
        raise InputError("the model has no site 'x'; the toolkit's models observe the data there.")
    z = {name: s["value"] for name, s in tr.nodes.items() if is_latent(s) and name != "x"}
    return tr.nodes["x"]["value"], z
