"""Neural spline flow (NSF) conditioned on x, followed by the encoder's diagonal affine map.

eps ~ N(0, I) passes through ``num_flows`` autoregressive monotone rational-quadratic splines
whose knots come from a MADE network that sees the previous layer and a context h(x); then
z = mu(x) + sigma(x) * u. The splines act on [-bound, bound] (the identity outside), which is
where a standard normal puts its mass, so they shape q(z|x) and the affine map places it.

Why Pyro's ``ConditionalSplineAutoregressive`` rather than zuko's NSF: a guide draws z and then
scores that same z. Pyro's autoregressive transforms run the network on their input, so the
sampling direction costs one pass per layer and the score reuses it from the cache; zuko's NSF
puts the one-pass direction on log_prob (as a density estimator), which makes sampling cost
z_dim passes per layer (or needs coupling layers). Pyro's transforms also broadcast the context
over a leading particle dimension, as ``vectorize_particles`` needs, and add no dependency.

References: Durkan, Bekasov, Murray & Papamakarios (2019), Neural Spline Flows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.transforms import ConditionalSplineAutoregressive
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn
from torch.distributions.transforms import Transform

from ..core.errors import InputError
from .flow import FlowGuide, affine, check_positive


class NSF(FlowGuide):
    """NSF guide with ``num_flows`` spline layers of ``count_bins`` bins on [-bound, bound]."""

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        num_flows: int = 2,
        context_dim: int = 32,
        flow_hidden: Sequence[int] | None = None,
        count_bins: int = 8,
        bound: float = 3.0,
        min_scale: float = 1e-4,
        **encoder,
    ):
        check_positive(num_flows=num_flows, context_dim=context_dim, count_bins=count_bins)
        if not bound > 0:
            raise InputError(f"guide option bound must be positive, got {bound!r}.")
        super().__init__(x_dim, z_dim, context_dim, min_scale, **encoder)
        hidden = list(flow_hidden) if flow_hidden is not None else [10 * z_dim] * 2
        knots = [count_bins, count_bins, count_bins - 1]  # widths, heights, inner slopes
        self.flows = nn.ModuleList(
            ConditionalSplineAutoregressive(
                z_dim,
                ConditionalAutoRegressiveNN(z_dim, context_dim, hidden, param_dims=knots),
                count_bins=count_bins,
                bound=float(bound),
                order="quadratic",
            )
            for _ in range(num_flows)
        )

    def transforms(
        self, loc: torch.Tensor, scale: torch.Tensor, params: torch.Tensor
    ) -> list[Transform]:
        return [*(f.condition(params) for f in self.flows), affine(loc, scale)]
