"""IWAE with doubly reparameterized gradients (DReG) for the guide.

With normalized weights w~_k = w_k / sum_j w_j of the K particles of one data point, the IWAE
gradient for the guide, sum_k w~_k d/dphi log w_k, holds a score term -sum_k w~_k
d/dphi log q_phi(z_k). Reparameterizing that term once more gives

    grad_phi = sum_k w~_k^2 (d log w_k / d z_k) (d z_k / d phi),

an unbiased estimate of the same gradient whose variance does not grow with K. The model's
gradient is the usual IWAE one, sum_k w~_k d/dtheta log p_theta(x, z_k).

With the latent sites scaled by a KL weight beta (warm-up), log w = log p(x|z) +
beta (log p(z) - log q(z)) and the same derivation gives the coefficient
(1 - beta) w~_k + beta w~_k^2 in place of w~_k^2.

Implementation: the surrogate sum_k stop(w~_k) log w_k, with log q evaluated at the guide's
parameters detached, gives the model its IWAE gradient; a hook on each latent value multiplies
the gradient that flows back into the guide by (1 - beta) + beta w~_k. With M groups of K
particles (MIWAE) the weights are normalized within each group and the groups averaged.

References: Tucker, Lawson, Gu & Maddison (2019), Doubly Reparameterized Gradient Estimators for
Monte Carlo Objectives; Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
"""

from __future__ import annotations

import torch

from .base import ParticleObjective, Particles
from .miwae import check_groups, grouped, miwae_bound


class IWAE_DReG(ParticleObjective):
    """IWAE_K (or MIWAE_{M,K}) with the DReG gradient for the guide."""

    detach_guide = True
    clone_latents = True

    def __init__(self, num_particles: int = 1, M: int = 1):
        check_groups(num_particles, M)
        super().__init__(num_particles * M)
        self.K, self.M = num_particles, M

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        log_w = grouped(p.log_w(), self.M, self.K)
        w = torch.softmax(log_w.detach(), dim=1)
        beta = p.latent_scale()
        p.scale_guide_gradient(((1 - beta) + beta * w).reshape(self.M * self.K, -1))
        surrogate = (w * log_w).sum(1).mean(0).sum()
        return miwae_bound(log_w).detach(), surrogate
