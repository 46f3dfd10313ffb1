"""The files of a run dir, named here and nowhere else.

A run dir ``runs/<name>/`` holds

- ``recipe.toml``: the resolved recipe it was trained with;
- ``checkpoint.pt``: weights, optimizer and RNG states, position (exact resume);
- ``best.pt`` (with ``train.keep_best``): the same, as of the best epoch by validation ELBO;
- ``metrics.csv``: one row per epoch; ``summary.json``: the final figures of the training;
- ``eval.json`` (for machines) and ``eval.nc`` (an arviz netCDF, for notebooks): the bounds
  that ``ppl-vae evaluate`` wrote; ``scores.csv``: per-data-point scores;
- ``eval_<dataset>/``: the same evaluation files for another dataset scored by this run's model;
- ``pictures/``: samples, reconstructions, interpolations, latent codes, training curves;
  ``ppl-vae diagnose`` adds traversals, clusters and the KL per unit;
- ``diagnostics.json``: what ``ppl-vae diagnose`` measured in the latent space;
- ``bdmc.json`` and ``bdmc.png``: ``ppl-vae bdmc``'s sandwich on data simulated from the model;
- ``training.lock`` while a process trains it, and ``state.json``: how its last training ended
  (``ppl_vae.provenance``); ``eval_step<S>/``: an evaluation of step S made while it trained.

``ppl-vae compare`` writes ``compare.md`` and ``compare.csv`` (and figures) into its own folder.
"""

from __future__ import annotations

from pathlib import Path

RECIPE = "recipe.toml"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # train.keep_best: the weights of the best epoch by validation ELBO
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVAL_JSON = "eval.json"
EVAL_NETCDF = "eval.nc"
SCORES_CSV = "scores.csv"
PICTURES = "pictures"
COMPARE_MD = "compare.md"
COMPARE_CSV = "compare.csv"
TRAINING_CURVES = "training_curves.png"
DIAGNOSTICS = "diagnostics.json"  # ppl-vae diagnose: the latent space (analysis, runs.diagnose)
TRAVERSALS_PNG = "traversals.png"  # these three go into pictures/
CLUSTERS_PNG = "clusters.png"
KL_UNITS_PNG = "kl_units.png"
BDMC_JSON = "bdmc.json"  # ppl-vae bdmc: forward/reverse AIS on simulated data (runs.bdmc)
BDMC_PNG = "bdmc.png"
LOCK = "training.lock"  # held by the training process (provenance.TrainingLock)
STATE = "state.json"  # how the last training ended: finished, interrupted or failed


def eval_dir(run_dir: str | Path, dataset: str | None = None, step: int | None = None) -> Path:
    """Where the evaluation of ``run_dir`` goes: the run dir itself, or ``eval_<dataset>/`` in
    it for another dataset scored by the run's model; ``eval_step<S>/`` (``eval_<dataset>_step<S>``)
    for the checkpoint of step S of a run that was still training."""
    run_dir = Path(run_dir)
    name = "_".join(["eval", *([dataset] if dataset else []), *([f"step{step}"] if step else [])])
    return run_dir / name if name != "eval" else run_dir


def pictures_dir(run_dir: str | Path) -> Path:
    """Where ``ppl-vae sample`` puts a run's pictures."""
    return Path(run_dir) / PICTURES
