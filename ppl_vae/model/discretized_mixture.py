"""A mixture of discretized logistics per pixel (PixelCNN++): 8-bit pixels k / 255 with

    P(k) = sum_m pi_m P_m(k),    pi = softmax(logits),

each P_m a discretized logistic with the edges of ``discretized_logistic.py`` (the lowest bin
takes the mass below its upper edge, the highest the mass above its lower edge). Its log is
``logsumexp_m(log pi_m + log P_m(k))``; the mean is the exact expectation
``sum_m pi_m E_m[k / 255]`` and a sample draws a component, then its bin. Each pixel (each
channel of a colour image) has a mixture of its own: PixelCNN++'s linear dependence of a pixel's
later colour channels on its earlier ones is left out, since the pixels are independent given z.

References: Salimans, Karpathy, Chen & Kingma (2017), PixelCNN++, ICLR (section 2.1).
"""

from __future__ import annotations

from typing import ClassVar

import pyro.distributions as dist
import torch

from ..core.errors import InputError
from .discretized_logistic import (
    BITS,
    DiscretizedLogisticDistribution,
    check_eight_bit,
    clamp_log_scale,
)
from .likelihood_base import Likelihood


def discretized_mixture(
    logits: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor
) -> dist.MixtureSameFamily:
    """The mixture over the last dimension (the components): ``logits``, ``loc`` and
    ``log_scale`` ``[..., M]`` give a distribution with batch shape ``[...]``."""
    components = DiscretizedLogisticDistribution(loc, log_scale)
    return dist.MixtureSameFamily(dist.Categorical(logits=logits), components)


class DiscretizedLogisticMixture(Likelihood):
    """8-bit pixels k / 255 under a mixture of ``num_mixtures`` discretized logistics per pixel:
    3 * ``num_mixtures`` decoder outputs per pixel, first the mixture logits, then the
    locations (on [0, 1]), then the log scales (clamped as for ``discretized_logistic``).
    For gray data kept as x/255 (``data.binarize = "none"``)."""

    discrete_bits: ClassVar[int] = BITS  # a mass over 2^8 levels: bounds convert to bits/dim

    def __init__(self, x_dim: int, num_mixtures: int = 5):
        super().__init__(x_dim)
        if isinstance(num_mixtures, bool) or int(num_mixtures) != num_mixtures or num_mixtures < 1:
            raise InputError(
                f"num_mixtures of the discretized_logistic_mixture likelihood must be an "
                f"integer >= 1, got {num_mixtures!r}."
            )
        self.num_mixtures = int(num_mixtures)

    @property
    def outputs_per_pixel(self) -> int:
        return 3 * self.num_mixtures

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        # parameter j = g * M + m of pixel i sits at j * x_dim + i: as [..., 3, M, x_dim]
        groups = params.unflatten(-1, (3, self.num_mixtures, self.x_dim)).transpose(-1, -2)
        logits, loc, log_scale = groups.unbind(-3)  # each [..., x_dim, M]
        return discretized_mixture(logits, loc, clamp_log_scale(log_scale))

    def check(self, x: torch.Tensor) -> None:
        check_eight_bit(x, "discretized_logistic_mixture")
