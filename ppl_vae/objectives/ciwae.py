"""CIWAE: a convex combination of the ELBO and the IWAE bound over the same K particles.

    CIWAE_beta(x) = beta ELBO_K(x) + (1 - beta) IWAE_K(x),
    ELBO_K = (1/K) sum_k log w_k,   IWAE_K = log (1/K) sum_k w_k,   w = p(x, z) / q(z|x),

with the reparameterized gradient of the whole, for the model and the guide alike. For each
draw ELBO_K <= CIWAE_beta <= IWAE_K (Jensen), so it is a lower bound on log p(x) in expectation;
beta = 1 is the ELBO with K particles and beta = 0 is IWAE_K, in value and gradient. The ELBO
term keeps a share of the gradient whose signal-to-noise ratio for the guide does not fall with
K. (This beta is not the KL weight of a warm-up or a beta-VAE, ``kl_weight``.)

References: Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), Tighter Variational
Bounds are Not Necessarily Better.
"""

from __future__ import annotations

import math
import numbers

import torch

from .base import ObjectiveError, ParticleObjective, Particles


def check_beta(beta: object) -> float:
    """``beta`` as a float, or ObjectiveError unless it is a number in [0, 1]."""
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta <= 1:
        raise ObjectiveError(
            f"the ciwae objective needs objective.options.beta in [0, 1] (beta = 1 is the "
            f"ELBO, beta = 0 the IWAE bound), got {beta!r}."
        )
    return float(beta)


class CIWAE(ParticleObjective):
    """beta ELBO_K + (1 - beta) IWAE_K with K = ``num_particles``; ``beta`` is required."""

    def __init__(self, num_particles: int = 1, beta: float | None = None):
        self.beta = check_beta(beta)
        super().__init__(num_particles)

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        log_w = p.log_w()
        elbo = log_w.mean(0).sum()
        iwae = (torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])).sum()
        bound = self.beta * elbo + (1 - self.beta) * iwae
        return bound.detach(), bound
