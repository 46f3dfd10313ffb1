"""SVI losses by name: each entry builds a loss that ``pyro.infer.SVI`` accepts.

``OBJECTIVES`` maps a recipe's ``objective.name`` to a builder ``(num_particles, **options)``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.infer import ELBO, Trace_ELBO

from .registry import lookup


def _elbo(num_particles: int = 1) -> ELBO:
    """Pyro's ``Trace_ELBO``, particles vectorized."""
    return Trace_ELBO(num_particles=num_particles, vectorize_particles=num_particles > 1)


OBJECTIVES: dict[str, Callable[..., ELBO]] = {
    "elbo": _elbo,
}


def build_objective(name: str = "elbo", num_particles: int = 1, **options) -> ELBO:
    """Builds a registered SVI loss by name."""
    if num_particles < 1:
        raise ValueError(f"objective.num_particles must be at least 1, got {num_particles}.")
    return lookup(OBJECTIVES, name, "objective")(num_particles=num_particles, **options)
