"""SVI losses by name: each entry builds a loss that ``pyro.infer.SVI`` accepts.

``OBJECTIVES`` maps a recipe's ``objective.name`` to a builder ``(num_particles, **options)``;
``build_objective`` adds the options every objective takes: a KL warm-up
(``kl_warmup_epochs``, ``kl_start``) and, for the ELBO family, free bits (``free_bits``,
``free_bits_group``). Each loss returns minus the objective summed over the batch, as Pyro's do.

>>> loss = build_objective("iwae_dreg", num_particles=50)
>>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from pyro.infer import ELBO, RenyiELBO, Trace_ELBO

from ..registry import lookup
from .analytic import AnalyticKL_ELBO
from .annealing import KLWarmup, LatentScale, warmup_weight
from .base import ObjectiveError, ParticleObjective, Particles
from .dreg import IWAE_DReG
from .free_bits import FreeBitsELBO
from .miwae import MIWAE
from .stl import STL_ELBO


def _elbo(num_particles: int = 1) -> ELBO:
    """Pyro's ``Trace_ELBO``, particles vectorized."""
    return Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1)


def _elbo_analytic_kl(num_particles: int = 1) -> ELBO:
    """Pyro's ``TraceMeanField_ELBO`` (closed-form KL), erroring where there is none."""
    return AnalyticKL_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1)


def _iwae(num_particles: int = 1) -> ELBO:
    """Pyro's ``RenyiELBO(alpha=0)``: IWAE_K with K = num_particles, vectorized."""
    return RenyiELBO(alpha=0.0, num_particles=num_particles, vectorize_particles=True)


def _renyi(num_particles: int = 1, alpha: float | None = None) -> ELBO:
    """Pyro's ``RenyiELBO(alpha)``, the Renyi bound of order alpha (alpha = 0: IWAE)."""
    if alpha is None or alpha == 1:
        raise ObjectiveError(
            f"the renyi objective needs objective.options.alpha != 1 (alpha = 0 is IWAE, alpha "
            f"-> 1 the ELBO: use objective.name = 'elbo' there), got {alpha!r}."
        )
    return RenyiELBO(alpha=float(alpha), num_particles=num_particles, vectorize_particles=True)


OBJECTIVES: dict[str, Callable[..., ELBO]] = {
    "elbo": _elbo,
    "elbo_analytic_kl": _elbo_analytic_kl,
    "elbo_stl": STL_ELBO,
    "iwae": _iwae,
    "iwae_dreg": IWAE_DReG,
    "miwae": MIWAE,
    "renyi": _renyi,
}

# The objectives with a KL term that free bits can floor, and how each estimates that KL.
FREE_BITS_KL: dict[str, str] = {"elbo": "sample", "elbo_analytic_kl": "analytic", "elbo_stl": "stl"}


def _build(name: str, builder: Callable, num_particles: int, options: dict) -> ELBO:
    params = inspect.signature(builder).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = [p for p in params if p != "num_particles"] + [
            "kl_warmup_epochs",
            "kl_start",
            "free_bits",
            "free_bits_group",
        ]
        raise ObjectiveError(
            f"objective '{name}' has no option {', '.join(map(repr, unknown))}; its options are: "
            f"{', '.join(valid)}."
        )
    return builder(num_particles=num_particles, **options)


def build_objective(
    name: str = "elbo",
    num_particles: int = 1,
    *,
    kl_warmup_epochs: int = 0,
    kl_start: float = 0.0,
    free_bits: float = 0.0,
    free_bits_group: str = "dim",
    **options,
) -> ELBO:
    """Builds a registered SVI loss by name.

    Args:
        name: a key of ``OBJECTIVES``.
        num_particles: K, the particles per data point (per group for ``miwae``/``iwae_dreg``).
        kl_warmup_epochs: if > 0, weight the latent terms by a KL weight rising linearly from
            ``kl_start`` (first epoch) to 1 (from this epoch on); see ``annealing``.
        free_bits: if > 0, floor each group's batch-mean KL at this many nats (``elbo``,
            ``elbo_analytic_kl``, ``elbo_stl`` only); groups are latent dimensions
            (``free_bits_group = "dim"``) or latent sites (``"site"``).
        **options: the objective's own options, e.g. ``alpha`` (renyi) or ``M`` (miwae).
    """
    if not isinstance(num_particles, int) or isinstance(num_particles, bool) or num_particles < 1:
        raise ObjectiveError(
            f"objective.num_particles must be an integer >= 1, got {num_particles!r}."
        )
    builder = lookup(OBJECTIVES, name, "objective")
    if kl_start and not kl_warmup_epochs:
        raise ObjectiveError("kl_start only applies with kl_warmup_epochs >= 1; set both.")
    if free_bits:
        if name not in FREE_BITS_KL:
            raise ObjectiveError(
                f"free bits floor the KL term of an ELBO ({', '.join(FREE_BITS_KL)}); objective "
                f"'{name}' has no separate KL term. Drop free_bits or pick one of those."
            )
        _build(name, builder, num_particles, options)  # rejects unknown options
        loss = FreeBitsELBO(num_particles, free_bits, FREE_BITS_KL[name], free_bits_group)
    else:
        loss = _build(name, builder, num_particles, options)
    if kl_warmup_epochs:
        loss = KLWarmup(loss, kl_warmup_epochs, kl_start)
    return loss


__all__ = [
    "FREE_BITS_KL",
    "IWAE_DReG",
    "MIWAE",
    "OBJECTIVES",
    "STL_ELBO",
    "AnalyticKL_ELBO",
    "FreeBitsELBO",
    "KLWarmup",
    "LatentScale",
    "ObjectiveError",
    "ParticleObjective",
    "Particles",
    "build_objective",
    "warmup_weight",
]
