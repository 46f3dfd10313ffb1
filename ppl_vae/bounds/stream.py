"""One batch of data points evaluated by every chosen estimator from one stream of particles.

The particles' log weights arrive in chunks ``[C, N]``. Each chunk is cut where the particle
count reaches a requested K, and every part is folded (float64) into each streamed estimator
(``Estimator.fold``); a per-K estimator is read off its fold as the count reaches each K, so
IWAE_K uses exactly the first K particles. The chunks are kept whole, ``[K_max, N]``, only if
a chosen estimator needs them (k-hat); estimators with their own ``source`` draw afterwards,
each from its own seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch

from ..core.rng import derive_seed
from .spec import Estimator


class BatchStream:
    """Folds the particle chunks of one batch of ``n`` points into ``estimators``' statistics."""

    def __init__(self, ks: Sequence[int], estimators: Sequence[Estimator], n: int, device):
        self.ks = sorted(set(ks))
        self.estimators = list(estimators)
        self.folds = {e.name: e.fold(n, device) for e in estimators if e.fold is not None}
        self.at_k: dict[str, dict[int, torch.Tensor]] = {
            e.name: {} for e in estimators if e.fold is not None and e.per_k
        }
        self.keep = any(e.keeps_log_w for e in estimators)
        self.kept: list[torch.Tensor] = []
        self.count = 0

    def add(self, chunk: torch.Tensor) -> None:
        """Folds in the next particles' log weights ``chunk[C, N]``."""
        if self.keep:
            self.kept.append(chunk)
        chunk = chunk.double()
        start = 0
        while start < chunk.shape[0]:
            target = next(k for k in self.ks if k > self.count)
            part = chunk[start : start + target - self.count]
            for fold in self.folds.values():
                fold.add(part)
            self.count += part.shape[0]
            start += part.shape[0]
            if self.count == target:
                for name, values in self.at_k.items():
                    values[target] = self.folds[name].value()

    def result(
        self, model: Callable, guide: Callable, x: torch.Tensor, chunk_size: int, seed: int
    ) -> dict[str, torch.Tensor]:
        """Every estimator's values, ``[N, len(ks)]`` if per-K else ``[N]``, on the CPU.
        Estimators with a ``source`` draw from ``seed`` and their name, so that their values do
        not depend on which other estimators run."""
        log_w = torch.cat(self.kept) if self.keep else None
        out = {}
        for e in self.estimators:
            if e.fold is not None and e.per_k:
                v = torch.stack([self.at_k[e.name][k] for k in self.ks], -1)
            elif e.fold is not None:
                v = self.folds[e.name].value()
            else:
                own = log_w
                if e.source is not None:
                    torch.manual_seed(derive_seed(seed, zlib.crc32(e.name.encode())))
                    own = e.source(model, guide, x, self.ks[-1], chunk_size)
                if e.per_k:
                    v = torch.stack([e.compute(own[:k]) for k in self.ks], -1)
                else:
                    v = e.compute(own)
            out[e.name] = v.cpu()
        return out
