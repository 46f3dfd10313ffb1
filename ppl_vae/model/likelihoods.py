"""Likelihoods p(x|z), chosen by name: each maps decoder outputs to a distribution over pixels.

A likelihood is a module whose ``forward(params)`` returns a ``torch.distributions.Distribution``
with one factor per pixel (batch shape ``[..., x_dim]``) and whose ``check(x)`` raises a clear
error for data it cannot score (``core.contract.Likelihood``). It declares how many decoder
outputs it reads per pixel, ``outputs_per_pixel`` (k): the decoder is sized from it
(``model.parts.build_decoder``) and hands it ``out`` of shape ``[..., k * x_dim]``, parameter j
of pixel i at ``params[..., j * x_dim + i]``. Every likelihood class is built as
``cls(x_dim, **options)``: its options (a recipe's ``model.likelihood_options``) are the keyword
parameters of its ``__init__`` after ``x_dim``, checked against that signature before it is
built. To add one, write its class in its own file (a subclass of ``Likelihood``, from
``likelihood_base.py``, so that this module can import it) and add one line to ``LIKELIHOODS``,
as ``discretized_logistic.py`` and ``discretized_mixture.py`` do.
"""

from __future__ import annotations

import math
from typing import Any

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn.functional import softplus

from ..core.errors import InputError
from ..core.options import checked_lookup
from .bernoulli import IndependentBernoulli
from .checks import DataError, check_finite
from .discretized_logistic import DiscretizedLogistic
from .discretized_mixture import DiscretizedLogisticMixture
from .likelihood_base import Likelihood


class Bernoulli(Likelihood):
    """Bernoulli pixels parameterised by logits: for binary data in {0, 1}."""

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        return dist.Bernoulli(logits=params)

    def event(self, params: torch.Tensor) -> dist.Distribution:
        return IndependentBernoulli(params)  # sums over pixels inside the fused kernel

    def check(self, x: torch.Tensor) -> None:
        lo, hi = check_finite(x)
        if lo < 0 or hi > 1 or bool(x.frac().any()):  # in [0, 1] with no fraction: 0 or 1
            bad = x[(x != 0) & (x != 1)][:3].tolist()
            raise DataError(
                f"the bernoulli likelihood needs binary data in {{0, 1}}, but found values such "
                f"as {bad}. Binarize the data (data.binarize = 'dynamic' or 'static') or use "
                f"model.likelihood = 'continuous_bernoulli' for grayscale data in [0, 1]."
            )


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): grayscale data in [0, 1]."""

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        # Clamp only the logits handed to the distribution: its normaliser is unstable at +-inf.
        return dist.ContinuousBernoulli(logits=params.clamp(-30.0, 30.0))

    def check(self, x: torch.Tensor) -> None:
        check_finite(x)
        if bool(((x < 0) | (x > 1)).any()):
            raise DataError(
                f"the continuous_bernoulli likelihood needs data in [0, 1], got values in "
                f"[{x.min().item():.3g}, {x.max().item():.3g}]; rescale the data to [0, 1] "
                f"or use model.likelihood = 'gaussian'."
            )


class Gaussian(Likelihood):
    """Gaussian pixels with mean from the decoder and a fixed or learned scale.

    ``learn_scale`` is ``"none"`` (fixed ``scale``), ``"scalar"`` (one learned scale) or
    ``"pixel"`` (one learned scale per pixel); learned scales start at ``scale``.
    """

    def __init__(self, x_dim: int, scale: float = 1.0, learn_scale: str = "none"):
        super().__init__(x_dim)
        if scale <= 0:
            raise InputError(f"the gaussian likelihood's scale must be positive, got {scale}.")
        sizes = {"none": None, "scalar": 1, "pixel": x_dim}
        if learn_scale not in sizes:
            raise InputError(f"learn_scale must be one of {sorted(sizes)}, got {learn_scale!r}.")
        raw = torch.full((sizes[learn_scale] or 1,), softplus_inverse(scale))
        if sizes[learn_scale] is None:
            self.register_buffer("raw_scale", raw)
        else:
            self.raw_scale = nn.Parameter(raw)

    @property
    def scale(self) -> torch.Tensor:
        return softplus(self.raw_scale)

    def forward(self, params: torch.Tensor) -> dist.Distribution:
        return dist.Normal(params, self.scale.expand(params.shape))


def softplus_inverse(y: float) -> float:
    """x with softplus(x) = y, for y > 0."""
    return y + math.log(-math.expm1(-y))


LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": Bernoulli,
    "continuous_bernoulli": ContinuousBernoulli,
    "gaussian": Gaussian,
    "discretized_logistic": DiscretizedLogistic,
    "discretized_logistic_mixture": DiscretizedLogisticMixture,
}


# Set by the data, not by model.likelihood_options.
RESERVED = {"x_dim": "the data"}


def build_likelihood(name: str, x_dim: int, **options: Any) -> Likelihood:
    """Builds a likelihood by name (``LIKELIHOODS``) for ``x_dim`` pixels with its options
    (``gaussian``: ``scale``, ``learn_scale``; ``discretized_logistic_mixture``:
    ``num_mixtures``), which are checked against its signature."""
    cls = checked_lookup(
        LIKELIHOODS, name, "likelihood", options, "model.likelihood_options", reserved=RESERVED
    )
    return cls(x_dim, **options)
