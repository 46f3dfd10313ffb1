"""The ``m1`` kind: Kingma et al.'s M1, a VAE trained on every training image (labels unused),
then a scikit-learn classifier fit on the codes E_q[z | x] of the ``data.labels`` labelled
points alone (``analysis.code_classifier``).

The model and guide are the ``vae`` kind's, so ``evaluate``, ``sample`` and ``diagnose`` treat
an M1 run as any VAE. After every epoch the classifier is fit again and scored: ``test_accuracy``
and ``valid_accuracy`` go into ``metrics.csv`` (a learning curve), ``test_accuracy`` of the last
epoch and ``test_accuracy_pixels`` (the same classifier on the labelled points' pixels, the
baseline) into ``summary.json``.

``model.options``: ``classifier`` (``logistic``, ``svm``, ``knn``, or ``label_spreading``,
which also reads the unlabelled training codes: ``CLASSIFIERS``),
``classifier_options`` (its scikit-learn keywords) and ``num_classes``. The labelled points are
``data.labels`` per-class-balanced points drawn with ``data.label_seed`` (as for M2).
"""

from __future__ import annotations

from typing import Any

import torch

from ...analysis.code_classifier import SEMI_SUPERVISED, CodeAccuracy, build_classifier
from ...core.errors import DataError, InputError, RecipeError, UnknownNameError
from ...data import Splits
from ...data.labels import labelled_subset
from ..recipe import Recipe
from .spec import ModelKind
from .vae import vae_parts

OPTIONS = {"classifier": "logistic", "classifier_options": {}, "num_classes": 10}


def m1_check(recipe: Recipe, source: str) -> None:
    """The classifier and its keywords, and a positive ``data.labels``, before any data load."""
    options = {**OPTIONS, **recipe.model.options}
    try:  # an unknown name lists the valid ones; a bad keyword names the scikit-learn class's
        build_classifier(options["classifier"], options["classifier_options"])
    except (InputError, UnknownNameError) as e:
        raise RecipeError(f"{source}: model.options: {e}") from None
    labels = recipe.data.labels
    if labels != "all" and (isinstance(labels, bool) or not isinstance(labels, int) or labels < 1):
        raise RecipeError(
            f"{source}: data.labels = {labels!r}: M1 fits its classifier on the labelled points "
            f"alone, so it needs at least one per class; set a positive multiple of the "
            f"{options['num_classes']} classes (e.g. 100 or 1000) or 'all'."
        )


def m1_metrics(recipe: Recipe, data: Splits, options: dict[str, Any]) -> CodeAccuracy:
    """The classifier on the codes of the labelled training points, scored every epoch."""
    y = data.labels.get("train")
    if y is None:
        raise DataError(
            "M1 fits a classifier on labelled points, and this dataset has no labels; pick a "
            "labelled dataset (data.name = 'mnist' or 'fashion_mnist')."
        )
    d = recipe.data
    name = options["classifier"]
    if d.labels == "all":
        keep = torch.ones(len(y), dtype=torch.bool)
    else:
        keep = torch.zeros(len(y), dtype=torch.bool)
        keep[labelled_subset(y, d.labels, d.label_seed, options["num_classes"])] = True
    x = data.train_epoch(torch.Generator(data.train.device).manual_seed(d.label_seed))
    rest = x[~keep] if name in SEMI_SUPERVISED else None
    return CodeAccuracy(name, options["classifier_options"], x[keep], y[keep], rest)


KIND = ModelKind(
    "m1",
    vae_parts,
    "M1: a VAE on every image, then a classifier on the labelled codes (Kingma et al. 2014)",
    options=OPTIONS,
    check=m1_check,
    epoch_metrics=m1_metrics,
)
