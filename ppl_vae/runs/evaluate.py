"""``evaluate_run``: bound log p(x) for a trained run dir and write the results into it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..bounds import DEFAULT_KS, auto_chunk, evaluate, write_results, write_scores
from ..data import load_data
from ..distributed import SINGLE, World
from ..layout import CHECKPOINT, SCORES_CSV, eval_dir
from ..provenance import record, utc_now
from .state import load_scored


def evaluate_run(
    run_dir: str | Path,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    split: str = "test",
    subset: int = 0,
    batch_size: int = 100,
    chunk_size: int | None = None,
    seed: int = 0,
    khat: bool | None = None,
    device: str | torch.device = "cpu",
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    out: str | Path | None = None,
    per_datapoint: bool = False,
    progress: bool = False,
    world: World = SINGLE,
    options: dict[str, dict[str, Any]] | None = None,
    while_training: bool = False,
    weights: str = CHECKPOINT,
) -> dict[str, Any]:
    """Evaluates the run in ``run_dir`` on its ``split`` (or on another ``dataset``, with the
    run's binarization) and writes ``eval.json`` and ``eval.nc`` (and ``scores.csv`` with
    ``per_datapoint``) into the run dir, or into ``eval_<dataset>/`` for another dataset, or
    into ``out``. Returns what ``eval.json`` holds (on every rank under torchrun; only rank 0
    writes). See ``ppl_vae.bounds.evaluate`` for ``ks``, ``chunk_size``, ``seed``, ``khat`` and
    ``options`` (e.g. ``{"ais": {"num_steps": 1000, "num_chains": 16}}`` adds AIS).

    A run that is still training is refused (RunDirError, with its progress) unless
    ``while_training``: then its checkpoint as of now is scored, and the results go into
    ``eval_step<S>/`` (S: the step scored) unless ``out`` is given. Every file written carries
    the provenance of the checkpoint scored (``ppl_vae.provenance``). ``weights = "best.pt"``
    scores the epoch that ``train.keep_best`` selected on the validation split.
    """
    started = utc_now()
    run, scored, training = load_scored(
        run_dir, data_dir, device, world, while_training=while_training, weights=weights
    )
    data = run.data
    if dataset:
        data = load_data(dataset, data_dir, run.recipe.data.binarize).to(run.device)
    x = data.split(split)[: subset or None]
    labels = data.labels.get(split)
    cond = data.cond.get(split)  # a conditional model's input: bounds on log p(x | cond)
    cond = cond[: subset or None] if cond is not None else None
    chunk = chunk_size or auto_chunk(batch_size, x.device)
    t0 = time.perf_counter()
    bounds = evaluate(
        run.model,
        run.guide,
        x,
        ks,
        chunk_size=chunk,
        batch_size=batch_size,
        seed=seed,
        khat=khat,
        progress=progress,
        world=world,
        cond=cond,
        options=options,
    )
    meta = {
        "run": str(run.path),
        "dataset": dataset or run.recipe.data.name,
        "split": split,
        "seed": seed,
        "chunk_size": chunk,
        "batch_size": batch_size,
        "processes": world.size,
        "seconds": time.perf_counter() - t0,
    }
    if weights != CHECKPOINT:  # the epoch selected on the validation split (train.keep_best)
        meta["weights"] = weights
    meta["provenance"] = record(
        run.path, started=started, seed=seed, device=run.device, checkpoint=scored
    )
    if options:  # the settings, not whether a bar was shown
        meta["options"] = {
            k: {o: v for o, v in d.items() if o != "progress"} for k, d in options.items()
        }
    if not world.is_main:
        return {**meta, "estimates": bounds.estimates()}
    step = scored["step"] if training else None
    folder = Path(out) if out is not None else eval_dir(run.path, dataset, step)
    folder.mkdir(parents=True, exist_ok=True)
    result = write_results(folder, bounds, meta, labels)
    if per_datapoint:
        write_scores(folder / SCORES_CSV, bounds, labels, meta["provenance"])
    return result
