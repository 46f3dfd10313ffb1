"""The ``cvae`` kind: image completion, p(x_out | x_in) with a prior network, a generation
network and a recognition guide q(z | x, x_in) (Sohn et al. 2015), or with
``model.options.baseline`` the deterministic network. The given quadrants of every image
(``data.given_quadrants``) are the conditioning input.

``model.options.variant``: ``"sohn"`` (the default) or ``"pyro"`` (``model.cvae.CVAE_VARIANTS``).
The ``pyro`` variant's prior network reads a trained baseline's guess, frozen into the model:
``model.options.baseline_run`` names that baseline's run dir (same dataset, quadrants and
likelihood); its ``best.pt`` (the epoch selected on the validation split, ``train.keep_best``)
is read if it has one, else its ``checkpoint.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core.errors import RecipeError
from ...core.registry import lookup
from ...data import Splits
from ...data.quadrants import quadrant_split
from ...guides.conditional import CondGuide, NoLatents
from ...layout import BEST, CHECKPOINT
from ...model.cvae import CVAE_VARIANTS, Baseline, build_cvae
from ...reports.label_pictures import write_completions
from ..recipe import Recipe, load_recipe
from .labelled import z_guide
from .spec import ModelKind, Parts, Pictures, refuse_m2_objective

OPTIONS = {"baseline": False, "variant": "sohn", "baseline_run": ""}


def cvae_check(recipe: Recipe, source: str) -> None:
    """No M2 objective; a variant that reads a guess names a trained baseline of the same task."""
    refuse_m2_objective(recipe, source)
    options = KIND.resolve(recipe, source)
    variant = lookup(CVAE_VARIANTS, str(options["variant"]), "model.options.variant")
    if options["baseline"] and options["variant"] != "sohn":
        raise RecipeError(
            f"{source}: model.options.variant = {options['variant']!r} is a CVAE's; the "
            f"baseline (model.options.baseline = true) has no latent and no variant: drop one."
        )
    if options["baseline"] or not variant.prior_reads_guess:
        return
    run = Path(str(options["baseline_run"]))
    fix = (
        f"train one first (ppl-vae train models/mnist_cvae_quadrants.toml --set "
        f"model.options.baseline=true --set data.given_quadrants={recipe.data.given_quadrants} "
        f"--set train.keep_best=true --out runs/baseline_q{recipe.data.given_quadrants}) and "
        f"name its run dir"
    )
    if not str(options["baseline_run"]) or not (run / CHECKPOINT).is_file():
        raise RecipeError(
            f"{source}: model.options.baseline_run = {str(options['baseline_run'])!r}: the "
            f"{options['variant']!r} CVAE reads a trained baseline's guess, and there is no "
            f"{CHECKPOINT} there; {fix}."
        )
    theirs = load_recipe(run)
    same = {
        "model.name": (theirs.model.name, "cvae"),
        "model.options.baseline": (bool(theirs.model.options.get("baseline")), True),
        "data.name": (theirs.data.name, recipe.data.name),
        "data.given_quadrants": (theirs.data.given_quadrants, recipe.data.given_quadrants),
        "model.likelihood": (theirs.model.likelihood, recipe.model.likelihood),
    }
    for key, (found, wanted) in same.items():
        if found != wanted:
            raise RecipeError(
                f"{source}: model.options.baseline_run = {str(run)!r} is not a baseline of this "
                f"task: its {key} is {found!r}, this recipe needs {wanted!r}; {fix}."
            )


def frozen_baseline(run: str | Path, data: Splits) -> Baseline:
    """The trained baseline of ``run``, with the weights of its selected epoch."""
    from ...training.checkpoint import load_weights
    from ..build import build_parts  # here: build imports the kinds

    run = Path(run)
    model, guide = build_parts(load_recipe(run), data)
    load_weights(run / (BEST if (run / BEST).is_file() else CHECKPOINT), model, guide)
    return model.eval()


def cvae_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """The CVAE (prior, generation and recognition networks) or the deterministic baseline."""
    m = recipe.model
    variant = CVAE_VARIANTS[options["variant"]]
    reads_guess = variant.prior_reads_guess and not options["baseline"]
    model = build_cvae(
        data.x_dim,
        m.z_dim,
        baseline=bool(options["baseline"]),
        likelihood=m.likelihood,
        likelihood_options=m.likelihood_options,
        hidden=m.decoder.hidden,
        activation=m.decoder.activation,
        image_shape=data.image_shape,
        variant=options["variant"],
        guess=frozen_baseline(options["baseline_run"], data) if reads_guess else None,
    )
    guide = NoLatents() if options["baseline"] else CondGuide(z_guide(recipe, 2 * data.x_dim))
    return model, guide


def cvae_data(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Splits:
    """The given quadrants of every image as the conditioning input."""
    return quadrant_split(data, recipe.data.given_quadrants)


def completions(p: Pictures) -> dict:
    """Test images, their given quadrants and four completions each."""
    return write_completions(p.model, p.x, p.cond, p.out, 8, p.seed)


KIND = ModelKind(
    "cvae",
    cvae_parts,
    "image completion p(x_out | x_in) (Sohn et al. 2015)",
    options=OPTIONS,
    check=cvae_check,
    data=cvae_data,
    pictures=completions,
    takes_prior=False,
)
