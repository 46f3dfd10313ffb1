"""The ``flow`` prior: N(0, I) pushed through ``num_flows`` learned affine autoregressive maps,

    log p(z) = log N(g(z); 0, I) + log |det dg/dz|,   g = T_L o ... o T_1,

each T_l a masked autoregressive flow (MAF) step y = exp(s(z_<i)) z + m(z_<i) from Pyro's
``AffineAutoregressive`` over a MADE network of two hidden layers of width ``hidden`` (each
step with its own random variable order, a buffer, so it is saved in checkpoints). The maps run
in the density direction: scoring z, which the ELBO, IWAE and AIS do at every step, costs one
network pass per step; sampling z (``model.sample``, BDMC, AIS's prior start) inverts them, one
pass per latent unit and step.

Every step starts at the identity (the MADE's output layer at zero: m = 0 and s = 0), so the
untrained prior is ``standard`` exactly, and training moves it from there.

References: Papamakarios, Pavlakou & Murray (2017), Masked Autoregressive Flow for Density
Estimation; Germain et al. (2015), MADE; Chen et al. (2017), Variational Lossy Autoencoder
(section 3.2: an autoregressive flow prior).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineAutoregressive
from pyro.distributions.transforms.utils import clamp_preserve_gradients
from pyro.nn import AutoRegressiveNN
from torch import nn

from ..core.errors import InputError
from .mog_prior import check_count, check_z_dim


class MAFStep(AffineAutoregressive):
    """Pyro's ``AffineAutoregressive`` whose inverse keeps the input's dtype (Pyro's starts
    from float32 zeros, which a float64 network refuses)."""

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = [y.new_zeros(y.shape[:-1])] * y.shape[-1]
        lo, hi = self.log_scale_min_clip, self.log_scale_max_clip
        for idx in self.arn.permutation:
            mean, log_scale = self.arn(torch.stack(x, dim=-1))
            log_scale = clamp_preserve_gradients(log_scale, lo, hi)
            x[idx] = (y[..., idx] - mean[..., idx]) * torch.exp(-log_scale[..., idx])
        # the last pass saw every unit its outputs depend on: its log scale is that of x
        self._cached_log_scale = log_scale
        return torch.stack(x, dim=-1)

    def identity_(self) -> MAFStep:
        """Sets the step to the identity: the MADE's output layer at zero."""
        with torch.no_grad():
            last = self.arn.layers[-1]
            last.weight.zero_()
            last.bias.zero_()
        return self


class FlowPrior(nn.Module):
    """p(z): N(0, I) through ``num_flows`` MAF steps of MADE width ``hidden``.

    Args:
        z_dim: latent size.
        num_flows: the number of steps L, at least 1.
        hidden: width of each MADE's two hidden layers, at least ``z_dim`` (default
            ``4 * z_dim``).
    """

    def __init__(self, z_dim: int, num_flows: int = 4, hidden: int | None = None):
        super().__init__()
        check_z_dim(z_dim)
        check_count(num_flows, "num_flows", "the number of flow steps")
        width = 4 * z_dim if hidden is None else hidden
        check_count(width, "hidden", "the width of each step's hidden layers")
        if width < z_dim:
            raise InputError(
                f"model.prior_options.hidden = {width} is narrower than model.z_dim = {z_dim}: "
                f"a MADE needs at least one hidden unit per latent unit; set hidden >= {z_dim}."
            )
        self.z_dim = z_dim
        self.steps = nn.ModuleList(
            MAFStep(AutoRegressiveNN(z_dim, [width, width])).identity_() for _ in range(num_flows)
        )

    def forward(self, like: torch.Tensor) -> dist.TransformedDistribution:
        """p(z), event shape ``[z_dim]``, on ``like``'s device and dtype."""
        zero = like.new_zeros(())
        base = dist.Normal(zero, zero + 1).expand([self.z_dim]).to_event(1)
        # sampling runs the steps backwards; scoring z runs T_1, ..., T_L forwards
        return dist.TransformedDistribution(base, [t.inv for t in reversed(self.steps)])
