"""The ``m1m2`` kind: Kingma et al.'s stacked M1 + M2. M2 (the ``m2`` kind's model, guide,
objective and label split) learns on the codes E_q[z_1 | x] that a trained M1 run's guide gives
every image, in place of the pixels, with a Gaussian likelihood over those codes.

``model.options``: ``m1_run``, the trained run whose guide encodes (any one-site VAE run of the
same dataset, e.g. one of ``models/mnist_m1.toml``), and M2's ``num_classes``,
``classifier_hidden`` and ``labelled_fraction``. The codes are the posterior means of the
images as the M1 model scores them (one seeded binarization under dynamic binarization), so
every split is a fixed ``[N, z_dim of M1]`` tensor; ``test_accuracy`` is M2's q(y | code).
There are no images to draw: ``ppl-vae sample`` the M1 run instead.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-supervised Learning with Deep
Generative Models, NeurIPS (M1 + M2: section 2.3).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ...analysis.code_classifier import codes
from ...core.errors import InputError, RecipeError
from ...data import Splits
from ...layout import CHECKPOINT
from ..recipe import Recipe, load_recipe
from . import m2
from .spec import ModelKind, Pictures

OPTIONS = {"m1_run": "", **m2.KIND.options}


def m1m2_check(recipe: Recipe, source: str) -> None:
    """M2's objective, a trained M1 run named, and a likelihood for real-valued codes."""
    m2.m2_check(recipe, source)
    run = Path(str(recipe.model.options.get("m1_run", "")))
    if not str(run) or str(run) == "." or not (run / CHECKPOINT).is_file():
        raise RecipeError(
            f"{source}: model.options.m1_run = {str(run)!r}: M1 + M2 learns on the codes of a "
            f"trained M1 run, and there is no {CHECKPOINT} there; train one first (ppl-vae "
            f"train models/mnist_m1.toml --out runs/mnist_m1) and name its run dir."
        )
    if recipe.model.likelihood != "gaussian":
        raise RecipeError(
            f"{source}: model.likelihood = {recipe.model.likelihood!r}: M1 + M2 models M1's "
            f"real-valued codes, not pixels; set model.likelihood = 'gaussian'."
        )


@torch.no_grad()
def encode_splits(m1_run: str | Path, data: Splits, seed: int = 0) -> Splits:
    """``data`` with every split replaced by the M1 run's codes of its images (labels kept)."""
    from ...training.checkpoint import load_weights
    from ..build import build_parts  # here: build imports the kinds

    m1 = load_recipe(m1_run)
    model, guide = build_parts(m1, data)
    load_weights(Path(m1_run) / CHECKPOINT, model, guide)
    guide.eval()
    # the images as the M1 model scores them: one seeded epoch of bits for the training split
    images = {"valid": data.valid, "test": data.test}
    images["train"] = data.train_epoch(torch.Generator(data.train.device).manual_seed(seed))
    split = {s: codes(guide, x) for s, x in images.items()}
    dtype = data.train.dtype
    return replace(
        data,
        train=split["train"].to(dtype),
        valid=split["valid"].to(dtype),
        test=split["test"].to(dtype),
        image_shape=None,
        binarize="none",
        gray={},
    )


def m1m2_data(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Splits:
    """The M1 codes of every split, then M2's labelled and unlabelled training points."""
    coded = encode_splits(options["m1_run"], data, recipe.data.label_seed)
    return m2.m2_data(recipe, coded, options)


def no_pictures(p: Pictures) -> dict:
    raise InputError(
        "an M1 + M2 run learns on M1's codes, which are not images; draw the pictures of its "
        "M1 run (ppl-vae sample M1_RUN, the run named in model.options.m1_run)."
    )


KIND = ModelKind(
    "m1m2",
    m2.m2_parts,
    "M1 + M2: M2 on a trained M1's codes (Kingma et al. 2014)",
    options=OPTIONS,
    check=m1m2_check,
    data=m1m2_data,
    objective_options=m2.m2_objective_options,
    pictures=no_pictures,
    no_guide_prior=m2.KIND.no_guide_prior,
)
