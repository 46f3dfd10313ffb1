"""Streaming evaluation of every registered estimator over a dataset: ELBO, IWAE_K for several
K, ESS and k-hat, and any estimator added to ``registry.ESTIMATORS``.

Particles are drawn in chunks and folded into running float64 statistics (``folds.py``); IWAE_K
for each requested K is read off the same particle stream after its first K particles. The
batch's ``[K, N]`` is kept only when an estimator needs it whole (k-hat), one batch of data
points at a time, so memory is flat in K otherwise (``stream.py``).

Each batch of data points draws its particles from its own seed, derived from ``seed`` and the
batch's first index: results do not depend on which process or call evaluates a batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from tqdm import tqdm  # the text bar: in notebooks too, without ipywidgets

from ..core.contract import SumsOutLabel, has
from ..core.errors import InputError
from ..core.heartbeat import Heartbeat
from ..core.registry import lookup
from ..core.rng import derive_seed, forked_rng
from ..distributed import SINGLE, World, all_gather
from ..model.checks import checked_once
from .bits import bpd_dims
from .cost import check_memory
from .log_weights import iter_log_weights
from .per_point import Bounds
from .registry import ESTIMATORS, OPT_IN
from .spec import Estimator
from .stream import BatchStream

__all__ = ["CHUNK_ROWS", "DEFAULT_KS", "Bounds", "auto_chunk", "batch_seed", "evaluate", "select"]

# K = 5000 (Burda et al.'s protocol) is five times the work of the default; ask for it by name
DEFAULT_KS = (1, 10, 100, 1000)
# Particles x data points per chunk when chunk_size is None: on the CPU, a chunk's activations
# stay in cache and below glibc's mmap threshold (ppl_vae.malloc); a GPU wants large GEMMs.
CHUNK_ROWS = {"cpu": 4096, "cuda": 2**18}


def auto_chunk(batch_size: int, device: torch.device) -> int:
    """Particles per chunk for ``batch_size`` data points: about ``CHUNK_ROWS`` rows in all."""
    return max(1, CHUNK_ROWS.get(device.type, 4096) // batch_size)


def batch_seed(seed: int, start: int) -> int:
    """The seed of the batch of data points that starts at index ``start``."""
    return derive_seed(seed, start)


def select(
    names: Sequence[str] | None, khat: bool | None, k_max: int, opt_in: Sequence[str] = ()
) -> list[Estimator]:
    """The estimators to compute, in registry order: those named (None: every registered one
    but the opt-in ones, ``registry.OPT_IN``, such as AIS), k-hat added (``khat=True``) or
    dropped (False), those in ``opt_in`` (given options) added. One that needs more than
    ``k_max`` particles is an error if asked for by name (or ``khat=True``), else skipped."""
    asked = set() if names is None else {lookup(ESTIMATORS, n, "estimator").name for n in names}
    extra = {lookup(ESTIMATORS, n, "estimator").name for n in opt_in}
    if names is not None:
        asked |= extra
    if khat:
        asked.add("khat")
    chosen = []
    for e in ESTIMATORS.values():
        if (names is not None and e.name not in asked) or (khat is False and e.name == "khat"):
            continue
        if e.name in OPT_IN and e.name not in asked | extra:
            continue
        if k_max < e.min_particles:
            if e.name in asked:
                # k-hat is turned off with khat=False (--no-khat); the others by leaving them out.
                off = "--no-khat" if e.name == "khat" else f"leave {e.name!r} out of estimators"
                raise InputError(
                    f"{e.title} needs at least {e.min_particles} particles but the largest K is "
                    f"{k_max}; add a larger K (e.g. {max(100, e.min_particles)}) or turn "
                    f"{e.title} off ({off})."
                )
            continue  # not asked for: computed where K allows it
        chosen.append(e)
    if not chosen:
        raise InputError("no estimator to compute; name at least one registered estimator.")
    return chosen


def with_options(
    chosen: list[Estimator], options: Mapping[str, Mapping[str, Any]] | None
) -> list[Estimator]:
    """``chosen`` with each ``options[name]`` bound into that estimator's ``source`` (only an
    estimator that draws its own log weights takes options, e.g. AIS's ``num_steps``)."""
    options = dict(options or {})
    out = []
    for e in chosen:
        opts = options.pop(e.name, None)
        if opts:
            if e.source is None:
                raise InputError(f"estimator {e.name!r} takes no options, got {dict(opts)}.")
            e = replace(e, source=functools.partial(e.source, **opts), options=dict(opts))
        out.append(e)
    return out


def _check_conditioning(chosen: list[Estimator], model: Callable, x, cond) -> None:
    """Estimators that draw their own particles (``source``, e.g. AIS) see neither ``cond`` nor
    a label summed out (M2): refused for such models rather than computed wrongly."""
    if cond is None and not (has(model, SumsOutLabel) and model.summed_cond(x[:1]) is not None):
        return
    for e in chosen:
        if e.source is not None:
            raise InputError(
                f"{e.title} draws its own particles and does not take a conditioning input or "
                f"a summed-out label; leave it out for this conditional model (the importance-"
                f"sampling bounds, ELBO and IWAE_K, apply)."
            )


def evaluate(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    chunk_size: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    khat: bool | None = None,
    progress: bool = False,
    offset: int = 0,
    world: World = SINGLE,
    estimators: Sequence[str] | None = None,
    cond: torch.Tensor | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Bounds:
    """ELBO, IWAE_K for every K in ``ks``, ESS and PSIS k-hat (every registered estimator, or
    those named in ``estimators``) for every row of ``x``.

    All estimates share one stream of max(ks) particles per data point: IWAE_K uses its first
    K particles, ELBO and ESS use all of them. Particles are drawn ``chunk_size`` at a time for
    each batch of ``batch_size`` points (None: ``auto_chunk``, sized for the device).
    ``khat``: True computes k-hat (an error if max(ks) < 21), False skips it, None (the
    default) computes it when max(ks) >= 21.
    ``offset`` is the dataset index of ``x[0]``: a shard evaluated with its offset (a multiple
    of ``batch_size``) gets exactly the values the whole dataset would. Under torchrun
    (``world``), rank r evaluates batches r, r + W, ... and every rank returns the gathered
    result, equal to a single process's. ``cond`` (one row per row of ``x``) is a conditional
    model's conditioning input: the bounds are then on log p(x | cond) (see ``log_weights``).
    ``options`` maps an estimator's name to the settings of its own draws and asks for it, e.g.
    ``{"ais": {"num_steps": 1000, "num_chains": 16}}`` (see ``ppl_vae.bounds.ais``).
    For a model whose likelihood is discrete (``core.contract.DiscreteBits``), the records of
    ``estimates()`` give each bound in bits per dimension too (``bounds.bits``).
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise InputError(f"every K must be an integer >= 1, got {ks}.")
    chosen = with_options(select(estimators, khat, ks[-1], options or ()), options)
    _check_conditioning(chosen, model, x, cond)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}.")
    if chunk_size is None:
        chunk_size = auto_chunk(batch_size, x.device)
    keeps = any(e.keeps_log_w for e in chosen)
    check_memory(ks[-1], min(batch_size, x.shape[0]), keeps, x.device)  # before any work
    parts = {}
    show = progress and world.is_main
    beat = Heartbeat("evaluate", progress=show, enabled=world.is_main)
    with checked_once(model, x):
        starts = range(0, x.shape[0], batch_size)[world.rank :: world.size]
        detail = f"{x.shape[0]:,} points x K = {ks[-1]:,}"
        for i, start in enumerate(tqdm(starts, desc="evaluate", disable=not show)):
            xb = x[start : start + batch_size]
            stream = BatchStream(ks, chosen, xb.shape[0], x.device)
            b_seed = batch_seed(seed, offset + start)
            with forked_rng(x.device, b_seed):
                cb = None if cond is None else cond[start : start + batch_size]
                for chunk in iter_log_weights(model, guide, xb, ks[-1], chunk_size, cb):
                    stream.add(chunk)
                    if i == 0 and stream.count == chunk.shape[0]:  # the first chunk, timed
                        per_chunk = beat.elapsed()
                        beat.estimate(per_chunk * ks[-1] / chunk.shape[0] * len(starts), detail)
                    beat.beat((i + stream.count / ks[-1]) / len(starts))
                parts[start] = stream.result(model, guide, xb, chunk_size, b_seed)
            if i == 0:  # the whole first batch: k-hat and AIS, which the chunks did not show
                beat.estimate(beat.elapsed() * len(starts), detail)
    merged = {}
    for shard in all_gather(parts, world):  # every rank's batches, keyed by first index
        merged.update(shard)
    ordered = [merged[s] for s in sorted(merged)]
    values = {e.name: torch.cat([p[e.name] for p in ordered]) for e in chosen}
    return Bounds(ks, values, {e.name: e for e in chosen}, bpd_dims(model, x))
