"""Estimators over log weights ``log_w[K, N]``: pure functions, one value per data point.

With w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z | x):
- ELBO     = (1/K) sum_k log w_k, an unbiased estimate of E_q[log w] <= log p(x);
- IWAE_K   = log (1/K) sum_k w_k, whose expectation is a lower bound on log p(x) that tightens
  as K grows;
- ESS      = (sum_k w_k)^2 / sum_k w_k^2, the effective sample size of the normalized weights;
- k-hat    = the Pareto shape fitted to the weights' right tail (PSIS); above ``KHAT_BAD`` = 0.7
  the importance sampling estimate is unreliable.

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders;
Vehtari, Simpson, Gelman, Yao & Gabry (2024), Pareto Smoothed Importance Sampling.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..core.errors import InputError

MIN_KHAT_PARTICLES = 21  # PSIS fits the tail to ceil(K / 5) > 4 of the largest weights
KHAT_BAD = 0.7  # Vehtari et al. (2024): above 0.7 importance sampling is unreliable


def _check(log_w: torch.Tensor) -> torch.Tensor:
    if not isinstance(log_w, torch.Tensor) or log_w.dim() != 2 or log_w.shape[0] < 1:
        shape = list(log_w.shape) if isinstance(log_w, torch.Tensor) else type(log_w)
        raise InputError(f"log_w must be a tensor of shape [K, N] with K >= 1, got {shape}.")
    if torch.isnan(log_w).any():
        raise InputError("log_w holds NaN; check the model and guide log densities.")
    return log_w


def elbo(log_w: torch.Tensor) -> torch.Tensor:
    """ELBO estimate per data point ``[N]``: the mean of the log weights over particles."""
    return _check(log_w).mean(0)


def iwae(log_w: torch.Tensor) -> torch.Tensor:
    """IWAE_K estimate per data point ``[N]``: logsumexp_k log w_k - log K."""
    return torch.logsumexp(_check(log_w), 0) - math.log(log_w.shape[0])


def ess(log_w: torch.Tensor) -> torch.Tensor:
    """Effective sample size per data point ``[N]``: (sum w)^2 / sum w^2, in [1, K]."""
    log_w = _check(log_w)
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


def psis_khat(log_w: torch.Tensor) -> torch.Tensor:
    """Pareto k-hat per data point ``[N]``, through ``arviz.psislw``.

    Needs K >= 21 particles: PSIS fits the largest ceil(K / 5) weights and needs at least 5.
    """
    log_w = _check(log_w)
    k = log_w.shape[0]
    if k < MIN_KHAT_PARTICLES:
        raise InputError(
            f"k-hat needs at least {MIN_KHAT_PARTICLES} particles (PSIS fits a Pareto tail to "
            f"the largest K/5 weights), got K = {k}; evaluate with more particles or skip k-hat."
        )
    import arviz as az  # imported here: arviz is slow to import and only k-hat needs it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns on k-hat > 0.7; we report the share
        _, khat = az.psislw(log_w.detach().double().cpu().numpy().T.copy())
    return torch.as_tensor(np.asarray(khat), dtype=torch.float64)


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Dataset mean of per-data-point values and its Monte Carlo standard error sd / sqrt(N),
    accumulated in float64."""
    v = values.detach().double().flatten()
    n = v.numel()
    if n == 0:
        raise InputError("cannot average over zero data points.")
    sd = v.std(unbiased=True).item() if n > 1 else float("nan")
    return v.mean().item(), sd / math.sqrt(n)
