"""Log importance weights log w[k, n] = log p(x_n, z_k) - log q(z_k | x_n) from Pyro traces.

The guide is traced under a vectorized particle plate, the model is replayed on the guide's
trace, and each site's log density is summed over its event and every batch dimension except
the particle dimension and the ``"data"`` plate (``core.tracing``, shared with the
objectives). Particles are drawn in chunks, so memory is bounded by the chunk size, not by K.

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..core.contract import SumsOutLabel, has, reusing
from ..core.errors import InputError
from ..core.tracing import log_weight, max_plate_nesting, trace_particles


def _chunk(
    model: Callable, guide: Callable, x: torch.Tensor, c: int, nesting: int, cond=None
) -> torch.Tensor:
    values = model.summed_cond(x) if cond is None and has(model, SumsOutLabel) else None
    if values is not None:  # log sum_y w_y: each w_y estimates p(x, y) with q(z | x, y)
        return torch.stack([_chunk(model, guide, x, c, nesting, y) for y in values]).logsumexp(0)
    t = trace_particles(model, guide, c, nesting, (x,), {} if cond is None else {"cond": cond})
    # Unscaled: each point's own log p(x_n, z) - log q(z | x_n), whatever a plate's scale says.
    log_w = log_weight(t.model_trace, t.guide_trace, t.values, nesting, scaled=False)
    return x.new_zeros(c, x.shape[0]) + log_w


def iter_log_weights(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_particles: int,
    chunk_size: int | None = None,
    cond: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Yields log weights in chunks ``[C, N]`` of at most ``chunk_size`` particles, K in all."""
    if not isinstance(num_particles, int) or num_particles < 1:
        raise InputError(
            f"num_particles (K) must be an integer >= 1, got {num_particles!r}; K = 1 gives the "
            f"ELBO, larger K the tighter IWAE bound."
        )
    chunk = num_particles if chunk_size is None else chunk_size
    if not isinstance(chunk, int) or chunk < 1:
        raise InputError(f"chunk_size must be an integer >= 1 or None, got {chunk_size!r}.")
    given = {} if cond is None else {"cond": cond[:1]}
    nesting = max_plate_nesting(model, guide, x[:1], **given)
    with torch.no_grad(), reusing(guide):  # the encoder once
        for start in range(0, num_particles, chunk):
            yield _chunk(model, guide, x, min(chunk, num_particles - start), nesting, cond)


def log_weights(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_particles: int,
    chunk_size: int | None = None,
    cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log importance weights ``[K, N]``: log p(x_n, z_k) - log q(z_k | x_n), z_k ~ q(z | x_n).

    Works for any model and guide that sample their latents (any number of sites) and observe
    ``"x"`` inside ``pyro.plate("data", N)``. Particles are vectorized under a plate, in chunks
    of ``chunk_size`` (default: all K at once) so that memory is bounded by the chunk.

    A conditioning input ``cond`` (one row per data point: a label, the given part of an image)
    is passed to the model and guide as ``cond=``, and the weights bound log p(x | cond); None
    gives exactly the unconditional weights. A model with a discrete latent summed out
    exactly (M2's label) names its values in ``model.summed_cond(x)``; with ``cond`` None each
    particle's weight is then sum_y w_y, w_y = p(x, y, z_y) / q(z_y | x, y), z_y ~ q(z | x, y),
    whose expectation is p(x): every estimator applies unchanged.

    References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    """
    return torch.cat(list(iter_log_weights(model, guide, x, num_particles, chunk_size, cond)))
