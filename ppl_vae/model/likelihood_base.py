"""The base class of the likelihoods (``LIKELIHOODS`` in ``likelihoods.py``), in a module of its
own so that a likelihood in its own file can subclass it and still be listed in the registry."""

from __future__ import annotations

from typing import ClassVar

import pyro.distributions as dist
import torch
from torch import nn

from .checks import check_finite


class Likelihood(nn.Module):
    """Base class: ``forward(params) -> Distribution`` and ``check(x)``, for ``x_dim`` pixels."""

    outputs_per_pixel: ClassVar[int] = 1  # decoder outputs per pixel: a mean, a logit, ...

    def __init__(self, x_dim: int):
        super().__init__()
        self.x_dim = x_dim

    def check(self, x: torch.Tensor) -> None:
        """Raises DataError when ``x`` cannot be scored by this likelihood."""
        check_finite(x)

    def event(self, params: torch.Tensor) -> dist.Distribution:
        """p(x|z) with the pixels as one event: ``forward(params).to_event(1)``."""
        return self(params).to_event(1)
