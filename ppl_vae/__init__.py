"""ppl_vae: variational autoencoders as Pyro models, amortized guides, SVI objectives and
importance-weighted bounds on log p(x)."""

from .config import Recipe
from .config import load as load_recipe_file
from .data import DATASETS, LinearGaussian, Splits, load_data
from .guides import GUIDES, AmortizedGuide, build_guide
from .likelihoods import LIKELIHOODS
from .malloc import keep_freed_memory
from .model import VAE, build_model
from .objectives import OBJECTIVES, build_objective
from .run import load_run, train_recipe
from .train import FitResult, fit

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "GUIDES",
    "LIKELIHOODS",
    "OBJECTIVES",
    "VAE",
    "AmortizedGuide",
    "FitResult",
    "LinearGaussian",
    "Recipe",
    "Splits",
    "build_guide",
    "build_model",
    "build_objective",
    "fit",
    "keep_freed_memory",
    "load_data",
    "load_recipe_file",
    "load_run",
    "train_recipe",
]
