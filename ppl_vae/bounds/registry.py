"""The estimator registry: every per-data-point estimator that ``evaluate`` computes and that the
results files and ``compare`` tables show, in their column order.

A new estimator is one file that defines its ``Estimator`` entry (see ``spec.py``), plus its
import here and its name in ``BUILT_IN``, whose order is the order of the records and columns:

    from .ais import AIS
    BUILT_IN = (ELBO, IWAE, ESS, KHAT, AIS)

At run time, ``register`` adds one for the session (a notebook, a test), ``unregister`` takes
it out. The writers name estimators only for derived columns (``log_p`` = IWAE at K_max in
scores.csv, ``gap_K`` = IWAE_K - ELBO in the tables) and for the k-hat figure.
"""

from __future__ import annotations

from .ais_estimator import AIS
from .estimators import KHAT_BAD, MIN_KHAT_PARTICLES, elbo, ess, iwae, psis_khat
from .folds import RunningESS, RunningLogMeanExp, RunningMean
from .spec import Estimator, Summary


def _above_bad(khat):
    return (khat > KHAT_BAD).double()


ELBO = Estimator("elbo", elbo, fold=RunningMean, title="ELBO", bound=True)
IWAE = Estimator("iwae", iwae, per_k=True, fold=RunningLogMeanExp, title="IWAE", bound=True)
ESS = Estimator("ess", ess, fold=RunningESS, title="ESS", scores=False, table="mean", fmt="{:.1f}")
KHAT = Estimator(
    "khat",
    psis_khat,  # fitted to the whole tail: each batch's [K, N] is kept for it
    min_particles=MIN_KHAT_PARTICLES,
    title="k-hat",
    scores=False,
    table=None,
    summaries=(Summary(f"khat_above_{KHAT_BAD}", _above_bad, f"k-hat > {KHAT_BAD}"),),
)

BUILT_IN = (ELBO, IWAE, ESS, KHAT, AIS)
ESTIMATORS: dict[str, Estimator] = {e.name: e for e in BUILT_IN}
# Computed only when asked for by name or given options: they cost far more than the rest.
OPT_IN = {"ais"}


def _names(e: Estimator) -> list[str]:
    return [e.name] + [s.name for s in e.summaries]


def _clash(a: Estimator, b: Estimator) -> str | None:
    """A column name of ``a`` that ``b`` writes too (``b``'s ``name_K`` columns included)."""
    for x, y in ((a, b), (b, a)):
        for name in _names(x):
            per_k = y.per_k and name.startswith(y.name + "_") and name[len(y.name) + 1 :].isdigit()
            if name in _names(y) or per_k:
                return name
    return None


def register(estimator: Estimator, replace: bool = False) -> Estimator:
    """Adds ``estimator`` after the others (its columns come last) and returns it. A name that
    is registered already, or a column name another estimator writes, is an error; with
    ``replace``, an entry of the same name is replaced in place."""
    for other in ESTIMATORS.values():
        if replace and other.name == estimator.name:
            continue
        name = _clash(estimator, other)
        if name is not None:
            raise ValueError(
                f"estimator {estimator.name!r}: column {name!r} is taken by estimator "
                f"{other.name!r}; pick another name (or pass replace=True to replace an entry)."
            )
    ESTIMATORS[estimator.name] = estimator
    return estimator


def unregister(name: str) -> Estimator:
    """Takes the estimator ``name`` out of the registry; returns its entry."""
    if name not in ESTIMATORS:
        raise KeyError(f"no estimator {name!r}; registered: {', '.join(ESTIMATORS)}.")
    return ESTIMATORS.pop(name)
