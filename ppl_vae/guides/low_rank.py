"""The low-rank-plus-diagonal Gaussian guide: q(z|x) = N(mu(x), F(x) F(x)^T + diag(d(x))).

The encoder outputs the mean, a ``z_dim x rank`` factor F and a positive diagonal
d = (softplus(.) + min_scale)^2. The covariance captures ``rank`` directions of correlation at
O(z_dim rank) cost per data point, between the diagonal (rank 0) and the full covariance.

References: Rezende, Mohamed & Wierstra (2014), Stochastic Backpropagation and Approximate
Inference in Deep Generative Models (rank-one covariance, section 4.2).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.nn.functional import softplus

from ..core.errors import InputError
from .base import AmortizedGuide


class LowRankNormal(AmortizedGuide):
    """q(z|x) = LowRankMultivariateNormal(mu(x), F(x), d(x)), F of shape ``[z_dim, rank]``."""

    def __init__(self, x_dim: int, z_dim: int, rank: int = 2, min_scale: float = 1e-4, **encoder):
        if not 1 <= rank <= z_dim:
            raise InputError(f"guide option rank must be in [1, z_dim = {z_dim}], got {rank}.")
        super().__init__(x_dim, z_dim, z_dim * (rank + 2), **encoder)
        self.rank = rank
        self.min_scale = min_scale
        # F and -F give the same covariance: a factor that starts with random signs across x
        # gets stuck at F = 0 where the signs meet, so F starts the same for every x.
        self.start_independent_of_x(slice(z_dim, z_dim * (rank + 1)))

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        d = self.z_dim
        loc, factor, raw = self.encoder(x).split([d, d * self.rank, d], dim=-1)
        factor = factor.reshape(*factor.shape[:-1], d, self.rank)
        diag = (softplus(raw) + self.min_scale).square()
        return dist.LowRankMultivariateNormal(loc, factor, diag)
