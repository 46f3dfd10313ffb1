"""MIWAE: the average of M independent IWAE_K bounds, with the reparameterized gradient.

    MIWAE_{M,K}(x) = (1/M) sum_m log (1/K) sum_k w_{m,k},   w = p(x, z) / q(z|x),

from M*K particles drawn in one vectorized pass. M = 1 is IWAE_K (the same value and gradient as
Pyro's ``RenyiELBO(alpha=0)``); K = 1 is the ELBO with M particles. For a fixed budget M*K,
larger M gives the guide a gradient with a higher signal-to-noise ratio and the model a looser
bound.

References: Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), Tighter Variational
Bounds are Not Necessarily Better.
"""

from __future__ import annotations

import math

import torch

from .base import ObjectiveError, ParticleObjective, Particles


def check_groups(num_particles: int, M: int) -> None:
    """Raises ObjectiveError unless K and M are integers >= 1."""
    for name, v in (("num_particles (K)", num_particles), ("M", M)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ObjectiveError(f"{name} must be an integer >= 1, got {v!r}.")


def grouped(log_w: torch.Tensor, M: int, K: int) -> torch.Tensor:
    """Log weights ``[M*K, N]`` as ``[M, K, N]``: M groups of K particles."""
    return log_w.reshape(M, K, log_w.shape[-1])


def miwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Summed over the batch: mean over groups of logsumexp_k log w - log K, for ``[M, K, N]``."""
    return (torch.logsumexp(log_w, 1) - math.log(log_w.shape[1])).mean(0).sum()


class MIWAE(ParticleObjective):
    """MIWAE_{M,K} with K = ``num_particles`` particles in each of ``M`` groups."""

    def __init__(self, num_particles: int = 1, M: int = 1):
        check_groups(num_particles, M)
        super().__init__(num_particles * M)
        self.K, self.M = num_particles, M

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        bound = miwae_bound(grouped(p.log_w(), self.M, self.K))
        return bound.detach(), bound
