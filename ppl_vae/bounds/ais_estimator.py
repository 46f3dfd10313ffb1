"""The ``"ais"`` entry of the estimator registry: AIS draws its own log weights per batch.

``evaluate`` computes it only when asked for, by name or with options (``OPT_IN`` in
``registry.py``): it costs num_steps x num_leapfrog model gradients per chain, far more than the
shared IWAE particles. Its options are those of ``ais`` (``num_steps``, ``num_chains``, ...),
e.g. ``evaluate(model, guide, x, options={"ais": {"num_steps": 1000, "num_chains": 16}})``;
the CLI passes ``--ais-steps`` and ``--ais-chains``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .ais import ais
from .estimators import iwae
from .spec import Estimator


def ais_log_weights(
    model: Callable, guide: Callable, x: torch.Tensor, k: int, chunk_size: int, **options
) -> torch.Tensor:
    """AIS log weights ``[num_chains, N]`` (the shared K and particle chunk do not apply)."""
    return ais(model, guide, x, **options).log_w


def ais_settings(options: Mapping[str, Any]) -> dict[str, int]:
    """What an AIS record says it drew: ``steps`` and ``chains`` (``ais``'s defaults where the
    options leave them)."""
    defaults = inspect.signature(ais).parameters
    pick = {"steps": "num_steps", "chains": "num_chains"}
    return {k: int(options.get(o, defaults[o].default)) for k, o in pick.items()}


# log mean_c w_c over the chains, as IWAE over its particles; an estimate of log p(x) in nats.
AIS = Estimator("ais", iwae, source=ais_log_weights, title="AIS", bound=True, settings=ais_settings)
