"""The full-covariance Gaussian guide: q(z|x) = N(mu(x), L(x) L(x)^T).

The encoder outputs ``z_dim`` means and the ``z_dim (z_dim + 1) / 2`` entries of a lower
triangular Cholesky factor L(x), whose diagonal is made positive with ``softplus(.) +
min_scale``. Sampling is z = mu + L eps with eps ~ N(0, I), so it reparameterizes; log q costs
one triangular solve.

References: Kingma & Welling (2014), Auto-Encoding Variational Bayes (appendix C.2 discusses
full-covariance encoders).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.nn.functional import softplus

from .base import AmortizedGuide


class FullCovariance(AmortizedGuide):
    """q(z|x) = MultivariateNormal(mu(x), scale_tril=L(x)) with L lower triangular."""

    def __init__(self, x_dim: int, z_dim: int, min_scale: float = 1e-4, **encoder):
        super().__init__(x_dim, z_dim, z_dim + z_dim * (z_dim + 1) // 2, **encoder)
        self.min_scale = min_scale
        rows, cols = torch.tril_indices(z_dim, z_dim)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)

    def loc_scale_tril(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns mu(x) ``[N, z_dim]`` and L(x) ``[N, z_dim, z_dim]``."""
        loc, entries = self.encoder(x).split([self.z_dim, self.z_dim * (self.z_dim + 1) // 2], -1)
        on_diag = self._rows == self._cols
        entries = torch.where(on_diag, softplus(entries) + self.min_scale, entries)
        tril = entries.new_zeros(*entries.shape[:-1], self.z_dim, self.z_dim)
        tril[..., self._rows, self._cols] = entries
        return loc, tril

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        loc, tril = self.loc_scale_tril(x)
        return dist.MultivariateNormal(loc, scale_tril=tril)
