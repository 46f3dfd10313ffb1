"""The model kinds with a conditioning input: M2, the class-conditional VAE and the CVAE.

Each kind has a builder ``(recipe, data) -> (model, guide)`` (a line of ``MODEL_KINDS``) and a
data step ``(recipe, data) -> data`` (a line of ``KIND_DATA``) that adds the conditioning input
``cond`` to the splits: labels, with ``data.labels`` of them kept (M2), every label (the
class-conditional VAE), or the given quadrants of each image (``data.given_quadrants``, CVAE).

``model.options``: ``num_classes`` (m2, conditional), ``classifier_hidden`` (m2), ``baseline``
(cvae: the deterministic network instead of the CVAE), ``labelled_fraction`` (m2: about this
share of each batch is labelled points; see ``data.labels``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..core.errors import ObjectiveError, RecipeError
from ..data import Splits
from ..data.labels import check_labels, semi_supervised
from ..data.quadrants import quadrant_split
from ..guides import build_guide
from ..guides.labelled import build_labelled_guide
from ..model.cvae import CondGuide, NoLatents, build_cvae
from ..model.labelled import build_labelled_model
from ..objectives.semi_supervised import NAME, check_objective
from .recipe import Recipe

# model.options each kind takes, with defaults
KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "m2": {"num_classes": 10, "classifier_hidden": [500], "labelled_fraction": 0.1},
    "conditional": {"num_classes": 10},
    "cvae": {"baseline": False},
}


def kind_options(recipe: Recipe) -> dict[str, Any]:
    """``model.options`` of the recipe's kind, defaults filled in; an unknown key is an error."""
    kind = recipe.model.name
    allowed = KIND_OPTIONS[kind]
    for key in recipe.model.options:
        if key not in allowed:
            raise RecipeError(
                f"model.options.{key}: the {kind!r} model takes the options "
                f"{', '.join(sorted(allowed))}, not {key!r}."
            )
    return {**allowed, **recipe.model.options}


def check_kind(recipe: Recipe, source: str = "the recipe") -> None:
    """Checks a conditional kind's ``model.options`` and that its objective applies to it."""
    try:
        kind_options(recipe)
        o = recipe.objective.name
        if recipe.model.name == "m2":
            check_objective(o)
        elif o == NAME:
            raise RecipeError(
                f"objective '{NAME}' is M2's (model.name = 'm2'); the {recipe.model.name!r} "
                f"model has no discrete latent: use 'elbo', 'iwae' or another particle objective."
            )
    except (RecipeError, ObjectiveError) as e:
        raise RecipeError(f"{source}: {e}") from None


def _z_guide(recipe: Recipe, in_dim: int):
    g = recipe.guide
    enc = g.encoder
    return build_guide(
        g.name, in_dim, recipe.model.z_dim, "mlp", enc.hidden, enc.activation, None, **g.options
    )


def _labelled_parts(recipe: Recipe, data: Splits, prior: bool):
    o, m = kind_options(recipe), recipe.model
    c = o["num_classes"]
    model = build_labelled_model(
        m.z_dim,
        data.x_dim,
        c,
        prior,
        m.likelihood,
        m.likelihood_options,
        m.decoder.hidden,
        m.decoder.activation,
        data.image_shape,
    )
    enc = recipe.guide.encoder
    guide = build_labelled_guide(
        _z_guide(recipe, data.x_dim + c),
        data.x_dim,
        c,
        prior,
        o.get("classifier_hidden", enc.hidden),
        enc.activation,
    )
    return model, guide


def m2_parts(recipe: Recipe, data: Splits):
    """M2: p(y) p(z) p(x|y,z) and q(y|x) q(z|x,y); trained by the semi-supervised objective."""
    check_objective(recipe.objective.name)
    return _labelled_parts(recipe, data, True)


def conditional_parts(recipe: Recipe, data: Splits):
    """The class-conditional VAE p(z) p(x|y,z) and q(z|x,y)."""
    return _labelled_parts(recipe, data, False)


def cvae_parts(recipe: Recipe, data: Splits):
    """The CVAE (prior, generation and recognition networks) or the deterministic baseline."""
    o, m = kind_options(recipe), recipe.model
    model = build_cvae(
        m.z_dim,
        data.x_dim,
        bool(o["baseline"]),
        m.likelihood,
        m.likelihood_options,
        m.decoder.hidden,
        m.decoder.activation,
        data.image_shape,
    )
    guide = NoLatents() if o["baseline"] else CondGuide(_z_guide(recipe, 2 * data.x_dim))
    return model, guide


def m2_data(recipe: Recipe, data: Splits) -> Splits:
    """``data.labels`` labelled training points (seeded by ``data.label_seed``), the rest
    unlabelled; validation and test keep their labels for the accuracy only."""
    o, d = kind_options(recipe), recipe.data
    s = semi_supervised(data, d.labels, d.label_seed, o["num_classes"], o["labelled_fraction"])
    return replace(s, labels={k: v for k, v in s.labels.items() if k != "train"})


def conditional_data(recipe: Recipe, data: Splits) -> Splits:
    """Every split's labels as the conditioning input."""
    c = kind_options(recipe)["num_classes"]
    s = semi_supervised(data, "all", 0, c)  # checks that the dataset has labels at all
    for k, y in data.labels.items():
        check_labels(y, c, f"the {k} labels")
    return replace(s, cond={k: y.clone() for k, y in data.labels.items()})


def cvae_data(recipe: Recipe, data: Splits) -> Splits:
    """The given quadrants of every image as the conditioning input."""
    return quadrant_split(data, recipe.data.given_quadrants)


def m2_loss_options(recipe: Recipe, data: Splits) -> dict[str, float]:
    """``labelled_scale`` = 1 / r, with r the copies of each labelled point in the training
    split: each labelled point then counts once per epoch in the objective (Kingma et al.'s
    weighting), and ``labelled_fraction`` only sets how evenly the batches spread it."""
    rows = int((data.cond["train"] >= 0).sum())
    labels = recipe.data.labels
    return {"labelled_scale": (rows if labels == "all" else labels) / max(rows, 1)}


KIND_DATA = {"m2": m2_data, "conditional": conditional_data, "cvae": cvae_data}
KIND_LOSS_OPTIONS = {"m2": m2_loss_options}
KIND_PARTS = {"m2": m2_parts, "conditional": conditional_parts, "cvae": cvae_parts}

__all__ = ["KIND_DATA", "KIND_LOSS_OPTIONS", "KIND_OPTIONS", "KIND_PARTS", "kind_options", "torch"]
