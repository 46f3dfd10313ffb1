"""The ``mog`` prior: a mixture of K diagonal Gaussians with learned weights, means and scales,

    p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k^2)),   pi = softmax(logits).

The weights start equal, the scales at ``init_scale`` and the means at draws from
N(0, init_spread^2 I) (equal means would give every component the same gradient, and they
would never part). The density is a ``model.mixture.Mixture``: K x rows numbers per call, not
K x rows x z_dim.

References: Dilokthanakul et al. (2016), Deep Unsupervised Clustering with Gaussian Mixture
Variational Autoencoders; Tomczak & Welling (2018), section 3 (the "mixture of Gaussians"
prior they compare with).
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch import nn

from ..core.errors import InputError
from .mixture import Mixture


def check_count(value: int, key: str, what: str) -> None:
    """Raises InputError unless ``value`` is an integer >= 1; the message names ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            f"model.prior_options.{key} must be an integer >= 1 ({what}), got {value!r}."
        )


def check_z_dim(z_dim: int) -> None:
    """Raises InputError unless the latent size is an integer >= 1."""
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise InputError(f"z_dim must be an integer >= 1 (model.z_dim), got {z_dim!r}.")


def check_positive(value: float, key: str) -> None:
    """Raises InputError unless ``value`` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise InputError(f"model.prior_options.{key} must be a number > 0, got {value!r}.")


class MixturePrior(nn.Module):
    """p(z) = sum_k pi_k N(mu_k, diag(sigma_k^2)) over ``z_dim`` units, K = ``num_components``.

    Args:
        z_dim: latent size.
        num_components: K, at least 1 (K = 1 is a learned diagonal Gaussian).
        init_scale: every sigma_k at the start.
        init_spread: the standard deviation of the means' random start.
    """

    def __init__(
        self,
        z_dim: int,
        num_components: int = 10,
        init_scale: float = 1.0,
        init_spread: float = 1.0,
    ):
        super().__init__()
        check_z_dim(z_dim)
        check_count(num_components, "num_components", "K, the number of mixture components")
        check_positive(init_scale, "init_scale")
        check_positive(init_spread, "init_spread")
        self.z_dim = z_dim
        self.logits = nn.Parameter(torch.zeros(num_components))
        self.loc = nn.Parameter(init_spread * torch.randn(num_components, z_dim))
        self.log_scale = nn.Parameter(torch.full((num_components, z_dim), math.log(init_scale)))

    def forward(self, like: torch.Tensor) -> Mixture:
        """The mixture, event shape ``[z_dim]``, on ``like``'s device and dtype."""
        loc, scale = self.loc.to(like), self.log_scale.exp().to(like)
        return Mixture(self.logits.to(like), dist.Normal(loc, scale).to_event(1))
