"""Log importance weights log w[k, n] = log p(x_n, z_k) - log q(z_k | x_n) from Pyro traces.

The guide is traced under a vectorized particle plate, the model is replayed on the guide's
trace, and each site's log density is summed over its event and every batch dimension except
the particle dimension and the ``"data"`` plate. Particles are drawn in chunks, so memory is
bounded by the chunk size, not by K.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pyro
import pyro.poutine as poutine
import torch

from ..errors import InputError
from ..objectives.tracing import PARTICLE_PLATE, is_scored, per_point


def max_plate_nesting(model: Callable, guide: Callable, x: torch.Tensor) -> int:
    """The number of plate dimensions the model and guide use, found by tracing them once
    (on a forked RNG, so that the draws that follow do not depend on this probe)."""
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.no_grad(), poutine.block(), torch.random.fork_rng(devices=devices):
        guide_tr = poutine.trace(guide).get_trace(x)
        model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(x)
    dims = [
        -f.dim
        for tr in (guide_tr, model_tr)
        for site in tr.nodes.values()
        if is_scored(site)
        for f in site["cond_indep_stack"]
        if f.vectorized
    ]
    return max(dims, default=0)


def _chunk(model: Callable, guide: Callable, x: torch.Tensor, c: int, nesting: int) -> torch.Tensor:
    n = x.shape[0]
    with pyro.plate(PARTICLE_PLATE, c, dim=-(nesting + 1)):
        guide_tr = poutine.trace(guide).get_trace(x)
        model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(x)
    log_w = x.new_zeros(c, n)
    for tr, sign in ((model_tr, 1.0), (guide_tr, -1.0)):
        for site in tr.nodes.values():
            if not is_scored(site) or (sign < 0 and site["is_observed"]):
                continue  # plates are recorded as sample sites too
            lp = per_point(site["fn"].log_prob(site["value"]), site, nesting)
            log_w = log_w + sign * lp.expand(c, n)
    return log_w


def iter_log_weights(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_particles: int,
    chunk_size: int | None = None,
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
    nesting = max_plate_nesting(model, guide, x[:1])
    reuse = getattr(guide, "reusing_distribution", contextlib.nullcontext)  # encoder once
    with torch.no_grad(), reuse():
        for start in range(0, num_particles, chunk):
            yield _chunk(model, guide, x, min(chunk, num_particles - start), nesting)


def log_weights(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    num_particles: int,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Log importance weights ``[K, N]``: log p(x_n, z_k) - log q(z_k | x_n), z_k ~ q(z | x_n).

    Works for any model and guide that sample their latents (any number of sites) and observe
    ``"x"`` inside ``pyro.plate("data", N)``. Particles are vectorized under a plate, in chunks
    of ``chunk_size`` (default: all K at once) so that memory is bounded by the chunk.

    References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    """
    return torch.cat(list(iter_log_weights(model, guide, x, num_particles, chunk_size)))
