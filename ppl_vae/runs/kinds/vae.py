"""The ``vae`` kind: p(z) p(x|z) with one latent site ``"z"`` and a guide from ``GUIDES``."""

from __future__ import annotations

from typing import Any

from ...data import Splits
from ...guides import build_guide
from ...model import build_model
from ..recipe import Recipe
from .spec import ModelKind, Parts


def vae_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """The VAE from the recipe's prior, likelihood and decoder, and its guide."""
    m, g = recipe.model, recipe.guide
    model = build_model(
        data.x_dim,
        m.z_dim,
        likelihood=m.likelihood,
        likelihood_options=m.likelihood_options,
        prior=m.prior,
        prior_options=m.prior_options,
        net=m.decoder.net,
        hidden=m.decoder.hidden,
        activation=m.decoder.activation,
        image_shape=data.image_shape,
    )
    guide = build_guide(
        g.name,
        data.x_dim,
        m.z_dim,
        net=g.encoder.net,
        hidden=g.encoder.hidden,
        activation=g.encoder.activation,
        image_shape=data.image_shape,
        **g.options,
    )
    return model, guide


KIND = ModelKind("vae", vae_parts, "p(z) p(x|z) with one latent site 'z'")
