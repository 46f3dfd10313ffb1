"""ELBO surgery: the KL term of the ELBO split into information and a marginal KL.

With q(x) the uniform distribution over the N evaluated points and the aggregate posterior
q(z) = (1/N) sum_m q(z | x_m), Hoffman & Johnson's identity is

    E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z)),
    I_q(x; z)     = E_x E_{q(z|x)} [log q(z|x) - log q(z)],
    KL(q(z)||p(z)) = E_x E_{q(z|x)} [log q(z) - log p(z)].

Each of the N points gets S samples z ~ q(z | x_n), and for each sample

    log q(z) = logsumexp_m log q(z | x_m) - log N,

over **all N points**, streamed: the samples and the points x_m go through in chunks of
``batch_size``, and a running log-sum-exp holds each sample's partial sum. The chunking only
orders the sums, so the result does not depend on ``batch_size`` (the samples themselves are
drawn in fixed blocks of ``SAMPLE_BLOCK`` points, from ``seed``). The common shortcut, q(z)
from the points of one minibatch, gives a mutual information bounded by log(batch size) and so
a split that depends on the batch size; this module does not take it. On the evaluated set,
I_q(x; z) <= log N all the same: that bound is part of the definition (``log_n`` in the result).

Needs one latent site and a guide with ``distribution(x)`` (every built-in guide) whose
``log_prob`` takes samples broadcast against a batch of other points.

References: Hoffman & Johnson (2016), ELBO surgery: yet another way to carve up the variational
evidence lower bound (NIPS workshop on Advances in Approximate Bayesian Inference).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro.poutine as poutine
import torch
from torch.distributions import Independent, Normal

from ..core.contract import EncoderDistribution, has
from ..core.errors import SiteError
from ..core.rng import forked_rng
from .sites import check_data, latent_sites

SAMPLE_BLOCK = 500  # points per sampling pass: fixed, so the draws do not depend on batch_size


@dataclass(frozen=True)
class InformationSplit:
    """E_x KL(q(z|x) || p(z)) = mutual_information + marginal_kl, in nats, each with the
    standard error of its mean over the N * S samples; ``log_n`` bounds the information."""

    kl: float
    kl_se: float
    mutual_information: float
    mutual_information_se: float
    marginal_kl: float
    marginal_kl_se: float
    log_n: float
    num_samples: int


def _log_prob_matrix(q, z: torch.Tensor) -> torch.Tensor:
    """log q(z_i | x_m) for samples ``z [C, d]`` and a batch of points, ``[C, M]``."""
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal):
        # a product of Gaussians, as matrix products (the fast path of the standard VAE), in
        # float64: the expanded square cancels terms of size (z / sigma)^2
        loc, scale, z = q.base_dist.loc.double(), q.base_dist.scale.double(), z.double()
        prec = scale.pow(-2)
        quad = z.square() @ prec.T - 2 * z @ (loc * prec).T + (loc.square() * prec).sum(-1)
        norm = scale.log().sum(-1) + 0.5 * loc.shape[-1] * math.log(2 * math.pi)
        return -0.5 * quad - norm
    return q.log_prob(z[:, None, :])


def _guide_distribution(guide: Callable, x: torch.Tensor):
    if not has(guide, EncoderDistribution):
        raise SiteError(
            "the information split evaluates q(z | x_m) at other points' samples, which needs "
            "guide.distribution(x) (every AmortizedGuide has it); this guide has none."
        )
    return guide.distribution(x)


@torch.no_grad()
def information_split(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    *,
    num_samples: int = 1,
    batch_size: int = 1000,
    seed: int = 0,
) -> InformationSplit:
    """Splits E_x KL(q(z|x) || p(z)) over the N points of ``x`` into I_q(x; z) and
    KL(q(z) || p(z)), with q(z) the mixture over all N points (see the module docstring).

    Args:
        num_samples: S, samples z ~ q(z | x_n) per point.
        batch_size: samples and points per chunk of the streamed log-sum-exp; only memory and
            speed depend on it.
        seed: the samples come from a forked RNG with this seed.
    """
    check_data(x, batch_size)
    tr = poutine.trace(guide).get_trace(x[:2])
    sites = latent_sites(tr)
    if len(sites) != 1:
        raise SiteError(
            f"the information split handles one latent site; this guide has {list(sites)}."
        )
    name = next(iter(sites))
    one = poutine.trace(guide).get_trace(x[:1])  # batch shape [1]: broadcasts over any batch
    prior = poutine.trace(poutine.replay(model, trace=one)).get_trace(x[:1]).nodes[name]["fn"]
    n, s = len(x), num_samples
    z_all, own, log_p = [], [], []
    with forked_rng(x.device, seed):
        for i in range(0, n, SAMPLE_BLOCK):
            q = _guide_distribution(guide, x[i : i + SAMPLE_BLOCK])
            z = q.sample((s,))  # [S, B, d]
            z_all.append(z.transpose(0, 1).reshape(-1, z.shape[-1]))  # point-major rows
            own.append(q.log_prob(z).T.reshape(-1).double())
            log_p.append(_prior_log_prob(prior, z).T.reshape(-1).double())
    z_all, own, log_p = torch.cat(z_all), torch.cat(own), torch.cat(log_p)
    log_qz = torch.empty_like(own)
    # q(z | x_m) of every chunk of points, built once and reused for every chunk of samples
    qs = [_guide_distribution(guide, x[j : j + batch_size]) for j in range(0, n, batch_size)]
    for i in range(0, len(z_all), batch_size):
        z = z_all[i : i + batch_size]
        acc = torch.full((len(z),), -math.inf, dtype=torch.float64, device=x.device)
        for q in qs:
            lq = _log_prob_matrix(q, z)
            acc = torch.logaddexp(acc, torch.logsumexp(lq.double(), dim=1))
        log_qz[i : i + len(z)] = acc - math.log(n)
    return InformationSplit(
        *_mean_se(own - log_p),
        *_mean_se(own - log_qz),
        *_mean_se(log_qz - log_p),
        math.log(n),
        s,
    )


def _prior_log_prob(prior, z: torch.Tensor) -> torch.Tensor:
    """log p(z) of samples ``[S, B, d]`` under the site's prior (which must not depend on x)."""
    lp = prior.log_prob(z)
    if lp.dim() > 2 or (lp.dim() == 2 and lp.shape[-1] not in (1, z.shape[1])):
        raise SiteError("the information split needs a prior p(z) that is the same for all x.")
    return lp.expand(z.shape[:2])


def _mean_se(t: torch.Tensor) -> tuple[float, float]:
    return float(t.mean()), float(t.std() / math.sqrt(len(t)))
