"""Bounds on log p(x): log weights from Pyro traces, then pure estimators over ``log_w[K, N]``.

>>> log_w = log_weights(model, guide, x, num_particles=100, chunk_size=25)   # [100, N]
>>> iwae(log_w), elbo(log_w), ess(log_w), psis_khat(log_w)                    # each [N]
>>> evaluate(model, guide, x, ks=[1, 10, 100, 1000, 5000])                   # streamed
>>> ais(model, guide, x, num_steps=1000).log_p                                # annealed (AIS)
>>> x, z = simulate(model, 100); bdmc(model, guide, x, z).gap                 # BDMC sandwich

``ESTIMATORS`` lists what ``evaluate`` computes and the results files and tables show; an
``Estimator`` entry added with ``register`` appears in all of them (see ``registry.py``).
"""

from .ais import AISResult, ais
from .bdmc import BDMCResult, bdmc
from .estimators import KHAT_BAD, MIN_KHAT_PARTICLES, elbo, ess, iwae, mean_and_stderr, psis_khat
from .evaluate import DEFAULT_KS, auto_chunk, batch_seed, evaluate
from .log_weights import iter_log_weights, log_weights
from .per_point import Bounds
from .registry import ESTIMATORS, register, unregister
from .results import (
    format_table,
    read_inference_data,
    to_inference_data,
    write_results,
    write_scores,
)
from .simulate import simulate
from .spec import Estimator, Summary

__all__ = [
    "AISResult",
    "BDMCResult",
    "DEFAULT_KS",
    "ESTIMATORS",
    "KHAT_BAD",
    "MIN_KHAT_PARTICLES",
    "Bounds",
    "Estimator",
    "Summary",
    "ais",
    "auto_chunk",
    "batch_seed",
    "bdmc",
    "elbo",
    "ess",
    "evaluate",
    "format_table",
    "iter_log_weights",
    "iwae",
    "log_weights",
    "mean_and_stderr",
    "psis_khat",
    "read_inference_data",
    "register",
    "simulate",
    "to_inference_data",
    "unregister",
    "write_results",
    "write_scores",
]
