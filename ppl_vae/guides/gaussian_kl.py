"""Closed-form KL(q || p) from the full-covariance and low-rank Gaussian guides to a diagonal
Gaussian prior, registered with ``torch.distributions.kl_divergence``.

The prior N(0, I) is ``Independent(Normal)``; torch knows KL(MultivariateNormal ||
MultivariateNormal) and KL(LowRankMultivariateNormal || MultivariateNormal) but has no rule for
an ``Independent(Normal)`` on the right, so ``elbo_analytic_kl`` (Pyro's TraceMeanField_ELBO)
would refuse these guides. Writing p as N(mu_p, diag(sigma_p^2)):

    KL = 0.5 [tr(Sigma_p^-1 Sigma_q) + (mu_p - mu_q)^T Sigma_p^-1 (mu_p - mu_q) - d
              + log det Sigma_p - log det Sigma_q].

References: Kingma & Welling (2014), Auto-Encoding Variational Bayes, appendix B.
"""

from __future__ import annotations

import torch
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    kl_divergence,
    register_kl,
)


def diagonal_as_multivariate(p: Independent) -> MultivariateNormal:
    """``Independent(Normal, 1)`` as the same MultivariateNormal; NotImplementedError otherwise."""
    if not isinstance(p.base_dist, Normal) or p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    return MultivariateNormal(p.base_dist.loc, scale_tril=torch.diag_embed(p.base_dist.scale))


@register_kl(MultivariateNormal, Independent)
def _kl_full_diagonal(q: MultivariateNormal, p: Independent) -> torch.Tensor:
    return kl_divergence(q, diagonal_as_multivariate(p))


@register_kl(LowRankMultivariateNormal, Independent)
def _kl_low_rank_diagonal(q: LowRankMultivariateNormal, p: Independent) -> torch.Tensor:
    return kl_divergence(q, diagonal_as_multivariate(p))
