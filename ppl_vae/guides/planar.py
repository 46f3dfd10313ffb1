"""Amortized planar flows: every flow parameter comes from the encoder.

With eps ~ N(0, I) and u_0 = eps, for k = 1..K

    u_k = u_{k-1} + a_k tanh(w_k^T u_{k-1} + b_k),   log |det| = log |1 + a_k^T psi_k|,

psi_k = (1 - tanh^2(.)) w_k, and then z = mu(x) + sigma(x) * u_K. The encoder outputs
(a_k, w_k, b_k) for each data point; a_k is adjusted so that w_k^T a_k > -1, which keeps each
map invertible. The inverse has no closed form: a sample is scored from the cache of its own
forward pass, any other point by solving w^T y = s + (w^T a) tanh(s + b) for s = w^T u.

The maps act on the standardized noise, before the encoder's diagonal affine map. This is the
same family as planar maps applied after it (Rezende & Mohamed's order), with a' = sigma * a,
w' = w / sigma and b' = b - w'^T mu, but a posterior whose shape does not change with x now
needs flow parameters that do not change with x either, which trains much faster.

Built on Pyro's ``ConditionedPlanar``, which takes the parameters as tensors and broadcasts them
over leading particle dimensions.

References: Rezende & Mohamed (2015), Variational Inference with Normalizing Flows."""

from __future__ import annotations

import torch
from pyro.distributions.transforms.planar import ConditionedPlanar
from torch.distributions.transforms import Transform

from .flow import FlowGuide, affine, check_positive, solve_increasing


class InvertiblePlanar(ConditionedPlanar):
    """Pyro's ``ConditionedPlanar`` with an inverse: with s = w^T u, the map gives
    w^T y = s + (w^T a) tanh(s + b), increasing in s since w^T a > -1; then
    u = y - a tanh(s + b). The gradient reaches s through one Newton step from the root."""

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, a, w = self._params
        a = self.u_hat(a, w)
        c = (w * a).sum(-1, keepdim=True)
        target = (w * y).sum(-1, keepdim=True)
        s = solve_increasing(c, torch.ones_like(c), b, target)
        th = torch.tanh(s + b)
        s = s - (s + c * th - target) / (1 + c * (1 - th.square()))
        u = y - a * torch.tanh(s + b)
        self._call(u)  # sets the cached log |det| at u
        return u


class Planar(FlowGuide):
    """Planar-flow guide with ``num_flows`` maps whose (a, w, b) the encoder outputs."""

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
        maps = []
        for p in params.chunk(self.num_flows, dim=-1):
            a, w, b = p.split([d, d, 1], dim=-1)
            maps.append(InvertiblePlanar((b, a, w)))
        return [*maps, affine(loc, scale)]
