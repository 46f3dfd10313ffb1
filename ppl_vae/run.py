"""Run directories: build a recipe's parts, train it into ``runs/<name>/``, load a run back.

A run dir holds ``recipe.toml`` (the resolved recipe), ``checkpoint.pt``, ``metrics.csv`` and
``summary.json``; evaluation adds its own files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyro
import torch

from . import config
from .checkpoint import load_weights
from .config import Recipe
from .data import BINARIZATIONS, DATASETS, Splits, load_data
from .distributed import SINGLE, World, barrier, device_for
from .guides import GUIDES, build_guide
from .likelihoods import LIKELIHOODS
from .model import VAE, build_model
from .nets import ACTIVATIONS
from .noise import NOISES
from .objectives import OBJECTIVES, build_objective
from .options import check_options
from .registry import lookup
from .train import CHECKPOINT, FitResult, fit, resolve_device

RECIPE = "recipe.toml"


class RunDirError(FileExistsError):
    """A run dir that exists already (or is missing); the message says which flag to pass."""


@dataclass
class Run:
    """A trained run: its recipe, model, guide and data."""

    path: Path
    recipe: Recipe
    model: VAE
    guide: torch.nn.Module
    data: Splits


def build_data(recipe: Recipe, data_dir: str | Path | None = None) -> Splits:
    """Loads the recipe's dataset."""
    d = recipe.data
    return load_data(d.name, data_dir, d.binarize, d.subset, d.valid_size, **d.options)


def build_parts(recipe: Recipe, data: Splits) -> tuple[VAE, torch.nn.Module]:
    """Builds the model and guide a recipe names, sized for ``data``."""
    m, g = recipe.model, recipe.guide
    model = build_model(
        m.z_dim,
        data.x_dim,
        m.likelihood,
        m.likelihood_options,
        m.decoder.net,
        m.decoder.hidden,
        m.decoder.activation,
        data.image_shape,
    )
    guide = build_guide(
        g.name,
        data.x_dim,
        m.z_dim,
        g.encoder.net,
        g.encoder.hidden,
        g.encoder.activation,
        data.image_shape,
        **g.options,
    )
    return model, guide


def check_recipe(recipe: Recipe, source: str = "the recipe") -> None:
    """Checks every name a recipe uses and its option tables before any data are loaded: a
    wrong one raises UnknownNameError (with the closest name) or RecipeError (key and file)."""
    d, m, g, o = recipe.data, recipe.model, recipe.guide, recipe.objective
    lookup({b: b for b in BINARIZATIONS}, d.binarize, "binarization")
    lookup(NOISES, recipe.train.noise, "train.noise")
    for net in (m.decoder, g.encoder):
        lookup(ACTIVATIONS, net.activation, "activation")
    data_shape = {"x_dim": "the data", "image_shape": "the data", "num_outputs": "the guide"}
    encoder = {k: f"guide.encoder.{k}" for k in ("net", "hidden", "activation")}
    # build_guide and build_objective check option names themselves (and may add options of
    # their own); here only the types of the options a guide or objective declares.
    tables = [
        (
            DATASETS,
            d.name,
            "dataset",
            "data.options",
            d.options,
            {"root": "--data-dir or $PPL_VAE_DATA", "valid_size": "data.valid_size"},
            True,
        ),
        (
            LIKELIHOODS,
            m.likelihood,
            "likelihood",
            "model.likelihood_options",
            m.likelihood_options,
            data_shape,
            True,
        ),
        (
            GUIDES,
            g.name,
            "guide",
            "guide.options",
            g.options,
            {**data_shape, **encoder, "z_dim": "model.z_dim"},
            False,
        ),
        (
            OBJECTIVES,
            o.name,
            "objective",
            "objective.options",
            o.options,
            {"num_particles": "objective.num_particles"},
            False,
        ),
    ]
    for registry, name, what, key, options, reserved, strict in tables:
        check_options(lookup(registry, name, what), options, key, source, reserved, strict)


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
    if world.is_main:
        prepare_run_dir(out, overwrite, resume)
    barrier(world)
    data = build_data(recipe, data_dir)
    pyro.set_rng_seed(recipe.train.seed)  # the initial weights too come from the recipe's seed
    model, guide = build_parts(recipe, data)
    loss = build_objective(
        recipe.objective.name, recipe.objective.num_particles, **recipe.objective.options
    )
    if resume:  # refuse a mismatched recipe before it replaces the run's own
        load_weights(out / CHECKPOINT, model, guide)
    if world.is_main:
        config.save(recipe, out / RECIPE)
    t = recipe.train
    result = fit(
        model,
        guide,
        data,
        epochs=t.epochs,
        batch_size=t.batch_size,
        lr=t.lr,
        seed=t.seed,
        device=t.device,
        loss=loss,
        run_dir=out,
        resume=resume,
        max_steps=t.max_steps,
        checkpoint_every=t.checkpoint_every,
        checkpoint_steps=t.checkpoint_steps,
        eval_batch_size=t.eval_batch_size,
        progress=progress,
        world=world,
        noise=t.noise,
    )
    return Run(out, recipe, model, guide, data), result


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """The resolved recipe of the run dir ``path``, with optional overrides."""
    path = Path(path)
    if not (path / RECIPE).is_file():
        raise RunDirError(f"{path} is not a run dir: it has no {RECIPE}.")
    return config.load(path / RECIPE, overrides)


def load_run(
    path: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    world: World = SINGLE,
) -> Run:
    """Loads a trained run: its recipe, data, and model and guide with the checkpoint's weights."""
    path = Path(path)
    recipe = load_recipe(path)
    dev = device_for(world, resolve_device(device))
    data = build_data(recipe, data_dir).to(dev)
    model, guide = build_parts(recipe, data)
    load_weights(path / CHECKPOINT, model, guide)
    return Run(path, recipe, model.to(dev).eval(), guide.to(dev).eval(), data)
