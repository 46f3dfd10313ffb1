"""``fit()``: Pyro SVI with metrics, checkpoints, exact resume, Ctrl-C and data parallelism."""

from .loop import TrainingDiverged
from .metrics import estimate_elbo
from .svi import FitResult, fit

__all__ = ["FitResult", "TrainingDiverged", "estimate_elbo", "fit"]
