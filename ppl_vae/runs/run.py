"""Run directories: build a recipe's parts, train it into ``runs/<name>/``, load a run back.

A run dir holds ``recipe.toml`` (the resolved recipe), ``checkpoint.pt``, ``metrics.csv`` and
``summary.json``; evaluation adds its own files.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch

from ..core.errors import RunDirError
from ..data import Splits
from ..distributed import SINGLE, World, barrier, resolve_device
from ..layout import CHECKPOINT, LOCK, METRICS, RECIPE, STATE, SUMMARY
from ..model import VAE
from ..provenance import refuse_if_locked
from ..training.checkpoint import load_weights
from ..training.progress import say
from ..training.svi import FitResult, fit
from . import recipe as config
from .build import build_data, build_parts, build_recipe_objective, check_recipe, model_kind
from .recipe import Recipe, load_recipe

__all__ = ["Run", "RunDirError", "load_recipe", "load_run", "prepare_run_dir", "train_recipe"]


@dataclass
class Run:
    """A trained run: its recipe, model, guide and data, and the device they are on."""

    path: Path
    recipe: Recipe
    model: VAE
    guide: torch.nn.Module
    data: Splits
    device: torch.device = torch.device("cpu")


def prepare_run_dir(out: Path, overwrite: bool = False, resume: bool = False) -> bool:
    """Readies ``out`` for training; returns whether training continues from its checkpoint.

    It refuses a run dir that holds training results unless ``overwrite`` (which empties it) or
    ``resume`` is set. A run dir holding only its ``recipe.toml`` never reached a checkpoint (it
    was interrupted, or its data were missing): a new run may take it over, and ``resume``
    restarts it from the start (False is returned). ``resume`` of a folder with neither file
    raises RunDirError naming the command that starts the run.
    """
    if resume:
        if (out / CHECKPOINT).is_file():
            return True
        if not (out / RECIPE).is_file():
            raise _not_resumable(out)
        for name in (METRICS, SUMMARY):  # of a run that restarts: it writes its own
            (out / name).unlink(missing_ok=True)
        return False
    if out.exists() and any(p.name not in (RECIPE, STATE, LOCK) for p in out.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"run dir {out} exists already; pass --resume to continue it, --overwrite to "
                f"replace it, or --out to pick another folder."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return False


def _not_resumable(out: Path) -> RunDirError:
    """The error for ``resume`` of a folder that holds no run: it names the command that works."""
    start = f"ppl-vae train RECIPE --out {out}"
    if not out.exists():
        return RunDirError(f"cannot resume: {out} does not exist; start the run with: {start}")
    if any(out.iterdir()):
        start += " --overwrite"  # what is there is not a run, and would block a new one
    return RunDirError(
        f"cannot resume: {out} has no {CHECKPOINT} and no {RECIPE}, so no run was started "
        f"there; start it with: {start}"
    )


def train_recipe(
    recipe: Recipe,
    out: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    source: str = "the recipe",
    world: World = SINGLE,
) -> tuple[Run, FitResult]:
    """Trains a recipe into ``out`` (default ``runs/<recipe.name>``); with ``resume``, continues
    the run in ``out`` from its checkpoint (load its recipe with ``load_recipe(out)``), or
    restarts it if it has none yet. ``source`` names the recipe's file in error messages. With
    ``progress``, says on stderr what it does (see ``fit``). Under torchrun, pass
    ``world = ppl_vae.distributed.init()``: every rank trains, rank 0 writes the run dir."""
    out = Path(out) if out is not None else Path("runs") / recipe.name
    check_recipe(recipe, source)
    device = resolve_device(recipe.train.device, world)  # once; fit takes it as it is
    show = progress and world.is_main
    asked = resume
    if world.is_main:
        refuse_if_locked(out)  # before --overwrite could empty a dir that is being trained
        resume = prepare_run_dir(out, overwrite, resume)
        if not resume:  # now, before the slow part: a Ctrl-C from here on leaves a run that
            config.save(recipe, out / RECIPE)  # --resume can restart
    barrier(world)
    resume = resume and (out / CHECKPOINT).is_file()  # what rank 0 found, on the other ranks
    if asked and not resume:
        say(f"{out} has no {CHECKPOINT} yet: training it from the start, with its {RECIPE}", show)
    try:
        data = build_data(recipe, data_dir)
        pyro.set_rng_seed(recipe.train.seed)  # the initial weights too come from its seed
        model, guide = build_parts(recipe, data)
        objective = build_recipe_objective(recipe, data)
    except KeyboardInterrupt:  # before fit, which defers Ctrl-C to the end of a step
        raise KeyboardInterrupt(
            f"interrupted before training began; start it again with: ppl-vae train --resume {out}"
        ) from None
    if resume:  # refuse a mismatched recipe before it replaces the run's own
        load_weights(out / CHECKPOINT, model, guide)
        if world.is_main:
            config.save(recipe, out / RECIPE)
    # every train.* key is a keyword of fit
    train = {**dataclasses.asdict(recipe.train), "device": device, "progress": progress}
    kind = model_kind(recipe)
    if kind.epoch_metrics is not None:  # the kind's own figures per epoch (M1's accuracy)
        train["epoch_metrics"] = kind.epoch_metrics(recipe, data, kind.resolve(recipe))
    result = fit(
        model, guide, data, **train, objective=objective, run_dir=out, resume=resume, world=world
    )
    return Run(out, recipe, model, guide, data, device), result


def load_run(
    path: str | Path,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    world: World = SINGLE,
    weights: str = CHECKPOINT,
) -> Run:
    """Loads a trained run: its recipe, data, and model and guide with the weights of its
    ``weights`` file (``checkpoint.pt``, the last epoch; ``best.pt``, the best by validation
    ELBO, with ``train.keep_best``), on ``device`` (a name for
    ``ppl_vae.distributed.resolve_device``, or a torch.device)."""
    path = Path(path)
    recipe = load_recipe(path)
    dev = resolve_device(device, world)
    data = build_data(recipe, data_dir).to(dev)
    model, guide = build_parts(recipe, data)
    load_weights(path / weights, model, guide)
    return Run(path, recipe, model.to(dev).eval(), guide.to(dev).eval(), data, dev)
