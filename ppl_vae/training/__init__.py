"""``fit()``: Pyro SVI with metrics, checkpoints, exact resume, Ctrl-C and data parallelism."""

from .svi import FitResult, estimate_elbo, fit
from .loop import TrainingDiverged

__all__ = ["FitResult", "TrainingDiverged", "estimate_elbo", "fit"]
