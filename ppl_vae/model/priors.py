"""Priors p(z), chosen by name: each is a module whose ``forward(like)`` returns p(z).

A prior has event shape ``[z_dim]`` and is built as ``cls(z_dim, **options)``: its options (a
recipe's ``model.prior_options``) are the keyword parameters of its ``__init__`` after
``z_dim``, checked against that signature. A prior may have parameters (a mixture's weights, a
flow's layers); it is called on every run of the model, so it builds its distribution then. A
prior that reads the guide's encoder (a VampPrior) also has ``share_guide(guide)``
(``core.contract.SharesGuide``) and keeps the guide in a ``core.contract.Shared``.

To add a prior, write its class in its own file and add one line to ``PRIORS``.
"""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from torch import nn

from ..core.errors import InputError
from ..core.options import checked_lookup


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
}

# Set by the model, not by model.prior_options.
RESERVED = {"z_dim": "model.z_dim"}


def build_prior(name: str, z_dim: int, **options: Any) -> nn.Module:
    """Builds a prior by name (``PRIORS``) over ``z_dim`` latent units, with its options."""
    cls = checked_lookup(PRIORS, name, "prior", options, "model.prior_options", reserved=RESERVED)
    return cls(z_dim, **options)
