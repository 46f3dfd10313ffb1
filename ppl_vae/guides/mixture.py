"""A mixture of diagonal Gaussians: q(z|x) = sum_k pi_k(x) N(mu_k(x), diag(sigma_k(x)^2)).

Sampling a component index is not differentiable; Pyro's ``MixtureOfDiagNormals`` instead
gives each sample a pathwise gradient with respect to every mu_k, sigma_k and pi_k (Jankowiak &
Obermeyer's implicit reparameterization for mixtures), so the guide trains with reparameterized
gradients as a Gaussian one does, mixture weights included.

Pyro's ``rsample(sample_shape)`` gathers each sample's component with the sample dimensions in
front of the batch dimensions, which draws particle i from data point i's mixture (or fails
when there are more particles than data points); the ``MixtureOfDiagNormals`` below draws
extra sample dimensions by expanding the batch instead, as a ``pyro.plate`` over particles does.

References: Jankowiak & Obermeyer (2018), Pathwise Derivatives Beyond the Reparameterization
Trick; Graves (2016), Stochastic Backpropagation through Mixture Density Distributions.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.nn.functional import softplus

from ..core.errors import InputError
from .base import AmortizedGuide


class MixtureOfDiagNormals(dist.MixtureOfDiagNormals):
    """Pyro's ``MixtureOfDiagNormals`` with an ``rsample(sample_shape)`` that is right with batch
    dimensions."""

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        sample_shape = torch.Size(sample_shape)
        if sample_shape and self.batch_shape:
            return self.expand(sample_shape + self.batch_shape).rsample()
        return super().rsample(sample_shape)


class DiagonalMixture(AmortizedGuide):
    """q(z|x) = MixtureOfDiagNormals with ``num_components`` components, all from the encoder."""

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        num_components: int = 4,
        min_scale: float = 1e-4,
        **encoder,
    ):
        if num_components < 2:
            raise InputError(
                f"guide option num_components must be at least 2, got {num_components}; "
                "use guide.name = 'diagonal' for one component."
            )
        super().__init__(x_dim, z_dim, num_components * (2 * z_dim + 1), **encoder)
        self.num_components = num_components
        self.min_scale = min_scale

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        k, d = self.num_components, self.z_dim
        locs, raw, logits = self.encoder(x).split([k * d, k * d, k], dim=-1)
        locs = locs.reshape(*locs.shape[:-1], k, d)
        scales = (softplus(raw) + self.min_scale).reshape(locs.shape)
        return MixtureOfDiagNormals(locs, scales, logits)
