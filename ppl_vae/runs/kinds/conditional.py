"""The ``conditional`` kind: the class-conditional VAE p(z) p(x | y, z) and q(z | x, y), the
label given for every point. ``model.options``: ``num_classes``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...data import Splits
from ...data.labels import check_labels, semi_supervised
from ..recipe import Recipe
from .labelled import LABELLED_GUIDE_PRIOR, label_pictures, labelled_parts
from .spec import ModelKind, Parts, refuse_m2_objective


def conditional_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """The class-conditional VAE p(z) p(x|y,z) and q(z|x,y)."""
    return labelled_parts(recipe, data, options, False)


def conditional_data(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Splits:
    """Every split's labels as the conditioning input."""
    c = options["num_classes"]
    s = semi_supervised(data, "all", 0, c)  # checks that the dataset has labels at all
    for k, y in data.labels.items():
        check_labels(y, c, f"the {k} labels")
    return replace(s, cond={k: y.clone() for k, y in data.labels.items()})


KIND = ModelKind(
    "conditional",
    conditional_parts,
    "the class-conditional VAE p(x | y), y given",
    options={"num_classes": 10},
    check=refuse_m2_objective,
    data=conditional_data,
    pictures=label_pictures,
    no_guide_prior=LABELLED_GUIDE_PRIOR,
)
