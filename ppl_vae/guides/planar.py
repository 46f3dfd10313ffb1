"""Amortized planar flows on a diagonal Gaussian: every flow parameter comes from the encoder.

z_0 = mu(x) + sigma(x) * eps, then for k = 1..K

    z_k = z_{k-1} + u_k tanh(w_k^T z_{k-1} + b_k),   log |det| = log |1 + u_k^T psi_k|,

with psi_k = (1 - tanh^2(.)) w_k and (u_k, w_k, b_k) output by the encoder for each data point.
u_k is adjusted so that w_k^T u_k > -1, which keeps each map invertible. The inverse has no
closed form: a sample is scored from the cache of its own forward pass.

Built on Pyro's ``ConditionedPlanar``, which takes the parameters as tensors and broadcasts them
over leading particle dimensions.

References: Rezende & Mohamed (2015), Variational Inference with Normalizing Flows.
"""

from __future__ import annotations

import torch
from pyro.distributions.transforms.planar import ConditionedPlanar
from torch.distributions.transforms import Transform

from .flow import FlowGuide, affine, check_positive


class Planar(FlowGuide):
    """Planar-flow guide with ``num_flows`` maps whose (u, w, b) the encoder outputs."""

    def __init__(
        self, x_dim: int, z_dim: int, num_flows: int = 8, min_scale: float = 1e-4, **encoder
    ):
        check_positive(num_flows=num_flows)
        super().__init__(x_dim, z_dim, num_flows * (2 * z_dim + 1), min_scale, **encoder)
        self.num_flows = num_flows

    def transforms(
        self, loc: torch.Tensor, scale: torch.Tensor, params: torch.Tensor
    ) -> list[Transform]:
        d = self.z_dim
        maps = [affine(loc, scale)]
        for p in params.chunk(self.num_flows, dim=-1):
            u, w, b = p.split([d, d, 1], dim=-1)
            maps.append(ConditionedPlanar((b, u, w)))
        return maps
