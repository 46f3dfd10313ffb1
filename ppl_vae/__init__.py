"""ppl_vae: variational autoencoders as Pyro models, amortized guides, SVI objectives and
importance-weighted bounds on log p(x).

The names below are imported when first used, so ``import ppl_vae`` (and ``ppl-vae --help``)
does not wait for torch, Pyro and the rest to load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "DATASETS": ("data", "DATASETS"),
    "GUIDES": ("guides", "GUIDES"),
    "LIKELIHOODS": ("model", "LIKELIHOODS"),
    "MODEL_KINDS": ("runs.kinds", "MODEL_KINDS"),
    "OBJECTIVES": ("objectives", "OBJECTIVES"),
    "PRIORS": ("model", "PRIORS"),
    "VAE": ("model", "VAE"),
    "AmortizedGuide": ("guides", "AmortizedGuide"),
    "FitResult": ("training", "FitResult"),
    "LinearGaussian": ("data", "LinearGaussian"),
    "Recipe": ("runs.recipe", "Recipe"),
    "Splits": ("data", "Splits"),
    "bdmc_run": ("runs.bdmc", "bdmc_run"),
    "build_guide": ("guides", "build_guide"),
    "build_model": ("model", "build_model"),
    "build_objective": ("objectives", "build_objective"),
    "diagnose": ("analysis", "diagnose"),
    "diagnose_run": ("runs.diagnose", "diagnose_run"),
    "evaluate": ("bounds", "evaluate"),
    "evaluate_run": ("runs.evaluate", "evaluate_run"),
    "fit": ("training", "fit"),
    "load_data": ("data", "load_data"),
    "load_recipe_file": ("runs.recipe", "load"),
    "load_run": ("runs.run", "load_run"),
    "log_weights": ("bounds", "log_weights"),
    "sample_run": ("runs.sample", "sample_run"),
    "train_recipe": ("runs.run", "train_recipe"),
}
_SUBPACKAGES = {
    "bounds",
    "core",
    "cli",
    "data",
    "distributed",
    "guides",
    "layout",
    "model",
    "objectives",
    "reports",
    "runs",
    "storage",
    "testing",
    "training",
}

__all__ = [
    "DATASETS",
    "GUIDES",
    "LIKELIHOODS",
    "MODEL_KINDS",
    "OBJECTIVES",
    "PRIORS",
    "VAE",
    "AmortizedGuide",
    "FitResult",
    "LinearGaussian",
    "Recipe",
    "Splits",
    "bdmc_run",
    "build_guide",
    "build_model",
    "build_objective",
    "diagnose",
    "diagnose_run",
    "evaluate",
    "evaluate_run",
    "fit",
    "load_data",
    "load_recipe_file",
    "load_run",
    "log_weights",
    "sample_run",
    "train_recipe",
]

if TYPE_CHECKING:
    from .analysis import diagnose
    from .bounds import evaluate, log_weights
    from .data import DATASETS, LinearGaussian, Splits, load_data
    from .guides import GUIDES, AmortizedGuide, build_guide
    from .model import LIKELIHOODS, PRIORS, VAE, build_model
    from .objectives import OBJECTIVES, build_objective
    from .runs.bdmc import bdmc_run
    from .runs.diagnose import diagnose_run
    from .runs.evaluate import evaluate_run
    from .runs.kinds import MODEL_KINDS
    from .runs.recipe import Recipe
    from .runs.recipe import load as load_recipe_file
    from .runs.run import load_run, train_recipe
    from .runs.sample import sample_run
    from .training import FitResult, fit


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ppl_vae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBPACKAGES])
