"""Running float64 folds over a stream of log-weight parts ``[C, N]``, so that an estimator over
K particles needs memory flat in K.

For parts P_1, P_2, ... of the particles of N data points:

- ``RunningMean``:       sum_k log w_k / K                             (the ELBO);
- ``RunningLogMeanExp``: logsumexp_k log w_k - log K                   (IWAE_K);
- ``RunningESS``:        exp(2 logsumexp_k log w_k - logsumexp_k 2 log w_k)   (the ESS).

Each logsumexp is folded with ``logaddexp``, which is exact up to float64 rounding, so a fold
equals the estimator of ``estimators.py`` applied to the concatenated parts.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class Fold(Protocol):
    """A running statistic of one batch of N data points; built as ``fold(n, device)``."""

    def add(self, part: torch.Tensor) -> None:
        """Folds in the log weights ``part[C, N]`` (float64) of the next C particles."""

    def value(self) -> torch.Tensor:
        """The estimate ``[N]`` over every particle folded in so far."""


def _empty(n: int, device: torch.device, fill: float) -> torch.Tensor:
    return torch.full((n,), fill, dtype=torch.float64, device=device)


class RunningMean:
    """The mean of the log weights: the ELBO."""

    def __init__(self, n: int, device: torch.device):
        self.total, self.count = _empty(n, device, 0.0), 0

    def add(self, part: torch.Tensor) -> None:
        self.total += part.sum(0)
        self.count += part.shape[0]

    def value(self) -> torch.Tensor:
        return self.total / self.count


class RunningLogMeanExp:
    """The log of the mean weight: IWAE_K after K particles."""

    def __init__(self, n: int, device: torch.device):
        self.lse, self.count = _empty(n, device, -math.inf), 0

    def add(self, part: torch.Tensor) -> None:
        self.lse = torch.logaddexp(self.lse, torch.logsumexp(part, 0))
        self.count += part.shape[0]

    def value(self) -> torch.Tensor:
        return self.lse - math.log(self.count)


class RunningESS:
    """The effective sample size (sum w)^2 / sum w^2, from the logsumexp of log w and 2 log w."""

    def __init__(self, n: int, device: torch.device):
        self.lse, self.lse2 = _empty(n, device, -math.inf), _empty(n, device, -math.inf)

    def add(self, part: torch.Tensor) -> None:
        self.lse = torch.logaddexp(self.lse, torch.logsumexp(part, 0))
        self.lse2 = torch.logaddexp(self.lse2, torch.logsumexp(2 * part, 0))

    def value(self) -> torch.Tensor:
        return torch.exp(2 * self.lse - self.lse2)
