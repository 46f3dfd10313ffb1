"""``fit()``: Pyro SVI with metrics, checkpoints, exact resume, Ctrl-C and data parallelism."""

from .loop import TrainingDiverged
from .svi import FitResult, estimate_elbo, fit

__all__ = ["FitResult", "TrainingDiverged", "estimate_elbo", "fit"]
