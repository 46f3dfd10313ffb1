"""SVI losses by name: each entry builds a loss that ``pyro.infer.SVI`` accepts.

``OBJECTIVES`` maps a recipe's ``objective.name`` to a builder ``(num_particles, **options)``;
an objective's options are its builder's keywords. ``build_objective`` adds the wrappers any
objective takes (``WRAPPER_OPTIONS``): free bits (``free_bits``, ``free_bits_group``; objectives
with a KL term) inside a KL warm-up (``kl_warmup_epochs``, ``kl_start``), i.e.
``KLWarmup(FreeBits(objective))``. Each loss returns minus the objective summed over the batch,
as Pyro's do.

>>> loss = build_objective("iwae_dreg", num_particles=50)
>>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss)

References: see each objective's module (``stl``, ``dreg``, ``miwae``, ``piwae``, ``ciwae``,
``free_bits``, ``annealing``, ``analytic``); Pyro's ``Trace_ELBO`` and ``RenyiELBO`` (Li & Turner
(2016), Renyi Divergence Variational Inference).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pyro.infer import ELBO, RenyiELBO, Trace_ELBO

from ..core.options import check_options, parameters
from ..core.registry import lookup
from .analytic import AnalyticKL_ELBO
from .annealing import KLWarmup, LatentScale, warmup_weight
from .base import ObjectiveError, ParticleObjective, Particles
from .ciwae import CIWAE
from .dreg import IWAE_DReG
from .free_bits import FreeBits, FreeBitsELBO, kl_estimate_of
from .miwae import MIWAE
from .piwae import PIWAE
from .semi_supervised import SemiSupervisedELBO
from .stl import STL_ELBO

# The options of the wrappers build_objective puts around any objective.
WRAPPER_OPTIONS = ("kl_warmup_epochs", "kl_start", "free_bits", "free_bits_group", "kl_weight")


def _elbo(num_particles: int = 1) -> ELBO:
    """Pyro's ``Trace_ELBO``, particles vectorized."""
    return Trace_ELBO(
        num_particles=num_particles,
        vectorize_particles=num_particles > 1,
    )


def _elbo_analytic_kl(num_particles: int = 1) -> ELBO:
    """Pyro's ``TraceMeanField_ELBO`` (closed-form KL), erroring where there is none."""
    return AnalyticKL_ELBO(
        num_particles=num_particles,
        vectorize_particles=num_particles > 1,
    )


def _renyi_elbo(alpha: float, num_particles: int) -> ELBO:
    return RenyiELBO(
        alpha=alpha,
        num_particles=num_particles,
        vectorize_particles=True,
    )


def _iwae(num_particles: int = 1) -> ELBO:
    """Pyro's ``RenyiELBO(alpha=0)``: IWAE_K with K = num_particles, vectorized."""
    return _renyi_elbo(0.0, num_particles)


def _renyi(num_particles: int = 1, alpha: float | None = None) -> ELBO:
    """Pyro's ``RenyiELBO(alpha)``, the Renyi bound of order alpha (alpha = 0: IWAE)."""
    if alpha is None or alpha == 1:
        raise ObjectiveError(
            f"the renyi objective needs objective.options.alpha != 1 (alpha = 0 is IWAE, alpha "
            f"-> 1 the ELBO: use objective.name = 'elbo' there), got {alpha!r}."
        )
    return _renyi_elbo(float(alpha), num_particles)


OBJECTIVES: dict[str, Callable[..., ELBO]] = {
    "elbo": _elbo,
    "elbo_analytic_kl": _elbo_analytic_kl,
    "elbo_stl": STL_ELBO,
    "iwae": _iwae,
    "iwae_dreg": IWAE_DReG,
    "miwae": MIWAE,
    "piwae": PIWAE,  # IWAE_{MK} for the model, MIWAE_{M,K} for the guide
    "ciwae": CIWAE,  # beta ELBO + (1 - beta) IWAE
    "renyi": _renyi,
    "semi_supervised": SemiSupervisedELBO,  # M2 alone: y summed out, + alpha x classification
}


def _kl_estimate(builder: Callable[..., ELBO]) -> str | None:
    try:
        return kl_estimate_of(builder())
    except ObjectiveError:  # renyi needs alpha; it has no KL term either way
        return None


# The objectives with a KL term that free bits can floor, and how each estimates that KL, as
# the objectives themselves declare it (``kl_estimate_of``); a table for reading only.
FREE_BITS_KL: dict[str, str] = {n: kl for n, b in OBJECTIVES.items() if (kl := _kl_estimate(b))}


def objective_options(name: str) -> tuple[str, ...]:
    """The options objective ``name`` takes: its builder's keywords, then ``WRAPPER_OPTIONS``."""
    params = inspect.signature(lookup(OBJECTIVES, name, "objective")).parameters
    return tuple(p for p in params if p != "num_particles") + WRAPPER_OPTIONS


def wrapper_option_types() -> dict[str, Any]:
    """``WRAPPER_OPTIONS`` as ``{name: annotation}``, read from ``build_objective``'s signature:
    the options every objective takes, for the option checker."""
    types = parameters(build_objective, keyword_only=True)
    return {name: types.get(name, Any) for name in WRAPPER_OPTIONS}


# objective.num_particles is a key of its own, not an entry of objective.options
RESERVED = {
    "num_particles": "objective.num_particles",
    "labelled_scale": "data.labels and model.options.labelled_fraction (the run derives it)",
}


def build_objective(
    name: str = "elbo",
    num_particles: int = 1,
    *,
    kl_warmup_epochs: int = 0,
    kl_start: float = 0.0,
    free_bits: float = 0.0,
    free_bits_group: str = "dim",
    kl_weight: float = 1.0,
    derived: dict | None = None,
    **options,
) -> ELBO:
    """Builds a registered SVI loss by name, wrapped as ``KLWarmup(FreeBits(loss))`` where asked.

    Args:
        name: a key of ``OBJECTIVES``.
        num_particles: K, the particles per data point (per group for ``miwae``, ``piwae``,
            ``iwae_dreg``).
        kl_warmup_epochs: if > 0, weight the latent terms by a KL weight rising linearly from
            ``kl_start`` (first epoch) to 1 (from this epoch on); see ``annealing``.
        free_bits: if > 0, floor each group's batch-mean KL at this many nats (objectives with
            a KL term: ``FREE_BITS_KL``); groups are latent dimensions
            (``free_bits_group = "dim"``) or latent sites (``"site"``); see ``free_bits``.
        kl_weight: beta, the KL weight after any warm-up (1: the objective itself; > 1 a
            beta-VAE, which pushes units into posterior collapse); see ``annealing``.
        derived: options the run derives from the data, not the recipe (``RESERVED`` keys
            other than num_particles: M2's ``labelled_scale``).
        **options (Any): the objective's own options, e.g. ``alpha`` (renyi), ``M`` (miwae,
            piwae) or ``beta`` (ciwae).
    """
    if not isinstance(num_particles, int) or isinstance(num_particles, bool) or num_particles < 1:
        raise ObjectiveError(
            f"objective.num_particles must be an integer >= 1, got {num_particles!r}."
        )
    builder = lookup(OBJECTIVES, name, "objective")
    check_options(
        builder,
        options,
        key="objective.options",
        owner=f"objective {name!r}",
        reserved=RESERVED,
        extra=wrapper_option_types(),
        error=ObjectiveError,
    )
    if kl_start and not kl_warmup_epochs:
        raise ObjectiveError("kl_start only applies with kl_warmup_epochs >= 1; set both.")
    loss = builder(num_particles=num_particles, **options, **(derived or {}))
    if free_bits:
        if kl_estimate_of(loss) is None:
            raise ObjectiveError(
                f"free bits floor the KL term of an ELBO ({', '.join(FREE_BITS_KL)}); objective "
                f"'{name}' has no separate KL term. Drop free_bits or pick one of those."
            )
        loss = FreeBits(loss, free_bits, free_bits_group)
    if kl_warmup_epochs or kl_weight != 1.0:
        loss = KLWarmup(loss, kl_warmup_epochs, kl_start, end=kl_weight)
    return loss


__all__ = [
    "CIWAE",
    "FREE_BITS_KL",
    "IWAE_DReG",
    "MIWAE",
    "OBJECTIVES",
    "PIWAE",
    "STL_ELBO",
    "WRAPPER_OPTIONS",
    "AnalyticKL_ELBO",
    "FreeBits",
    "FreeBitsELBO",
    "KLWarmup",
    "LatentScale",
    "ObjectiveError",
    "ParticleObjective",
    "Particles",
    "build_objective",
    "wrapper_option_types",
    "kl_estimate_of",
    "objective_options",
    "warmup_weight",
]
