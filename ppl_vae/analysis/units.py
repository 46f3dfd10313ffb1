"""Active units: a latent unit u is active when the data move its posterior mean,

    A_u = Var_x( E_{q(z|x)}[z_u] ) > threshold   (0.01 in Burda et al.),

the variance taken over the evaluated data points (population variance, as ``numpy.var``).

The posterior mean E_q[z_u | x] of each latent site is found in one of three ways, and the
result names which (``ActiveUnits.mean_estimate``):

- ``"closed form"``: a guide with one latent site whose distribution has a mean in torch
  (Normal, MultivariateNormal, ...): one pass over the data, no sampling.
- ``"closed form, averaged over S guide samples"``: several latent sites, each with a mean in
  closed form given the sites sampled before it (a hierarchical guide q(z1|x) q(z2|z1, x)).
  E_q[z2|x] = E_{q(z1|x)}[ E[z2|z1, x] ] is the average of the conditional means over S traces
  of the guide (Rao-Blackwellized; exact for a site that depends on x alone).
- ``"Monte Carlo over S guide samples"``: no closed-form mean (normalizing flows): the average
  of S samples of z.

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, section 5.2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.errors import InputError
from .sites import check_data, closed_form_mean, iter_traces, latent_sites, per_particle, units

THRESHOLD = 0.01  # Burda et al.'s activity threshold on Var_x E_q[z_u | x]
NUM_SAMPLES = 100  # guide samples per data point where the mean is not one closed form


@dataclass(frozen=True)
class ActiveUnits:
    """Activity of the units of one latent site.

    Attributes:
        variance: Var_x E_q[z_u | x] per unit, ``[d]`` (float64, on the CPU).
        threshold: units with a variance above it are active.
        mean_estimate: how E_q[z_u | x] was computed (see the module docstring).
    """

    variance: torch.Tensor
    threshold: float
    mean_estimate: str

    @property
    def active(self) -> torch.Tensor:
        """A boolean mask ``[d]`` of the active units."""
        return self.variance > self.threshold

    @property
    def count(self) -> int:
        """The number of active units."""
        return int(self.active.sum())

    @property
    def units(self) -> int:
        """The number of units of the site."""
        return len(self.variance)


def _check_samples(num_samples: int) -> None:
    if not isinstance(num_samples, int) or num_samples < 2:
        raise InputError(
            f"num_samples must be an integer >= 2 (the Monte Carlo error of the posterior mean "
            f"is estimated from the spread of the samples), got {num_samples!r}."
        )


@dataclass(frozen=True)
class PosteriorMeans:
    """E_q[z | x_n] of every latent site over the data, ``{site: [N, d]}`` (float64, CPU).

    Attributes:
        mean: the estimates of E_q[z | x_n].
        noise: their Monte Carlo variances, s_n^2 / S from the S per-sample values of each
            point, ``[N, d]`` (zeros where the mean is exact).
        how: how each site's mean was computed (see the module docstring).
    """

    mean: dict[str, torch.Tensor]
    noise: dict[str, torch.Tensor]
    how: dict[str, str]


@torch.no_grad()
def posterior_means(
    guide: Callable, x: torch.Tensor, *, batch_size: int = 1000, num_samples: int = NUM_SAMPLES
) -> PosteriorMeans:
    """E_q[z | x_n] for every latent site of ``guide`` (see the module docstring for how)."""
    check_data(x, batch_size)
    _check_samples(num_samples)
    first = latent_sites(next(iter_traces(guide, x[:2], 2))[1])
    exact = len(first) == 1 and closed_form_mean(next(iter(first.values()))["fn"]) is not None
    done: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # site -> (mean, noise)
    how: dict[str, str] = {}
    for rows, tr, _ in iter_traces(guide, x, batch_size, 0 if exact else num_samples):
        n = rows.stop - rows.start
        for name, site in latent_sites(tr).items():
            fn, mean = site["fn"], closed_form_mean(site["fn"])
            shape = per_particle(units(site["value"], fn), n).shape
            v = per_particle(units(site["value"] if mean is None else mean, fn), n)
            v = v.double().expand(shape)
            how.setdefault(name, _how(exact, mean is not None, num_samples))
            s = shape[0]
            m = v.mean(0)
            # the sample variance of the S values, over S: the variance of their mean
            noise = v.var(0) / s if s > 1 else torch.zeros_like(m)
            done.setdefault(name, []).append((m.cpu(), noise.cpu()))
    return PosteriorMeans(
        {name: torch.cat([m for m, _ in parts]) for name, parts in done.items()},
        {name: torch.cat([e for _, e in parts]) for name, parts in done.items()},
        how,
    )


def _how(exact: bool, closed: bool, num_samples: int) -> str:
    if exact:
        return "closed form"
    if closed:
        return f"closed form, averaged over {num_samples} guide samples"
    return f"Monte Carlo over {num_samples} guide samples"


def unit_variance(means: PosteriorMeans, site: str) -> torch.Tensor:
    """Var_x E_q[z_u | x] per unit ``[d]``, with the Monte Carlo noise of the estimated means
    taken out: E[(1/N) sum_n (m^_n - mean(m^))^2] = Var_x m + (N - 1)/N mean_n(s_n^2 / S), so
    that term is subtracted (and the result floored at 0). Without it a dead unit of a flow
    guide (q = p(z) = N(0, 1) there) would show a variance of about 1/S: 0.01 at S = 100."""
    m, noise = means.mean[site], means.noise[site]
    n = len(m)
    return (m.var(0, unbiased=False) - (n - 1) / n * noise.mean(0)).clamp(min=0)


def active_units(
    guide: Callable,
    x: torch.Tensor,
    *,
    threshold: float = THRESHOLD,
    batch_size: int = 1000,
    num_samples: int = NUM_SAMPLES,
) -> dict[str, ActiveUnits]:
    """Burda et al.'s active units of every latent site of ``guide`` over the data ``x``.

    Args:
        guide: any guide that samples its latent sites under ``pyro.plate("data", N)``.
        x: the data points ``[N, ...]`` (N >= 2), e.g. the test set.
        threshold: a unit is active when Var_x E_q[z_u | x] exceeds it (0.01).
        batch_size: data points traced at once.
        num_samples: guide samples per data point where E_q[z | x] is not one closed form
            (several sites, or flows); unused for a one-site guide with a closed-form mean.
            Their Monte Carlo noise is taken out of the variance (``unit_variance``).

    Returns:
        ``{site: ActiveUnits}`` with ``.variance [d]``, ``.count``, ``.threshold`` and
        ``.mean_estimate`` (how the posterior mean was computed).

    References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    """
    if not isinstance(threshold, int | float) or threshold < 0:
        raise InputError(f"threshold must be a number >= 0, got {threshold!r}.")
    means = posterior_means(guide, x, batch_size=batch_size, num_samples=num_samples)
    return {
        name: ActiveUnits(unit_variance(means, name), float(threshold), means.how[name])
        for name in means.mean
    }
