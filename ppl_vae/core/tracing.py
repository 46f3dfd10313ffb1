"""Particle traces, per data point: the one place that traces a guide and replays the model.

For a model p(x, z) and a guide q(z|x) whose sites lie inside ``pyro.plate("data", N)``:

1. ``max_plate_nesting`` probes, with one trace on a forked RNG, how many plate dimensions
   they use; ``settle_plate_nesting`` hands that number to Pyro losses that would guess it;
2. ``trace_particles`` traces the guide under a vectorized plate of P particles at the dimension
   left of those plates, and replays the model on the guide's latent values;
3. ``per_point`` sums a site's log density over everything but the particle and data
   dimensions, ``[P, N]``, and ``log_weight`` gives, from those,

       log w[p, n] = sum_{s in model} log p_s(v_s) - sum_{s latent} log q_s(z_s),

   i.e. log p(x_n, z_p) - log q(z_p | x_n) for z_p ~ q(z | x_n).

The objectives (``base.Particles``) and the bounds (``bounds.log_weights``) both use these.

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders; Pyro's
``ELBO`` (vectorize_particles), whose particle plate and plate-nesting convention this follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer import ELBO
from pyro.poutine.trace_struct import Trace
from pyro.poutine.util import site_is_subsample

from .contract import Wraps, has
from .errors import SiteError

DATA_PLATE = "data"
PARTICLE_PLATE = "num_particles_vectorized"


def is_latent(site: dict) -> bool:
    """True for a sample site that is neither observed nor a plate's subsample site."""
    return site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)


def is_scored(site: dict) -> bool:
    """True for a sample site that has a log density (latent or observed, not a plate)."""
    return site["type"] == "sample" and not site_is_subsample(site)


def per_point(t: torch.Tensor, site: dict, plates: int, keep: int = 0) -> torch.Tensor:
    """Sums ``t`` (the site's batch dims plus ``keep`` trailing dims) to ``[P, N, *kept]``.

    ``plates`` is the number of plate dimensions inside the particle plate; the result's first
    dimension is 1 where ``t`` does not vary over particles, and so is its second where ``t``
    does not vary over data points.
    """
    data_dim = next((f.dim for f in site["cond_indep_stack"] if f.name == DATA_PLATE), None)
    if data_dim is None:
        raise SiteError(
            f"sample site '{site['name']}' is not inside pyro.plate('{DATA_PLATE}', N); "
            f"per-data-point quantities need every latent and observed site under that plate."
        )
    n = plates + 1
    if t.dim() - keep > n:
        raise SiteError(
            f"sample site '{site['name']}' has batch dimensions {list(t.shape)} beyond its "
            f"plates; declare event dimensions with .to_event()."
        )
    kept = t.shape[t.dim() - keep :]
    t = t.reshape((1,) * (n + keep - t.dim()) + t.shape)
    other = [d for d in range(1, n) if d != n + data_dim]
    if other:
        t = t.sum(other, keepdim=True)
    return t.reshape(t.shape[0], t.shape[n + data_dim], *kept)


def site_log_prob(
    site: dict, plates: int, value: torch.Tensor | None = None, scaled: bool = True
) -> torch.Tensor:
    """log f(value) of a traced site (at its own value by default), ``[P, N]``; ``scaled``
    applies the site's scale and mask, as Pyro's losses do (the KL warm-up scales sites)."""
    lp = site["fn"].log_prob(site["value"] if value is None else value)
    if scaled:
        lp = scale_and_mask(lp, site["scale"], site["mask"])
    return per_point(lp, site, plates)


def log_weight(
    model_trace: Trace,
    guide_trace: Trace,
    values: dict[str, torch.Tensor],
    plates: int,
    scaled: bool = True,
) -> torch.Tensor:
    """log w ``[P, N]``: the model's log densities minus the guide's at ``values``, site by site
    in trace order (the guide's may be a re-run, e.g. with detached parameters)."""
    log_w = 0.0
    for site in model_trace.nodes.values():
        if is_scored(site):
            log_w = log_w + site_log_prob(site, plates, scaled=scaled)
    for name, v in values.items():
        log_w = log_w - site_log_prob(guide_trace.nodes[name], plates, v, scaled)
    return log_w


def _cuda_devices(args: tuple) -> list[int]:
    return sorted({a.device.index or 0 for a in args if torch.is_tensor(a) and a.is_cuda})


def max_plate_nesting(model: Callable, guide: Callable, *args, **kwargs) -> int:
    """The number of plate dimensions the model and guide use, found by tracing them once on a
    forked RNG, so that the draws that follow do not depend on this probe."""
    devices = _cuda_devices(args + tuple(kwargs.values()))
    with torch.no_grad(), poutine.block(), torch.random.fork_rng(devices=devices):
        guide_tr = poutine.trace(guide).get_trace(*args, **kwargs)
        model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(*args, **kwargs)
    dims = [
        -f.dim
        for tr in (guide_tr, model_tr)
        for site in tr.nodes.values()
        if is_scored(site)
        for f in site["cond_indep_stack"]
        if f.vectorized
    ]
    return max(dims, default=0)


def settle_plate_nesting(loss: object, model: Callable, guide: Callable, *args, **kwargs) -> None:
    """Sets ``max_plate_nesting`` (Pyro's public attribute) on a vectorized ``ELBO`` that has
    none yet, and on the losses it wraps as ``loss.base`` (``KLWarmup``, ``FreeBits``).

    Pyro guesses it at the first step by running the guide, which draws random numbers, and the
    first step comes at a different point of a resumed run; the probe here draws nothing. Pyro's
    convention: one more dimension for the particle plate when there are several particles.
    """
    nesting = None
    while isinstance(loss, ELBO):
        if loss.vectorize_particles and loss.max_plate_nesting == math.inf:
            if nesting is None:
                nesting = max_plate_nesting(model, guide, *args, **kwargs)
            loss.max_plate_nesting = nesting + (1 if loss.num_particles > 1 else 0)
        loss = loss.base if has(loss, Wraps) else None


def particle_plate(num_particles: int, plates: int) -> pyro.plate:
    """The vectorized particle plate, left of the ``plates`` plate dimensions."""
    return pyro.plate(PARTICLE_PLATE, num_particles, dim=-(plates + 1))


@dataclass
class Traced:
    """A guide trace of P particles and the model trace replayed on its latent ``values``."""

    guide_trace: Trace
    model_trace: Trace
    values: dict[str, torch.Tensor]
    plates: int


def trace_particles(
    model: Callable,
    guide: Callable,
    num_particles: int,
    plates: int,
    args: tuple,
    kwargs: dict,
    clone_latents: bool = False,
) -> Traced:
    """Traces the guide under the particle plate and replays the model on its latent values.

    With ``clone_latents`` the model gets copies of the latent values (the trace returned for
    the guide holds them too), so that a hook on a copy sees only the gradient through the
    model and log q (DReG).
    """
    plate = particle_plate(num_particles, plates)
    guide_tr = poutine.trace(plate(guide)).get_trace(*args, **kwargs)
    values = {name: site["value"] for name, site in guide_tr.nodes.items() if is_latent(site)}
    if clone_latents:
        guide_tr = guide_tr.copy()
        for name, v in values.items():
            values[name] = v.clone()
            guide_tr.nodes[name] = dict(guide_tr.nodes[name], value=values[name])
    model_tr = poutine.trace(poutine.replay(plate(model), trace=guide_tr)).get_trace(
        *args, **kwargs
    )
    for name, site in model_tr.nodes.items():
        if is_latent(site) and name not in values:
            raise SiteError(f"model site '{name}' is latent but the guide does not sample it.")
    return Traced(guide_tr, model_tr, values, plates)
