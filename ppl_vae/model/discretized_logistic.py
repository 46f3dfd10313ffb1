"""The discretized logistic: a probability for each of the 256 gray levels of an 8-bit pixel.

Pixels are read as ``x = k / 255``, k in {0, ..., 255}: the gray values that
``data.binarize = "none"`` keeps, exactly the centres of 256 bins of width 1/255. With a
logistic Y ~ Logistic(mu, s) and its CDF F(y) = sigmoid((y - mu) / s),

    P(k) = F((k + 1/2) / 255) - F((k - 1/2) / 255)        for 0 < k < 255,
    P(0) = F(1/2 / 255),    P(255) = 1 - F((255 - 1/2) / 255),

so the lowest bin takes the mass below its upper edge and the highest all the mass above its
lower edge, as in PixelCNN++ (there on [-1, 1]); the 256 probabilities sum to 1. The log is
computed without subtracting probabilities: with a and b the standardized lower and upper edge,
b - a = 1 / (255 s), and sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^(a - b)), so

    log P(k) = [k < 255] log sigmoid(b) + [k > 0] log sigmoid(-a)
               + [0 < k < 255] log(-expm1(-1 / (255 s))),

every term finite for every finite mu and s > 0: no branch for improbable bins (PixelCNN++
switches to the density at the bin centre when the difference falls below 1e-5), accurate in the
tails and at tiny and huge scales alike.

References: Salimans, Karpathy, Chen & Kingma (2017), PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications, ICLR (section 2.1); Kingma et
al. (2016), Improved Variational Inference with Inverse Autoregressive Flow (the discretized
logistic of its CIFAR-10 VAE).
"""

from __future__ import annotations

import math
from typing import ClassVar

import pyro.distributions as dist
import torch
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all, clamp_probs
from torch.nn.functional import logsigmoid

from .checks import DataError, check_finite
from .likelihood_base import Likelihood

BITS = 8
LEVELS = 2**BITS  # gray levels 0, ..., 255
TOP = LEVELS - 1  # x = k / TOP
# Decoder log scales are clamped to this range. The floor is PixelCNN++'s log s >= -7 on [-1, 1]
# carried over to [0, 1] (s halves), where a centred bin then holds at most 97% of the mass.
MIN_LOG_SCALE = -7.0 - math.log(2.0)
MAX_LOG_SCALE = 7.0
BIN_TOLERANCE = 1e-3  # of a bin: how far 255 x may lie from an integer (float rounding)


def bin_index(x: torch.Tensor) -> torch.Tensor:
    """k = round(255 x), clamped to {0, ..., 255}, in ``x``'s dtype."""
    return torch.round(x * TOP).clamp(0, TOP)


def discretized_logistic_log_prob(
    x: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(k) of the bin k = round(255 x) under Logistic(loc, exp(log_scale)) on [0, 1],
    elementwise (broadcast): the formula of the module docstring, finite wherever the
    parameters are."""
    k = bin_index(x)
    inv_s = torch.exp(-log_scale)
    # (k +- 1/2) / 255 are exact half-integers over 255: bin k's upper edge is bin k + 1's lower
    # edge to the last bit, so the probabilities telescope to 1 even at tiny scales
    b = ((k + 0.5) / TOP - loc) * inv_s  # upper edge, standardized
    a = ((k - 0.5) / TOP - loc) * inv_s  # lower edge
    below, above = (k < TOP).to(loc.dtype), (k > 0).to(loc.dtype)
    width = torch.log(-torch.expm1(-inv_s / TOP))  # log(1 - e^(a - b))
    return below * logsigmoid(b) + above * logsigmoid(-a) + below * above * width


def discretized_logistic_mean(
    loc: torch.Tensor, log_scale: torch.Tensor, chunk: int = 32
) -> torch.Tensor:
    """E[x] = sum_k (k / 255) P(k) = (1/255) sum_{k=1}^{255} P(K >= k), elementwise, where
    P(K >= k) = sigmoid((loc - (k - 1/2) / 255) / s): exact, in ``chunk`` edges at a time."""
    inv_s = torch.exp(-log_scale).unsqueeze(-1)
    loc = loc.unsqueeze(-1)
    edges = (torch.arange(1, LEVELS, dtype=loc.dtype, device=loc.device) - 0.5) / TOP
    total = sum(torch.sigmoid((loc - e) * inv_s).sum(-1) for e in edges.split(chunk))
    return total / TOP


def off_grid(x: torch.Tensor) -> torch.Tensor:
    """A mask of the values of ``x`` that are not 8-bit gray values k / 255 (within
    ``BIN_TOLERANCE`` of a bin, for float rounding) in [0, 1]."""
    scaled = x * TOP
    return (x < 0) | (x > 1) | ((scaled - torch.round(scaled)).abs() > BIN_TOLERANCE)


class _EightBit(constraints.Constraint):
    """The 256 gray levels k / 255 of an 8-bit pixel."""

    is_discrete = True
    event_dim = 0

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return ~off_grid(value)

    def __repr__(self) -> str:
        return "EightBit()"


eight_bit = _EightBit()


def check_eight_bit(x: torch.Tensor, name: str) -> None:
    """Raises DataError unless ``x`` holds 8-bit gray values k / 255 that are not all 0 or 1
    (binarized data would be scored as 256-level pixels that happen to be black or white)."""
    check_finite(x)
    bad = off_grid(x)
    if bool(bad.any()):
        found = x[bad][:3].tolist()
        raise DataError(
            f"the {name} likelihood scores 8-bit gray values k/255 (k = 0, ..., 255), but "
            f"found values such as {found}. Use data.binarize = 'none' on MNIST or "
            f"FashionMNIST (their pixels are x/255), or rescale your data to k/255."
        )
    if x.numel() and bool(((x == 0) | (x == 1)).all()):
        raise DataError(
            f"the {name} likelihood scores 8-bit gray values, but these data hold only 0 and 1: "
            f"they look binarized. Set data.binarize = 'none' to keep the gray values, or use "
            f"model.likelihood = 'bernoulli' for binary data."
        )


class DiscretizedLogisticDistribution(dist.TorchDistribution):
    """The discretized logistic over the 256 levels k / 255 of each pixel: batch shape that of
    ``loc`` and ``log_scale``; ``log_prob`` of values k / 255 (module docstring), ``mean`` the
    exact expectation of k / 255, ``sample`` the level of a logistic draw (edges clamped)."""

    arg_constraints: ClassVar = {"loc": constraints.real, "log_scale": constraints.real}
    support = eight_bit
    has_rsample = False

    def __init__(
        self, loc: torch.Tensor, log_scale: torch.Tensor, validate_args: bool | None = None
    ):
        self.loc, self.log_scale = broadcast_all(loc, log_scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(DiscretizedLogisticDistribution, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.log_scale = self.log_scale.expand(batch_shape)
        super(DiscretizedLogisticDistribution, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> torch.Tensor:
        return discretized_logistic_mean(self.loc, self.log_scale)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return discretized_logistic_log_prob(value, self.loc, self.log_scale)

    @torch.no_grad()
    def sample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = clamp_probs(torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device))
        y = self.loc + self.log_scale.exp() * (torch.log(u) - torch.log1p(-u))
        return torch.floor(y * TOP + 0.5).clamp(0, TOP) / TOP  # the bin of y, edges open


def split_params(params: torch.Tensor, groups: int, x_dim: int) -> tuple[torch.Tensor, ...]:
    """The ``groups`` parameters of every pixel, each ``[..., x_dim]``: parameter j of pixel i
    is ``params[..., j * x_dim + i]``."""
    return params.unflatten(-1, (groups, x_dim)).unbind(-2)


def clamp_log_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """The decoder's log scales in [MIN_LOG_SCALE, MAX_LOG_SCALE]."""
    return log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE)


class DiscretizedLogistic(Likelihood):
    """8-bit pixels k / 255 under a discretized logistic (PixelCNN++'s edges): two decoder
    outputs per pixel, its location (on [0, 1]) and its log scale (clamped to
    [MIN_LOG_SCALE, MAX_LOG_SCALE]). For gray data kept as x/255 (``data.binarize = "none"``).
    """

    outputs_per_pixel: ClassVar[int] = 2
    discrete_bits: ClassVar[int] = BITS  # a mass over 2^8 levels: bounds convert to bits/dim

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        loc, log_scale = split_params(params, 2, self.x_dim)
        return DiscretizedLogisticDistribution(loc, clamp_log_scale(log_scale))

    def check(self, x: torch.Tensor) -> None:
        check_eight_bit(x, "discretized_logistic")
