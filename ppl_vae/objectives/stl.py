"""STL ("sticking the landing"): the ELBO gradient without the score term of log q.

With z_k = g_phi(eps_k) and log w_k = log p(x, z_k) - log q_phi(z_k | x), the estimator is

    grad = (1/K) sum_k d/dphi [log p(x, z_k) - log q_{stop(phi)}(z_k | x)],

i.e. log q keeps only its dependence on phi through z. The dropped term, -E[d/dphi log q_phi(z)],
has expectation zero, so the estimate is unbiased; when q is the exact posterior, log w = log p(x)
for every z and the gradient is zero for every draw. The model's gradient is the usual one.

References: Roeder, Wu & Duvenaud (2017), Sticking the Landing: Simple, Lower-Variance Gradient
Estimators for Variational Inference.
"""

from __future__ import annotations

import torch

from .base import ParticleObjective, Particles


class STL_ELBO(ParticleObjective):
    """The ELBO with K vectorized particles and the STL gradient for the guide."""

    detach_guide = True
    kl_estimate = "stl"

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        elbo = p.log_w().mean(0).sum()
        return elbo.detach(), elbo
