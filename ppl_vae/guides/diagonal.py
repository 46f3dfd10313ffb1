"""The diagonal-Gaussian guide: q(z|x) = N(mu(x), diag(sigma(x)^2)), the standard VAE encoder.

References: Kingma & Welling (2014), Auto-Encoding Variational Bayes.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.nn.functional import softplus

from .base import AmortizedGuide


class DiagonalNormal(AmortizedGuide):
    """q(z|x) = N(mu(x), diag(sigma(x)^2)) with sigma = softplus(.) + min_scale."""

    def __init__(self, x_dim: int, z_dim: int, min_scale: float = 1e-4, **encoder):
        super().__init__(x_dim, z_dim, 2 * z_dim, **encoder)
        self.min_scale = min_scale

    def loc_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns mu(x) and sigma(x), each ``[N, z_dim]``."""
        loc, raw = self.encoder(x).split(self.z_dim, dim=-1)
        return loc, softplus(raw) + self.min_scale

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        loc, scale = self.loc_scale(x)
        return dist.Normal(loc, scale).to_event(1)
