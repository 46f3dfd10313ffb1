"""What an estimator declares to be evaluated, written and compared: an ``Estimator`` entry.

An estimator maps log weights ``log_w[K, N]`` to one value per data point ``[N]``. Its entry
says where the log weights come from and how ``evaluate`` reaches them:

- ``fold``: streamed, a running float64 statistic of the shared particle stream (``folds.py``),
  so memory stays flat in K;
- neither ``fold`` nor ``source``: the shared particles of each batch of data points are kept
  whole, ``[K_max, batch]``, and ``compute`` is applied to them (k-hat needs the whole tail);
- ``source``: the estimator draws its own log weights for each batch, ``source(model, guide,
  x, k, chunk_size) -> [k, batch]`` (e.g. annealed importance sampling), and ``compute`` is
  applied to them.

``per_k`` estimators get one value per requested K (IWAE_K, from the first K particles); the
others one value at K_max. Everything downstream (``Bounds.estimates``, ``eval.json``,
``eval.nc``, ``scores.csv``, the ``compare`` tables and the bound-vs-K figure) reads these
entries, so a new estimator needs no change there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .folds import Fold

PerPoint = Callable[[torch.Tensor], torch.Tensor]
Source = Callable[[Callable, Callable, torch.Tensor, int, int], torch.Tensor]
TABLE_STYLES = ("mean_se", "mean", None)
# Columns that the writers use for other things: an estimator may not take their names.
RESERVED = {"datapoint", "label", "log_p", "k", "run", "guide", "objective", "likelihood", "n"}
RESERVED |= {"k_max", "gap", "bpd", "ais_bpd"}


@dataclass(frozen=True)
class Summary:
    """A dataset-level row derived from an estimator's per-point values ``v[N]``: the mean and
    standard error of ``of(v)``, e.g. the share of k-hat above 0.7 with ``of = v > 0.7``.
    ``title`` heads its markdown column; ``fmt`` formats its mean there."""

    name: str
    of: PerPoint
    title: str
    fmt: str = "{:.1%}"


@dataclass(frozen=True)
class Estimator:
    """A per-data-point estimator and how it is computed, written and shown.

    ``name``: its key in ``eval.json``, its variable in ``eval.nc`` and its column(s) in
    ``scores.csv`` and ``compare.csv`` (``name_K`` for every K when ``per_k``).
    ``compute``: the pure function ``log_w[K, N] -> [N]``.
    ``fold`` / ``source``: see the module docstring. ``min_particles``: the K it needs; below
    it, ``evaluate`` skips the estimator unless it was asked for by name.
    ``title``: its name in headers and messages. ``bound``: its values estimate log p(x) in
    nats, so the bound-vs-K figure draws it. ``scores``: a column of ``scores.csv``.
    ``table``: its ``compare`` columns, "mean_se" (mean and standard error), "mean", or None.
    ``fmt``: how a "mean" cell is written in markdown. ``summaries``: derived rows.
    ``settings``: for a ``source`` estimator, its options -> the fields its records carry to
    say what was drawn (AIS: steps and chains), since K, the shared particles, does not apply;
    ``options``: those given to this evaluation (``evaluate.with_options`` sets them).
    """

    name: str
    compute: PerPoint
    per_k: bool = False
    fold: Callable[[int, torch.device], Fold] | None = None
    source: Source | None = None
    min_particles: int = 1
    title: str = ""
    bound: bool = False
    scores: bool = True
    table: str | None = "mean_se"
    fmt: str = "{:.2f}"
    summaries: tuple[Summary, ...] = ()
    settings: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)
        names = [self.name] + [s.name for s in self.summaries]
        bad = [n for n in names if not n or "," in n or n in RESERVED or n.endswith("_se")]
        if bad:
            raise ValueError(f"estimator name {bad[0]!r} is reserved or not a column name.")
        if self.fold is not None and self.source is not None:
            raise ValueError(f"estimator {self.name!r}: give a fold or a source, not both.")
        if self.table not in TABLE_STYLES:
            raise ValueError(f"estimator {self.name!r}: table must be one of {TABLE_STYLES}.")
        if self.per_k and self.min_particles > 1:
            # A per-K estimator has a value at every requested K, K = 1 included.
            raise ValueError(f"per-K estimator {self.name!r} must work from K = 1.")

    @property
    def keeps_log_w(self) -> bool:
        """Whether it needs each batch's shared particles whole, ``[K_max, batch]``."""
        return self.fold is None and self.source is None

    def columns(self, ks: Sequence[int]) -> list[str]:
        """Its column names: ``name_K`` for every K when per-K, else ``name``."""
        return [f"{self.name}_{k}" for k in ks] if self.per_k else [self.name]
