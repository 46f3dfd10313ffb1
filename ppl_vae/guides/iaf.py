"""Inverse autoregressive flow (IAF) on a diagonal Gaussian, conditioned on the encoder.

The encoder outputs mu(x), sigma(x) and a context h(x). Then z_0 = mu + sigma * eps and, for
t = 1..T, with an autoregressive network (MADE) that sees z_{t-1} and h,

    (m_t, s_t) = AR_t(z_{t-1}, h),   g_t = sigmoid(s_t + 2),
    z_t = g_t * z_{t-1} + (1 - g_t) * m_t,

the "numerically stable" update of Kingma et al., whose Jacobian is triangular with
log |det| = sum_i log g_t,i. Sampling and scoring a sample cost one network pass per step.

Built on Pyro's ``ConditionalAffineAutoregressive`` with ``ConditionalAutoRegressiveNN``: they
take the context as an input, broadcast it over leading particle dimensions, and give each step
a random variable order (a buffer, so it is saved in checkpoints).

References: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved
Variational Inference with Inverse Autoregressive Flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions.transforms import ConditionalAffineAutoregressive
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn
from torch.distributions.transforms import Transform

from .flow import FlowGuide, affine, check_positive


class IAF(FlowGuide):
    """IAF guide with ``num_flows`` steps, a context of ``context_dim`` numbers and MADE
    networks of hidden sizes ``flow_hidden`` (default two layers of ``10 * z_dim``)."""

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        num_flows: int = 2,
        context_dim: int = 32,
        flow_hidden: Sequence[int] | None = None,
        min_scale: float = 1e-4,
        **encoder,
    ):
        check_positive(num_flows=num_flows, context_dim=context_dim)
        super().__init__(x_dim, z_dim, context_dim, min_scale, **encoder)
        hidden = list(flow_hidden) if flow_hidden is not None else [10 * z_dim] * 2
        self.flows = nn.ModuleList(
            ConditionalAffineAutoregressive(
                ConditionalAutoRegressiveNN(z_dim, context_dim, hidden), stable=True
            )
            for _ in range(num_flows)
        )

    def transforms(
        self, loc: torch.Tensor, scale: torch.Tensor, params: torch.Tensor
    ) -> list[Transform]:
        return [affine(loc, scale), *(f.condition(params) for f in self.flows)]
