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

from ..data import Splits
from ..distributed import SINGLE, World, barrier, resolve_device
from ..errors import RunDirError
from ..layout import CHECKPOINT, RECIPE
from ..model import VAE
from ..training.checkpoint import load_weights
from ..training.svi import FitResult, fit
from . import recipe as config
from .build import build_data, build_loss, build_parts, check_recipe
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


def prepare_run_dir(out: Path, overwrite: bool = False, resume: bool = False) -> None:
    """Refuses to reuse an existing run dir unless ``overwrite`` or ``resume`` is set."""
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise RunDirError(f"cannot resume: {out} has no {CHECKPOINT}; train without --resume.")
        return
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"run dir {out} exists already; pass --resume to continue it, --overwrite to "
                f"replace it, or --out to pick another folder."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def train_recipe(
    recipe: Recipe,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    source: str = "the recipe",
    world: World = SINGLE,
) -> tuple[Run, FitResult]:
    """Trains a recipe into ``out`` (default ``runs/<recipe.name>``); with ``resume``, continues
    the run in ``out`` from its checkpoint (load its recipe with ``load_recipe(out)``).
    ``source`` names the recipe's file in error messages. Under torchrun, pass
    ``world = ppl_vae.distributed.init()``: every rank trains, rank 0 writes the run dir."""
    out = Path(out) if out is not None else Path("runs") / recipe.name
    check_recipe(recipe, source)
    device = resolve_device(recipe.train.device, world)  # once; fit takes it as it is
    if world.is_main:
        prepare_run_dir(out, overwrite, resume)
    barrier(world)
    data = build_data(recipe, data_dir)
    pyro.set_rng_seed(recipe.train.seed)  # the initial weights too come from the recipe's seed
    model, guide = build_parts(recipe, data)
    loss = build_loss(recipe)
    if resume:  # refuse a mismatched recipe before it replaces the run's own
        load_weights(out / CHECKPOINT, model, guide)
    if world.is_main:
        config.save(recipe, out / RECIPE)
    # every train.* key is a keyword of fit
    train = {**dataclasses.asdict(recipe.train), "device": device, "progress": progress}
    result = fit(model, guide, data, **train, loss=loss, run_dir=out, resume=resume, world=world)
    return Run(out, recipe, model, guide, data, device), result


def load_run(
    path: str | Path,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    world: World = SINGLE,
) -> Run:
    """Loads a trained run: its recipe, data, and model and guide with the checkpoint's weights,
    on ``device`` (a name for ``ppl_vae.distributed.resolve_device``, or a torch.device)."""
    path = Path(path)
    recipe = load_recipe(path)
    dev = resolve_device(device, world)
    data = build_data(recipe, data_dir).to(dev)
    model, guide = build_parts(recipe, data)
    load_weights(path / CHECKPOINT, model, guide)
    return Run(path, recipe, model.to(dev).eval(), guide.to(dev).eval(), data, dev)
