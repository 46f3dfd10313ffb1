"""Bits per dimension: an estimate of log p(x) in nats per data point as -log2 p(x) / D.

    bpd = -log p(x) / (D log 2),    stderr(bpd) = stderr(log p(x)) / (D log 2),

with D the dimensions of one data point (pixels times channels). It is the figure papers on
8-bit images report, and it means that only where p(x) is a probability of the integer pixel
values: evaluation adds it for a model whose likelihood declares ``discrete_bits``
(``core.contract.DiscreteBits``: the discretized logistics), and leaves every other run's
records as they were. A lower bound on log p(x) (ELBO, IWAE_K, AIS) gives an upper bound on
bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core.contract import DiscreteBits, HasLikelihood, has

LN2 = math.log(2.0)


def bits_per_dim(log_p: float, dims: int) -> float:
    """-log p(x) / (D log 2): nats per data point to bits per dimension."""
    return -log_p / (dims * LN2)


def bpd_dims(model: Callable, x: torch.Tensor) -> int | None:
    """D of ``x`` ``[N, D]`` when ``model``'s likelihood is a mass over discrete levels
    (``DiscreteBits``), else None: bits per dimension are reported only then."""
    if has(model, HasLikelihood) and has(model.likelihood, DiscreteBits):
        return int(x.shape[-1])
    return None


def with_bpd(record: dict, dims: int | None) -> dict:
    """``record`` (an ``eval.json`` estimate in nats) with ``bpd`` and ``bpd_stderr`` added when
    ``dims`` is set; unchanged (the same keys, in the same order) when it is None."""
    if dims is None:
        return record
    bpd = bits_per_dim(record["mean"], dims)
    return {**record, "bpd": bpd, "bpd_stderr": record["stderr"] / (dims * LN2)}
