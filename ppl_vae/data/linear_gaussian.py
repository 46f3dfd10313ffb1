"""A linear-Gaussian model (probabilistic PCA) with exact log p(x) and an exact posterior: the
exact answers the tests lean on. ``ppl_vae.model.linear_vae(truth)`` is the same model as a
``VAE``, and ``ppl_vae.guides.ExactPosterior(truth)`` samples its exact posterior.

z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D). Then
log p(x) = log N(x; b, W W^T + s^2 I) and p(z|x) = N(M^{-1} W^T (x - b) / s^2, M^{-1}),
with M = I + W^T W / s^2.

References: Tipping & Bishop (1999), Probabilistic Principal Component Analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

from ..core.errors import InputError


@dataclass(frozen=True)
class LinearGaussian:
    """The exact answers of the model x = W z + b + s * eps: ``W [D, d]``, ``b [D]``, ``s > 0``."""

    W: torch.Tensor
    b: torch.Tensor
    s: float

    @property
    def z_dim(self) -> int:
        return self.W.shape[1]

    @property
    def x_dim(self) -> int:
        return self.W.shape[0]

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(b, W W^T + s^2 I)."""
        eye = torch.eye(self.x_dim, dtype=self.W.dtype, device=self.W.device)
        return MultivariateNormal(self.b, self.W @ self.W.T + self.s**2 * eye)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) per data point, ``[N]``."""
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """The exact posterior p(z|x), batch shape ``[N]``."""
        eye = torch.eye(self.z_dim, dtype=self.W.dtype, device=self.W.device)
        precision = eye + self.W.T @ self.W / self.s**2
        cov = torch.linalg.inv(precision)
        mean = (x - self.b) @ self.W @ cov.T / self.s**2
        return MultivariateNormal(mean, covariance_matrix=cov.expand(len(x), -1, -1))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws ``n`` data points ``[n, D]``."""
        kw = dict(dtype=self.W.dtype, device=self.W.device, generator=generator)
        z = torch.randn(n, self.z_dim, **kw)
        return z @ self.W.T + self.b + self.s * torch.randn(n, self.x_dim, **kw)

    @classmethod
    def random(
        cls,
        x_dim: int = 10,
        z_dim: int = 2,
        noise: float = 0.5,
        correlation: float = 0.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> LinearGaussian:
        """A random model; ``correlation`` in [0, 1) makes the columns of W alike, which
        correlates the posterior of the latents (0 leaves W Gaussian)."""
        if not 0 <= correlation < 1:
            raise InputError(f"correlation must be in [0, 1), got {correlation}.")
        g = torch.Generator().manual_seed(seed)
        W = torch.randn(x_dim, z_dim, generator=g, dtype=torch.float64)
        shared = torch.randn(x_dim, 1, generator=g, dtype=torch.float64)
        W = (1 - correlation) ** 0.5 * W + correlation**0.5 * shared
        b = torch.randn(x_dim, generator=g, dtype=torch.float64)
        return cls(W.to(dtype), b.to(dtype), float(noise))

    @classmethod
    def from_vae(cls, vae) -> LinearGaussian:
        """The exact model of a VAE with a linear decoder and one Gaussian scale."""
        layers = [m for m in vae.decoder.modules() if isinstance(m, torch.nn.Linear)]
        scale = vae.likelihood.scale.detach()
        if len(layers) != 1 or scale.numel() != 1:
            raise InputError(
                "from_vae needs a decoder with one linear layer (hidden = []) and a gaussian "
                "likelihood with one scale (learn_scale = 'none' or 'scalar')."
            )
        return cls(layers[0].weight.detach(), layers[0].bias.detach(), float(scale))
