"""Streaming evaluation of ELBO, IWAE_K for several K, ESS and k-hat over a dataset.

Particles are drawn in chunks and folded into running sums (float64): a running logsumexp of
log w and of 2 log w, and a running sum of log w. IWAE_K for each requested K is read off the
same particle stream after its first K particles. ``[K, N]`` is kept only when k-hat needs it,
one batch of data points at a time, so memory is flat in K otherwise.

Each batch of data points draws its particles from its own seed, derived from ``seed`` and the
batch's first index: results do not depend on which process or call evaluates a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..distributed import SINGLE, World, all_gather
from ..errors import InputError
from ..model.checks import checked_once
from ..training.noise import derive_seed
from .estimators import MIN_KHAT_PARTICLES, mean_and_stderr, psis_khat
from .log_weights import iter_log_weights

DEFAULT_KS = (1, 10, 100, 1000, 5000)
# Particles x data points per chunk when chunk_size is None: on the CPU, a chunk's activations
# stay in cache and below glibc's mmap threshold (ppl_vae.malloc); a GPU wants large GEMMs.
CHUNK_ROWS = {"cpu": 4096, "cuda": 2**18}


def auto_chunk(batch_size: int, device: torch.device) -> int:
    """Particles per chunk for ``batch_size`` data points: about ``CHUNK_ROWS`` rows in all."""
    return max(1, CHUNK_ROWS.get(device.type, 4096) // batch_size)


@dataclass
class Bounds:
    """Per-data-point results: ``iwae[N, len(ks)]``, ``elbo[N]``, ``ess[N]``, ``khat[N]``."""

    ks: list[int]
    iwae: torch.Tensor
    elbo: torch.Tensor
    ess: torch.Tensor
    khat: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.elbo.shape[0]

    def estimates(self) -> list[dict]:
        """Dataset means with standard errors, one record per estimator and K (nats/point)."""
        k_max = max(self.ks)

        def row(name: str, k: int, values: torch.Tensor) -> dict:
            mean, se = mean_and_stderr(values)
            return {"estimator": name, "k": k, "mean": mean, "stderr": se, "n": self.n}

        rows = [row("elbo", k_max, self.elbo)]
        rows += [row("iwae", k, self.iwae[:, i]) for i, k in enumerate(self.ks)]
        rows.append(row("ess", k_max, self.ess))
        if self.khat is not None:
            rows.append(row("khat", k_max, self.khat))
            rows.append(row("khat_above_0.7", k_max, (self.khat > 0.7).double()))
        return rows


class _Stream:
    """Running sums over a stream of log-weight chunks ``[C, N]`` for one batch of points."""

    def __init__(self, ks: Sequence[int], n: int, device: torch.device):
        self.ks = sorted(set(ks))
        self.count = 0
        full = dict(dtype=torch.float64, device=device)
        self.lse = torch.full((n,), -math.inf, **full)
        self.lse2 = torch.full((n,), -math.inf, **full)
        self.total = torch.zeros(n, **full)
        self.iwae: dict[int, torch.Tensor] = {}

    def add(self, chunk: torch.Tensor) -> None:
        chunk = chunk.double()
        start = 0
        while start < chunk.shape[0]:
            target = next(k for k in self.ks if k > self.count)
            part = chunk[start : start + target - self.count]
            self.lse = torch.logaddexp(self.lse, torch.logsumexp(part, 0))
            self.lse2 = torch.logaddexp(self.lse2, torch.logsumexp(2 * part, 0))
            self.total += part.sum(0)
            self.count += part.shape[0]
            start += part.shape[0]
            if self.count == target:
                self.iwae[target] = self.lse - math.log(target)

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        iwae = torch.stack([self.iwae[k] for k in self.ks], -1)
        return iwae, self.total / self.count, torch.exp(2 * self.lse - self.lse2)


def batch_seed(seed: int, start: int) -> int:
    """The seed of the batch of data points that starts at index ``start``."""
    return derive_seed(seed, start)


def evaluate(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    khat: bool | None = None,
    progress: bool = False,
    offset: int = 0,
    world: World = SINGLE,
) -> Bounds:
    """ELBO, IWAE_K for every K in ``ks``, ESS and PSIS k-hat for every row of ``x``.

    All estimates share one stream of max(ks) particles per data point: IWAE_K uses its first
    K particles, ELBO and ESS use all of them. Particles are drawn ``chunk_size`` at a time for
    each batch of ``batch_size`` points (None: ``auto_chunk``, sized for the device).
    ``khat``: True computes k-hat (an error if max(ks) < 21), False skips it, None (the
    default) computes it when max(ks) >= 21.
    ``offset`` is the dataset index of ``x[0]``: a shard evaluated with its offset (a multiple
    of ``batch_size``) gets exactly the values the whole dataset would. Under torchrun
    (``world``), rank r evaluates batches r, r + W, ... and every rank returns the gathered
    result, equal to a single process's.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise InputError(f"every K must be an integer >= 1, got {ks}.")
    if khat is None:  # by default k-hat comes with the other estimates where K allows it
        khat = ks[-1] >= MIN_KHAT_PARTICLES
    if khat and ks[-1] < MIN_KHAT_PARTICLES:
        raise InputError(
            f"k-hat needs at least {MIN_KHAT_PARTICLES} particles but the largest K is "
            f"{ks[-1]}; add a larger K (e.g. 100) or turn k-hat off (--no-khat)."
        )
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}.")
    if chunk_size is None:
        chunk_size = auto_chunk(batch_size, x.device)
    parts = {}
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with checked_once(model, x):
        starts = range(0, x.shape[0], batch_size)[world.rank :: world.size]
        for start in tqdm(starts, desc="evaluate", disable=not (progress and world.is_main)):
            xb = x[start : start + batch_size]
            stream = _Stream(ks, xb.shape[0], x.device)
            kept = []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(batch_seed(seed, offset + start))
                for chunk in iter_log_weights(model, guide, xb, ks[-1], chunk_size):
                    stream.add(chunk)
                    if khat:
                        kept.append(chunk)
            i, e, s = stream.result()
            k = psis_khat(torch.cat(kept)) if khat else None
            parts[start] = (i.cpu(), e.cpu(), s.cpu(), k)
    merged = {}
    for shard in all_gather(parts, world):  # every rank's batches, keyed by first index
        merged.update(shard)
    ordered = [merged[s] for s in sorted(merged)]

    def cat(j: int) -> torch.Tensor:
        return torch.cat([p[j] for p in ordered])

    return Bounds(ks, cat(0), cat(1), cat(2), cat(3) if khat else None)
