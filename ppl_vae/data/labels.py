"""Labelled subsets for semi-supervised learning: a seeded, class-balanced draw of ``n`` labels.

``data.labels = 100 | 600 | 1000 | 3000 | "all"`` keeps the labels of ``n / C`` training points
of each of the C classes (drawn with ``data.label_seed``) and drops the others' labels. The
result is a training split whose conditioning input ``cond["train"]`` is the label of a
labelled point and ``-1`` for an unlabelled one.

Batches. Every labelled point is repeated ``r`` times in the training split, with ``r`` chosen
so that labelled copies make up about ``labelled_fraction`` of it (none with ``"all"``). The
training loop shuffles the split as it always does, so each batch holds both kinds in about
that ratio: every step gets a labelled signal for the classifier q(y|x), as in Kingma et al.'s
minibatches (which also carry labelled and unlabelled points together), instead of Pyro's one
supervised batch every N_u / N_l batches; and since the labelled points are data points of the
split, exact resume, per-point noise and torchrun work unchanged. The run weighs each copy 1 / r
in the objective (``runs.kinds.m2.m2_objective_options``), so a labelled point counts once
per epoch.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
Generative Models.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..core.errors import DataError
from . import Splits

UNLABELLED = -1  # cond["train"] of a point whose label is hidden


def check_labels(labels: torch.Tensor, num_classes: int, what: str = "labels") -> None:
    """Raises DataError unless ``labels`` are integers in ``[0, num_classes)``."""
    if labels.is_floating_point() or labels.dim() != 1:
        raise DataError(
            f"{what} must be a 1-d integer tensor [N], got {labels.dtype} {list(labels.shape)}."
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][:3].tolist()
        raise DataError(
            f"{what} must lie in [0, {num_classes}) for {num_classes} classes, found {bad}; "
            f"relabel the data as 0..{num_classes - 1} or set model.options.num_classes."
        )


def labelled_subset(labels: torch.Tensor, n: int, seed: int, num_classes: int) -> torch.Tensor:
    """Indices of ``n`` points, ``n / num_classes`` of each class, drawn with ``seed``, sorted.

    Raises DataError when ``n`` is not a multiple of the number of classes or when a class has
    fewer points than its share."""
    if n < num_classes or n % num_classes:
        raise DataError(
            f"data.labels = {n} must be a positive multiple of the {num_classes} classes, so "
            f"that every class gets the same number of labels (e.g. 100, 600, 1000 or 3000)."
        )
    per = n // num_classes
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        if len(members) < per:
            raise DataError(
                f"data.labels = {n} needs {per} points of class {c}, but the training split "
                f"holds only {len(members)}; ask for at most {num_classes * len(members)} "
                f"labels (or 'all'), or use more data (data.subset = 0)."
            )
        picked.append(members[torch.randperm(len(members), generator=g)[:per]])
    return torch.cat(picked).sort().values


def semi_supervised(
    data: Splits,
    labels: int | str,
    seed: int = 0,
    num_classes: int = 10,
    labelled_fraction: float = 0.1,
) -> Splits:
    """The training split with ``labels`` labelled points (or ``"all"``), the rest unlabelled;
    labelled points repeated to about ``labelled_fraction`` of the split (see the module)."""
    y = data.labels.get("train")
    if y is None:
        raise DataError(
            "this dataset has no labels, so a semi-supervised or class-conditional model "
            "cannot use it; pick a labelled dataset (data.name = 'mnist' or 'fashion_mnist')."
        )
    check_labels(y, num_classes, "the training labels")
    if labels == "all":
        return replace(data, cond={"train": y.clone()})
    if not isinstance(labels, int) or isinstance(labels, bool):
        raise DataError(f"data.labels must be a number of labels or 'all', got {labels!r}.")
    if labels > len(y):
        raise DataError(
            f"data.labels = {labels} asks for more labelled points than the training split "
            f"holds ({len(y)}); ask for at most {len(y)} (or 'all')."
        )
    if not 0 < labelled_fraction < 1:
        raise DataError(f"labelled_fraction must be in (0, 1), got {labelled_fraction}.")
    keep = labelled_subset(y, labels, seed, num_classes)
    is_lab = torch.zeros(len(y), dtype=torch.bool)
    is_lab[keep] = True
    n_u = int((~is_lab).sum())
    repeat = max(1, round(labelled_fraction * n_u / ((1 - labelled_fraction) * labels)))
    x = data.train
    train = torch.cat([x[~is_lab], x[keep].repeat(repeat, 1)])
    cond = torch.cat([y.new_full((n_u,), UNLABELLED), y[keep].repeat(repeat)])
    return replace(data, train=train, cond={"train": cond})
