"""Priors p(z), chosen by name: each is a module whose ``forward(like)`` returns p(z).

A prior has event shape ``[z_dim]`` and is built as ``cls(z_dim, **options)``: its options (a
recipe's ``model.prior_options``) are the keyword parameters of its ``__init__`` after
``z_dim``, checked against that signature. A prior whose ``__init__`` also takes ``x_dim`` (a
VampPrior's pseudo-inputs are as wide as a data point) gets it from the model. A prior may have
parameters (a mixture's weights, a flow's layers); it is called on every run of the model, so it
builds its distribution then. A prior that reads the guide's encoder (a VampPrior) also has
``share_guide(guide)`` (``core.contract.SharesGuide``) and keeps the guide in a
``core.contract.Shared``.

The priors: ``standard`` (N(0, I)), ``mog`` (``mog_prior``), ``vamp`` (``vamp_prior``), ``flow``
(``flow_prior``); see docs/priors.md.

To add a prior, write its class in its own file and add one line to ``PRIORS``.
"""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from torch import nn

from ..core.errors import InputError
from ..core.options import checked_lookup, parameters
from .flow_prior import FlowPrior
from .mog_prior import MixturePrior
from .vamp_prior import VampPrior


class StandardNormal(nn.Module):
    """p(z) = N(0, I) on R^z_dim; no parameters."""

    def __init__(self, z_dim: int):
        super().__init__()
        if z_dim < 1:
            raise InputError(f"z_dim must be at least 1, got {z_dim}.")
        self.z_dim = z_dim

    def forward(self, like: torch.Tensor) -> dist.Distribution:
        """N(0, I) with event shape ``[z_dim]``, on ``like``'s device and dtype."""
        zero = like.new_zeros(())
        return dist.Normal(zero, zero + 1).expand([self.z_dim]).to_event(1)


PRIORS: dict[str, type[nn.Module]] = {
    "standard": StandardNormal,
    "mog": MixturePrior,
    "vamp": VampPrior,
    "flow": FlowPrior,
}

# Set by the model, not by model.prior_options.
RESERVED = {"z_dim": "model.z_dim", "x_dim": "the data"}


def build_prior(name: str, z_dim: int, x_dim: int | None = None, /, **options: Any) -> nn.Module:
    """Builds a prior by name (``PRIORS``) over ``z_dim`` latent units, with its options; a
    prior sized by the data (``vamp``) also needs ``x_dim``, which the model builders pass."""
    cls = checked_lookup(PRIORS, name, "prior", options, "model.prior_options", reserved=RESERVED)
    if "x_dim" in parameters(cls):
        if x_dim is None:
            raise InputError(
                f"prior {name!r} is sized by the data: pass x_dim, build_prior({name!r}, "
                f"z_dim, x_dim), or build it through build_model, which does."
            )
        options = {**options, "x_dim": x_dim}
    return cls(z_dim, **options)
