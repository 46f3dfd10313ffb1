"""The ``m2`` kind: Kingma et al.'s M2, p(y) p(z) p(x | y, z) with q(y | x) q(z | x, y), trained
by the semi-supervised objective on ``data.labels`` labelled points and the rest unlabelled.

``model.options``: ``num_classes``, ``classifier_hidden`` (q(y|x)'s hidden sizes) and
``labelled_fraction`` (about this share of each batch is labelled points; ``data.labels``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...core.errors import ObjectiveError, RecipeError
from ...data import Splits
from ...data.labels import semi_supervised
from ...objectives.semi_supervised import check_objective
from ..recipe import Recipe
from .labelled import LABELLED_GUIDE_PRIOR, label_pictures, labelled_parts
from .spec import ModelKind, Parts


def m2_check(recipe: Recipe, source: str) -> None:
    """M2 trains on the semi-supervised objective only."""
    try:
        check_objective(recipe.objective.name)
    except ObjectiveError as e:
        raise RecipeError(f"{source}: {e}") from None


def m2_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """M2: p(y) p(z) p(x|y,z) and q(y|x) q(z|x,y)."""
    check_objective(recipe.objective.name)
    return labelled_parts(recipe, data, options, True)


def m2_data(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Splits:
    """``data.labels`` labelled training points (seeded by ``data.label_seed``), the rest
    unlabelled; validation and test keep their labels for the accuracy only."""
    d = recipe.data
    s = semi_supervised(
        data, d.labels, d.label_seed, options["num_classes"], options["labelled_fraction"]
    )
    return replace(s, labels={k: v for k, v in s.labels.items() if k != "train"})


def m2_objective_options(recipe: Recipe, data: Splits, options: dict[str, Any]) -> dict[str, float]:
    """``labelled_scale`` = 1 / r, with r the copies of each labelled point in the training
    split: each labelled point then counts once per epoch in the objective (Kingma et al.'s
    weighting), and ``labelled_fraction`` only sets how evenly the batches spread it."""
    rows = int((data.cond["train"] >= 0).sum())
    labels = recipe.data.labels
    return {"labelled_scale": (rows if labels == "all" else labels) / max(rows, 1)}


KIND = ModelKind(
    "m2",
    m2_parts,
    "M2: a label summed out where unseen (Kingma et al. 2014)",
    options={"num_classes": 10, "classifier_hidden": [500], "labelled_fraction": 0.1},
    check=m2_check,
    data=m2_data,
    objective_options=m2_objective_options,
    pictures=label_pictures,
    no_guide_prior=LABELLED_GUIDE_PRIOR,
)
