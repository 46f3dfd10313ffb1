"""Per-data-point log densities from Pyro traces, shared by the objectives and the bounds.

Under a vectorized particle plate, a site's log density has batch dimensions
``[P, ..plates.., N at the data plate, ..]``; ``per_point`` sums every dimension except the
particle and data dimensions (never the data plate), giving ``[P, N]``.
"""

from __future__ import annotations

import torch
from pyro.poutine.util import site_is_subsample

from ..errors import SiteError

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
