"""What the two kinds with a label share: the z guide reading ``[x, onehot(y)]`` and the parts
of ``build_labelled_model`` with a classifier q(y|x) (M2) or without (class-conditional)."""

from __future__ import annotations

from typing import Any

from ...data import Splits
from ...guides import build_guide
from ...guides.labelled import build_labelled_guide
from ...model.labelled import build_labelled_model
from ...reports.label_pictures import write_label_pictures
from ..recipe import Recipe
from .spec import Parts, Pictures

# Why the kinds with a label take no prior that reads the guide's encoder (vamp).
LABELLED_GUIDE_PRIOR = (
    "a prior that reads the guide's encoder (vamp) needs q(z | u) from an input u alone, and "
    "this model's guide is q(z | x, y): each pseudo-input would need a label too. Choose "
    "'standard', 'mog' or 'flow'."
)


def z_guide(recipe: Recipe, in_dim: int):
    """The registered guide ``guide.name`` with an MLP encoder over ``in_dim`` inputs."""
    g = recipe.guide
    enc = g.encoder
    return build_guide(
        g.name,
        in_dim,
        recipe.model.z_dim,
        net="mlp",
        hidden=enc.hidden,
        activation=enc.activation,
        image_shape=None,
        **g.options,
    )


def labelled_parts(recipe: Recipe, data: Splits, options: dict[str, Any], prior: bool) -> Parts:
    """p(z) [p(y)] p(x | y, z) and q(z | x, y) [with q(y | x) where ``prior``]."""
    m, c = recipe.model, options["num_classes"]
    model = build_labelled_model(
        data.x_dim,
        m.z_dim,
        num_classes=c,
        label_prior=prior,
        likelihood=m.likelihood,
        likelihood_options=m.likelihood_options,
        prior=m.prior,
        prior_options=m.prior_options,
        hidden=m.decoder.hidden,
        activation=m.decoder.activation,
        image_shape=data.image_shape,
    )
    enc = recipe.guide.encoder
    guide = build_labelled_guide(
        z_guide(recipe, data.x_dim + c),
        data.x_dim,
        c,
        prior,
        options.get("classifier_hidden", enc.hidden),
        enc.activation,
    )
    return model, guide


def label_pictures(p: Pictures) -> dict:
    """The analogies figure (one style z, every class y) and samples of ``--label``."""
    return write_label_pictures(p.model, p.guide, p.x, p.out, p.labels, p.label, p.n, p.seed)
