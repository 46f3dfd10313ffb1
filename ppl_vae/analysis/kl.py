"""KL per latent unit, KL_u = (1/N) sum_n KL(q(z_u | x_n) || p(z_u)), and per latent site.

For each latent site the guide is traced and the model replayed on its values, which gives the
prior p(z) of that site (given the sites it depends on, in a hierarchical model). Per unit u,
q(z_u | x) and p(z_u) are the one-dimensional marginals: the base of ``Normal(...).to_event(1)``,
or N(mu_u, Sigma_uu) of a full-covariance or low-rank Gaussian. Then, in order of preference:

- ``"closed form"``: ``torch.distributions.kl_divergence`` of the marginals (Normal against
  Normal for the built-in VAE); with several latent sites it is averaged over S guide samples
  of the sites each depends on, and the standard error is that average's;
- ``"Monte Carlo"`` with the marginal densities: mean over S samples of
  log q(z_u | x) - log p(z_u), with its standard error;
- ``"Monte Carlo, spacing entropy"``, for a guide whose q(z|x) has no one-dimensional marginals
  in closed form (normalizing flows, mixtures): KL_u = -H[q(z_u|x)] - E_q log p(z_u), with the
  entropy of each marginal from its S samples by scipy's ``differential_entropy`` (Ebrahimi's
  spacing estimator, consistent in S but biased at finite S: on N(0, 1) samples we measured
  -0.023 nats at S = 100 and -0.004 at S = 200, so KL_u comes out that much high); the
  standard error covers the second term only.

A site's total KL, E_x KL(q(z|x) || p(z)), is the closed form of the joint where torch has one
and the Monte Carlo mean of log q(z|x) - log p(z) otherwise. The sum of the per-unit KLs equals
it only for a q that factorizes over units; for a correlated q the difference is q's total
correlation, E_x KL(q(z|x) || prod_u q(z_u|x)) >= 0.

References: Burda, Grosse & Salakhutdinov (2016), section 5.2; Ebrahimi, Pflughoeft & Soofi
(1994), Two Measures of Sample Entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from .sites import check_data, iter_traces, latent_sites, per_particle, units

NUM_SAMPLES = 100


@dataclass(frozen=True)
class SiteKL:
    """The KL of one latent site, in nats per data point.

    Attributes:
        per_unit: KL_u per unit ``[d]`` (float64), or None where the prior has no marginals.
        per_unit_se: the Monte Carlo standard error of each KL_u (zeros when exact).
        total: E_x KL(q(z|x) || p(z)) of the site; ``total_se``: its standard error.
        method: how the per-unit KL was computed (see the module docstring).
    """

    per_unit: torch.Tensor | None
    per_unit_se: torch.Tensor | None
    total: float
    total_se: float
    method: str


def marginals(fn) -> torch.distributions.Distribution | None:
    """The one-dimensional marginals of a distribution over ``[d]`` as one batched univariate
    distribution ``[..., d]``, or None where torch has no closed form for them."""
    if isinstance(fn, Independent) and fn.reinterpreted_batch_ndims == 1:
        return fn.base_dist if fn.base_dist.event_shape == () else None
    if isinstance(fn, MultivariateNormal | LowRankMultivariateNormal):
        return Normal(fn.loc, fn.variance.sqrt())
    if len(fn.event_shape) == 0:
        return fn
    return None


def _closed_kl(q, p) -> torch.Tensor | None:
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return None


def _spacing_entropy(z: torch.Tensor) -> torch.Tensor:
    """Ebrahimi's spacing estimate of the entropy of each marginal, from samples ``[S, N, d]``."""
    from scipy.stats import differential_entropy

    h = differential_entropy(z.double().cpu().numpy(), axis=0, method="ebrahimi")
    return torch.as_tensor(h)


def _mean_se(v: torch.Tensor, n_total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over data points of the particle means of ``v [S, n, ...]``, and of their MC
    variances (to be turned into a standard error of the mean over all ``n_total`` points)."""
    s = v.shape[0]
    mean = v.mean(0).sum(0)
    var = (v.var(0) / s).sum(0) if s > 1 else torch.zeros_like(mean)
    return mean, var


@torch.no_grad()
def kl_per_unit(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    *,
    batch_size: int = 1000,
    num_samples: int = NUM_SAMPLES,
) -> dict[str, SiteKL]:
    """KL per unit and in total of every latent site, averaged over the data ``x``
    (see the module docstring for the estimators). Returns ``{site: SiteKL}``."""
    check_data(x, batch_size)
    probe = next(iter_traces(guide, x[:2], 2, 0, model))
    sites = latent_sites(probe[1])
    one = len(sites) == 1
    site, prior = next(iter(sites.values())), probe[2].nodes[next(iter(sites))]
    q_m, p_m = marginals(site["fn"]), marginals(prior["fn"])
    exact = one and q_m is not None and p_m is not None and _closed_kl(q_m, p_m) is not None
    exact = exact and _closed_kl(site["fn"], prior["fn"]) is not None
    s = 0 if exact else num_samples
    acc: dict[str, dict[str, torch.Tensor | float | str | None]] = {}
    for rows, gtr, mtr in iter_traces(guide, x, batch_size, s, model):
        n = rows.stop - rows.start
        for name, g in latent_sites(gtr).items():
            p = mtr.nodes[name]
            a = acc.setdefault(name, {"unit": 0.0, "unit_var": 0.0, "tot": 0.0, "tot_var": 0.0})
            unit, method = _unit_terms(g, p, n)
            a["method"] = method
            if unit is None:
                a["unit"] = None
            elif a["unit"] is not None:
                mean, var = _mean_se(unit, len(x))
                a["unit"], a["unit_var"] = a["unit"] + mean, a["unit_var"] + var
            total = _closed_kl(g["fn"], p["fn"])
            if total is None:
                total = g["fn"].log_prob(g["value"]) - p["fn"].log_prob(g["value"])
            mean, var = _mean_se(per_particle(total.double().reshape(-1, n, 1), n), len(x))
            a["tot"], a["tot_var"] = a["tot"] + float(mean), a["tot_var"] + float(var)
    n_all = len(x)
    out = {}
    for name, a in acc.items():
        unit = a["unit"]
        out[name] = SiteKL(
            None if unit is None else unit / n_all,
            None if unit is None else a["unit_var"].sqrt() / n_all,
            a["tot"] / n_all,
            a["tot_var"] ** 0.5 / n_all,
            _method(a["method"], exact, num_samples),
        )
    return out


def _method(method: str, exact: bool, num_samples: int) -> str:
    if method == "closed form" and not exact:
        return f"closed form, averaged over {num_samples} guide samples"
    if method.startswith("Monte Carlo"):
        return f"{method} ({num_samples} guide samples)"
    return method


def _unit_terms(g: dict, p: dict, n: int) -> tuple[torch.Tensor | None, str]:
    """Per-unit KL terms ``[S, n, d]`` of one traced site, and the method's name."""
    q_m, p_m = marginals(g["fn"]), marginals(p["fn"])
    if p_m is None:
        return None, "unavailable: the prior of this site has no one-dimensional marginals"
    if q_m is not None:
        kl = _closed_kl(q_m, p_m)
        if kl is not None:
            kl = units(kl.expand(g["value"].shape), g["fn"])
            return per_particle(kl, n).double(), "closed form"
        z = g["value"]
        terms = q_m.log_prob(z) - p_m.log_prob(z)
        return per_particle(units(terms, g["fn"]), n).double(), "Monte Carlo"
    z = per_particle(units(g["value"], g["fn"]), n)
    cross = per_particle(units(-p_m.log_prob(g["value"]), g["fn"]), n).double()
    h = _spacing_entropy(z).to(cross.device)
    return cross - h, "Monte Carlo, spacing entropy"
