"""Per-data-point noise: each data point's latent draws come from a seed of its own.

Normally a batch's reparameterization noise comes from one global stream, so the draws a data
point gets depend on which batch, process and position it lands in. Under ``PerPointNoise``
the standard-normal noise eps of data point i is drawn from a generator seeded with
(seed, epoch, i, site), and the latent is loc + scale * eps (``Normal``) or loc + L eps
(``MultivariateNormal``). A run then gives the same result however its batches are split, for
example across processes (``fit(noise="per_point")``), which makes data parallelism testable
step for step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pyro.distributions as dist
import torch
from pyro.poutine.messenger import Messenger

from ..core.errors import InputError
from ..core.rng import derive_seed
from ..core.tracing import DATA_PLATE, is_latent


class PerPointNoise(Messenger):
    """Draws every latent site's noise per data point, from ``indices`` (the batch's dataset
    indices) and ``(seed, epoch)``; supports (Independent) Normal and MultivariateNormal sites
    whose data plate is their last batch dimension."""

    def __init__(self, indices: Sequence[int], seed: int, epoch: int):
        super().__init__()
        self.indices = [int(i) for i in indices]
        self.seed, self.epoch = seed, epoch
        self.site = 0

    def _noise(self, shape: torch.Size, data_dim: int, like: torch.Tensor) -> torch.Tensor:
        """Standard normals of ``shape`` whose slice at data index i comes from i's seed."""
        moved = list(shape)
        n = moved.pop(data_dim)
        per_point = int(np.prod(moved)) if moved else 1
        eps = torch.stack(
            [
                torch.randn(
                    per_point,
                    generator=torch.Generator().manual_seed(
                        derive_seed(self.seed, self.epoch, i, self.site)
                    ),
                    dtype=like.dtype,
                )
                for i in self.indices
            ]
        )
        if eps.shape[0] != n:
            raise RuntimeError(f"PerPointNoise has {len(self.indices)} indices for {n} points.")
        return eps.reshape(n, *moved).movedim(0, data_dim).to(like.device)

    def _process_message(self, msg: dict) -> None:
        if not is_latent(msg) or msg["value"] is not None:
            return
        fn, event = msg["fn"], 0
        while isinstance(fn, dist.Independent):
            fn, event = fn.base_dist, event + fn.reinterpreted_batch_ndims
        frame = next((f for f in msg["cond_indep_stack"] if f.name == DATA_PLATE), None)
        batch = len(fn.batch_shape) - event
        if frame is None or frame.dim != -1:
            raise InputError(
                f"per-point noise needs site '{msg['name']}' inside pyro.plate('{DATA_PLATE}') "
                f"as its last batch dimension."
            )
        if isinstance(fn, dist.Normal):
            shape = fn.batch_shape
            eps = self._noise(shape, batch - 1, fn.loc)
            msg["value"] = fn.loc + fn.scale * eps
        elif isinstance(fn, dist.MultivariateNormal):
            shape = fn.batch_shape + fn.event_shape
            eps = self._noise(shape, len(fn.batch_shape) - 1, fn.loc)
            msg["value"] = fn.loc + (fn.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
        else:
            raise InputError(
                f"per-point noise supports Normal and MultivariateNormal guides; site "
                f"'{msg['name']}' has {type(fn).__name__}. Use noise = 'global'."
            )
        msg["done"] = True
        self.site += 1


def _global(seed: int):
    return lambda indices, epoch: contextlib.nullcontext()


def _per_point(seed: int):
    return lambda indices, epoch: PerPointNoise(indices.tolist(), seed, epoch)


# fit(noise=...): name -> (seed -> (batch indices, epoch) -> context for one SVI step)
NOISES = {"global": _global, "per_point": _per_point}
