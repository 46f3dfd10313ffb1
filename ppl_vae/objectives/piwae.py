"""PIWAE: the IWAE bound for the model, the MIWAE bound for the guide, from the same particles.

From T = M*K particles z_{m,k} ~ q(z|x) in one vectorized pass, with w = p(x, z) / q(z|x):

    IWAE_{MK}(x)   = log (1/MK) sum_{m,k} w_{m,k}               (the model's objective),
    MIWAE_{M,K}(x) = (1/M) sum_m log (1/K) sum_k w_{m,k}        (the guide's objective),

and the gradient is grad_theta IWAE_{MK} for the model's parameters and grad_phi MIWAE_{M,K}
for the guide's (both the plain reparameterized gradient). The tighter bound trains the model;
the looser one gives the guide a gradient with a higher signal-to-noise ratio. The value
returned is IWAE_{MK}. M = 1 is IWAE_K in value and every gradient; K = 1 trains the model on
IWAE_M and the guide on the ELBO with M particles; K = M = 1 is the ELBO.

Construction. With normalized weights a = softmax over all MK particles (IWAE's) and
b_{m,k} = softmax over group m / M (MIWAE's), d IWAE / d log w = a and d MIWAE / d log w = b,
and the surrogate

    S = MIWAE_{M,K}  +  sum_{m,k} stop(a - b)_{m,k} log p_theta(x, stop(z_{m,k}))

has grad_phi S = grad_phi MIWAE (the second term sees no z, so no phi) and grad_theta S =
sum b grad_theta log p + sum (a - b) grad_theta log p = sum a grad_theta log p = grad_theta
IWAE. The second term replays the model on the latent values detached (one more model pass,
which only the model's parameters are differentiated through), as STL re-runs the guide with its
parameters detached. Rescaling the gradient through z by b / a with a hook instead would save
that pass, but a underflows (to 0 in float32 once a group trails the best by ~100 nats) and
takes the group's share of the guide's gradient with it. A parameter that the model and the
guide share (a VampPrior's encoder) gets the model's gradient where the model uses it.

References: Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), Tighter Variational
Bounds are Not Necessarily Better.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import pyro.poutine as poutine
import torch

from ..core.tracing import is_scored, particle_plate, site_log_prob
from .base import ParticleObjective, Particles
from .miwae import check_groups, grouped, miwae_bound


@dataclass
class FixedLatentParticles(Particles):
    """Particles plus log p(x, z) ``[P, N]`` of the model replayed on the latent values
    detached: differentiable in the model's parameters only (None when not needed)."""

    log_p_fixed_z: torch.Tensor | None = None


def log_joint_at_fixed_latents(model: Callable, p: Particles, args, kwargs) -> torch.Tensor:
    """log p(x, stop(z)) ``[P, N]``: the model replayed on ``p``'s latent values, detached."""
    fixed = p.q_trace.copy()
    for name, v in p.values.items():
        fixed.nodes[name] = dict(fixed.nodes[name], value=v.detach())
    run = poutine.replay(particle_plate(p.num_particles, p.plates)(model), trace=fixed)
    tr = poutine.trace(run).get_trace(*args, **kwargs)
    log_p = 0.0
    for site in tr.nodes.values():
        if is_scored(site):
            log_p = log_p + site_log_prob(site, p.plates)
    return log_p


class PIWAE(ParticleObjective):
    """IWAE_{MK} for the model, MIWAE_{M,K} for the guide; K = ``num_particles`` per group."""

    def __init__(self, num_particles: int = 1, M: int = 1):
        check_groups(num_particles, M)
        super().__init__(num_particles * M)
        self.K, self.M = num_particles, M

    def particles(self, model: Callable, guide: Callable, args, kwargs) -> Particles:
        """The particles, and (for M > 1, when gradients are on) log p at the detached z."""
        p = super().particles(model, guide, args, kwargs)
        p = FixedLatentParticles(**{f.name: getattr(p, f.name) for f in fields(p)})
        if self.M > 1 and torch.is_grad_enabled():
            p.log_p_fixed_z = log_joint_at_fixed_latents(model, p, args, kwargs)
        return p

    def _objective(self, p: FixedLatentParticles) -> tuple[torch.Tensor, torch.Tensor]:
        log_w = p.log_w()
        iwae = (torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])).sum()
        if p.log_p_fixed_z is None:  # M = 1 (the two bounds are one) or no gradient wanted
            return iwae.detach(), iwae
        groups = grouped(log_w, self.M, self.K)
        a = torch.softmax(log_w.detach(), 0)
        b = torch.softmax(groups.detach(), 1).reshape_as(a) / self.M
        surrogate = miwae_bound(groups) + ((a - b) * p.log_p_fixed_z).sum()
        return iwae.detach(), surrogate
