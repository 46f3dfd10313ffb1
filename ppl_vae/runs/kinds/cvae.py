"""The ``cvae`` kind: image completion, p(x_out | x_in) with a prior network, a generation
network and a recognition guide q(z | x, x_in) (Sohn et al. 2015), or with
``model.options.baseline`` the deterministic network. The given quadrants of every image
(``data.given_quadrants``) are the conditioning input."""

from __future__ import annotations

from typing import Any

from ...data import Splits
from ...data.quadrants import quadrant_split
from ...guides.conditional import CondGuide, NoLatents
from ...model.cvae import build_cvae
from ...reports.label_pictures import write_completions
from ..recipe import Recipe
from .labelled import z_guide
from .spec import ModelKind, Parts, Pictures, refuse_m2_objective


def cvae_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """The CVAE (prior, generation and recognition networks) or the deterministic baseline."""
    m = recipe.model
    model = build_cvae(
        data.x_dim,
        m.z_dim,
        baseline=bool(options["baseline"]),
        likelihood=m.likelihood,
        likelihood_options=m.likelihood_options,
        hidden=m.decoder.hidden,
        activation=m.decoder.activation,
        image_shape=data.image_shape,
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
    options={"baseline": False},
    check=refuse_m2_objective,
    data=cvae_data,
    pictures=completions,
    takes_prior=False,
)
