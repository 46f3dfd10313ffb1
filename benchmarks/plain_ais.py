"""A plain PyTorch AIS with HMC transitions: the reference the benchmarks hold
``ppl_vae.bounds.ais`` against (speed in ``ais_speed.py``, accuracy per second in
``ais_accuracy.py --plain-leapfrog``).

Forward AIS from a diagonal Gaussian q(z) = N(loc, scale) to p(x, z) along the sigmoid schedule,
one HMC move (a fixed step size and leapfrog count) per intermediate distribution, every chain
and data point at once. ``log_joint(z) -> [C, N]`` is log p(x, z) for z ``[C, N, d]``, written
out for the model at hand (``bernoulli_vae``, ``linear_gaussian``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from ppl_vae.bounds.anneal import sigmoid_schedule

LogJoint = Callable[[torch.Tensor], torch.Tensor]


def bernoulli_vae(model, x: torch.Tensor) -> LogJoint:
    """log p(x, z) of a VAE with a Bernoulli decoder and the standard normal prior."""

    def log_joint(z):
        logits = model.decoder(z)
        log_lik = -binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        return log_lik.sum(-1) - 0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)

    return log_joint


def linear_gaussian(truth, x: torch.Tensor) -> LogJoint:
    """log p(x, z) of the linear-Gaussian model x = W z + b + s eps, z ~ N(0, I)."""
    d, D = truth.z_dim, truth.x_dim

    def log_joint(z):
        r = x - (z @ truth.W.T + truth.b)
        log_lik = -0.5 * (r**2).sum(-1) / truth.s**2 - D * math.log(truth.s)
        return log_lik - 0.5 * (z**2).sum(-1) - 0.5 * (d + D) * math.log(2 * math.pi)

    return log_joint


def plain_ais(
    log_joint: LogJoint,
    loc: torch.Tensor,
    scale: torch.Tensor,
    num_steps: int,
    num_chains: int,
    num_leapfrog: int,
    step: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x) estimates ``[N]``, log weights ``[C, N]``), in float64."""
    d = loc.shape[-1]
    const = 0.5 * d * math.log(2 * math.pi)

    def parts(z):
        z = z.detach().requires_grad_(True)
        log_p = log_joint(z)
        log_q = (-0.5 * ((z - loc) / scale) ** 2 - scale.log()).sum(-1) - const
        (g_p,) = torch.autograd.grad(log_p.sum(), z)
        g_q = -(z.detach() - loc) / scale**2  # by hand: no second backward
        return z.detach(), log_p.detach(), log_q.detach(), g_p, g_q

    betas = sigmoid_schedule(num_steps).tolist()
    z = loc + scale * torch.randn(num_chains, *loc.shape, dtype=loc.dtype)
    z, lp, lq, gp, gq = parts(z)
    log_w = torch.zeros(num_chains, loc.shape[0], dtype=torch.float64)
    for k in range(1, len(betas)):
        b = betas[k]
        log_w += (b - betas[k - 1]) * (lp - lq).double()
        if k == len(betas) - 1:
            break
        r0 = torch.randn_like(z)
        r = r0 + 0.5 * step * ((1 - b) * gq + b * gp)
        z1, lp1, lq1, gp1, gq1 = z, lp, lq, gp, gq
        for i in range(num_leapfrog):
            z1, lp1, lq1, gp1, gq1 = parts(z1 + step * r)
            r = r + (step if i < num_leapfrog - 1 else 0.5 * step) * ((1 - b) * gq1 + b * gp1)
        h0 = -((1 - b) * lq + b * lp).double() + 0.5 * r0.double().square().sum(-1)
        h1 = -((1 - b) * lq1 + b * lp1).double() + 0.5 * r.double().square().sum(-1)
        acc = (torch.rand_like(h0).log() < h0 - h1) & torch.isfinite(h1)
        m = acc.unsqueeze(-1)
        z, gp, gq = torch.where(m, z1, z), torch.where(m, gp1, gp), torch.where(m, gq1, gq)
        lp, lq = torch.where(acc, lp1, lp), torch.where(acc, lq1, lq)
    return torch.logsumexp(log_w, 0) - math.log(num_chains), log_w
