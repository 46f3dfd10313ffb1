"""Per-epoch measures of the latent space, for training logs: posterior collapse as it happens.

``fit(log_latent=True)`` (recipe: ``train.log_latent = true``) adds to each row of
``metrics.csv`` the active units and the KL, and ``fit(tensorboard=True)`` draws the KL per unit,
both measured by ``epoch_latent`` on the first ``WATCH_POINTS`` validation points (test or
training points when there is no validation split). The measures draw from a forked RNG, so
logging them leaves the training run exactly as it would be without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..core.rng import forked_rng
from .kl import kl_per_unit
from .units import THRESHOLD, posterior_means, unit_variance

WATCH_POINTS = 1000  # data points measured after each epoch
WATCH_SAMPLES = 20  # guide samples where there is no closed form: cheap, as it runs per epoch


@torch.no_grad()
def epoch_latent(
    model: Callable, guide: Callable, x: torch.Tensor, seed: int = 0
) -> tuple[dict[str, float | int], dict[str, torch.Tensor]]:
    """The row entries ``active_units`` and ``kl`` (summed over latent sites) over ``x``, and
    the KL per unit of each site (``{site: [d]}``, for a dashboard)."""
    x = x[:WATCH_POINTS]
    with forked_rng(x.device, seed):
        means = posterior_means(guide, x, num_samples=WATCH_SAMPLES)
        kls = kl_per_unit(model, guide, x, num_samples=WATCH_SAMPLES)
    active = sum(int((unit_variance(means, s) > THRESHOLD).sum()) for s in means.mean)
    row = {"active_units": active, "kl": sum(k.total for k in kls.values())}
    per_unit = {s: k.per_unit for s, k in kls.items() if k.per_unit is not None}
    return row, per_unit


def watch_points(data: Any) -> torch.Tensor:
    """The points ``epoch_latent`` measures: validation points, else test, else training."""
    x = next((s for s in (data.valid, data.test) if len(s) >= 2), data.train)
    return x[:WATCH_POINTS]
