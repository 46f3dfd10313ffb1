"""``Bounds``: what ``evaluate`` returns, every estimator's value per data point, and their
dataset means with Monte Carlo standard errors (the records of ``eval.json``), with bits per
dimension beside each bound for a model whose likelihood is discrete (``bits.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .bits import with_bpd
from .estimators import mean_and_stderr
from .registry import ESTIMATORS
from .spec import Estimator


@dataclass
class Bounds:
    """Per-data-point values, ``values[name]``: ``[N, len(ks)]`` for a per-K estimator (IWAE_K
    for every K in ``ks``), ``[N]`` for one at K_max (ELBO, ESS, k-hat), in registry order.
    ``estimators`` holds their entries (by default, the registered ones of those names).

    Each value is an attribute too: ``bounds.iwae``, ``bounds.elbo``; a registered estimator
    that was not computed (k-hat below K = 21, or turned off) reads None.

    ``bpd_dims`` is D, the dimensions of a data point, when the model's likelihood is a mass
    over discrete levels (``bits.bpd_dims``): the records of the bounds then carry bits per
    dimension. None (the default) leaves them in nats alone.
    """

    ks: list[int]
    values: dict[str, torch.Tensor]
    estimators: dict[str, Estimator] = field(default_factory=dict)
    bpd_dims: int | None = None

    def __post_init__(self) -> None:
        for name in self.values:
            if name not in self.estimators:
                self.estimators[name] = ESTIMATORS[name]

    def __getattr__(self, name: str):
        # Only called when normal lookup fails; read __dict__ so that a half-built instance
        # (unpickling, copying) does not recurse.
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        if values is not None and name in ESTIMATORS:
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def n(self) -> int:
        """The number of data points."""
        return next(iter(self.values.values())).shape[0]

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def at_k_max(self, name: str) -> torch.Tensor:
        """The values ``[N]`` of estimator ``name`` at K_max (the last column of a per-K one)."""
        v = self.values[name]
        return v[:, -1] if self.estimators[name].per_k else v

    def estimates(self) -> list[dict]:
        """Dataset means with standard errors in nats per point: one record per estimator (and
        per K for a per-K one), each followed by its summaries, in registry order; with
        ``bpd_dims``, a bound's record also has ``bpd`` and ``bpd_stderr`` (bits per dimension)."""

        def row(name: str, k: int, values: torch.Tensor, dims: int | None = None) -> dict:
            mean, se = mean_and_stderr(values)
            r = {"estimator": name, "k": k, "mean": mean, "stderr": se, "n": self.n}
            est = self.estimators.get(name)
            if est is not None and est.settings is not None:
                r |= est.settings(est.options)  # what it drew itself, e.g. AIS steps, chains
            return with_bpd(r, dims)

        rows = []
        for name, v in self.values.items():
            est = self.estimators[name]
            dims = self.bpd_dims if est.bound else None  # bits/dim of bounds on log p(x) only
            if est.per_k:
                rows += [row(name, k, v[:, i], dims) for i, k in enumerate(self.ks)]
            else:
                rows.append(row(name, self.k_max, v, dims))
            rows += [row(s.name, self.k_max, s.of(self.at_k_max(name))) for s in est.summaries]
        return rows
