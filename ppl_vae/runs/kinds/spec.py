"""``ModelKind``: everything a recipe's ``model.name`` selects, in one record.

A kind holds its ``model.options`` with their defaults, its data step (the conditioning input
it adds to the splits), its parts builder (recipe and data to model and guide), the objective
options it derives from the data, its own checks, and its pictures. ``train_recipe``,
``load_run``, ``check_recipe`` and ``ppl-vae sample`` read these fields and nothing else about
a kind; a new kind is one file holding one ``ModelKind`` and one line of ``MODEL_KINDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...core.errors import RecipeError
from ...data import Splits
from ...objectives.semi_supervised import NAME
from ...reports.pictures import write_pictures
from ..recipe import Recipe

Parts = tuple[torch.nn.Module, torch.nn.Module]


@dataclass(frozen=True)
class Pictures:
    """What ``ppl-vae sample`` hands a kind's pictures: the run's model, guide and data, the
    split's points (and their labels and conditioning input), and the command's options."""

    model: Any
    guide: Any
    x: torch.Tensor
    out: Path
    labels: torch.Tensor | None = None
    cond: torch.Tensor | None = None
    label: int | None = None
    n: int = 64
    seed: int = 0


def default_pictures(p: Pictures) -> dict[str, Path]:
    """Prior samples, reconstructions, interpolations and the latent codes."""
    return write_pictures(p.model, p.guide, p.x, p.out, p.labels, p.n, p.seed)


@dataclass(frozen=True)
class ModelKind:
    """A model kind.

    Args:
        name: its ``model.name``.
        parts: ``(recipe, data, options) -> (model, guide)``, ``options`` being the kind's
            ``model.options`` with defaults filled in.
        description: one line for the docs and error messages.
        options: the ``model.options`` it takes, with their defaults; None when ``check``
            checks them itself (the hierarchical kind's are its builder's keywords).
        check: ``(recipe, source)``: raises RecipeError for a recipe the kind cannot build,
            before any data are loaded (its guide names, its objective).
        data: ``(recipe, data, options) -> data``: adds the conditioning input.
        objective_options: ``(recipe, data, options) -> dict``: objective options derived from
            the data (M2's ``labelled_scale``), which a recipe cannot set.
        pictures: ``(Pictures) -> {name: path}``, for ``ppl-vae sample``.
        takes_prior: whether ``model.prior`` applies (the CVAE's prior is its own network).
        no_guide_prior: why a prior that reads the guide's encoder (``SharesGuide``: vamp)
            cannot be this kind's, or "" where it can (the guide gives q(z|x) of the prior's
            site from x alone, ``distribution(x)``).
        own_guides: True when ``check`` checks ``guide.name`` (it is not one of ``GUIDES``).
        epoch_metrics: ``(recipe, data, options) -> hook``, the kind's own figures after each
            epoch, ``hook(model, guide, data) -> {name: value}`` (M1: the classifier's
            accuracy on the codes); passed to ``fit(epoch_metrics=...)``.
    """

    name: str
    parts: Callable[[Recipe, Splits, dict[str, Any]], Parts]
    description: str = ""
    options: Mapping[str, Any] | None = field(default_factory=dict)
    check: Callable[[Recipe, str], None] | None = None
    data: Callable[[Recipe, Splits, dict[str, Any]], Splits] | None = None
    objective_options: Callable[[Recipe, Splits, dict[str, Any]], dict[str, Any]] | None = None
    pictures: Callable[[Pictures], dict[str, Path]] = default_pictures
    takes_prior: bool = True
    no_guide_prior: str = ""
    own_guides: bool = False
    epoch_metrics: Callable[[Recipe, Splits, dict[str, Any]], Callable[..., dict]] | None = None

    def resolve(self, recipe: Recipe, source: str = "the recipe") -> dict[str, Any]:
        """``model.options`` with this kind's defaults filled in; an unknown key is an error."""
        given = dict(recipe.model.options)
        if self.options is None:
            return given
        unknown = sorted(set(given) - set(self.options))
        if unknown and not self.options:
            raise RecipeError(
                f"{source}: model.options: the {self.name!r} model takes no options, got "
                f"{unknown}; its settings are model.z_dim, model.prior, model.likelihood and "
                f"model.decoder."
            )
        if unknown:
            raise RecipeError(
                f"{source}: model.options.{unknown[0]}: the {self.name!r} model takes the "
                f"options {', '.join(sorted(self.options))}, not {unknown[0]!r}."
            )
        return {**self.options, **given}


def refuse_m2_objective(recipe: Recipe, source: str) -> None:
    """M2's objective needs a discrete latent, which this kind has not."""
    if recipe.objective.name == NAME:
        raise RecipeError(
            f"{source}: objective '{NAME}' is M2's (model.name = 'm2'); the "
            f"{recipe.model.name!r} model has no discrete latent: use 'elbo', 'iwae' or "
            f"another particle objective."
        )
