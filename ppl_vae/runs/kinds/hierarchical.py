"""The ``hierarchical`` kind: a VAE with several stochastic layers (Burda et al. 2016).

A recipe sets it with ``model.name = "hierarchical"`` and the architecture in
``model.options`` (the keyword arguments of ``ppl_vae.model.hierarchical.build_hierarchical``):

    [model]
    name = "hierarchical"
    likelihood = "bernoulli"
    [model.options]
    z_dims = [100, 50]                  # z1 (next to x), z2, ...
    hidden = [[200, 200], [100, 100]]   # x -> z1, z1 -> z2; the decoder mirrors them
    activation = "tanh"
    scale = "exp"
    init = "glorot"

The top layer's prior is ``model.prior``, any of ``PRIORS``; a ``vamp`` there mixes the guide's
top step at the chain of means over its pseudo-inputs (``model.hierarchical.TopOfChain``).
The guide is ``guide.name`` from ``HIERARCHICAL_GUIDES`` (``bottom_up``, the paper's), built
with the same ``z_dims``, ``hidden`` and ``activation`` and its own ``guide.options`` (``scale``,
``init``).
``model.z_dim``, ``model.decoder`` and ``guide.encoder`` belong to the one-layer ``vae`` kind
and must stay unset.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import RecipeError
from ...core.options import checked_lookup
from ...data import Splits
from ...guides.hierarchical import HIERARCHICAL_GUIDES, RESERVED
from ...model.hierarchical import build_hierarchical
from ..recipe import ModelConfig, NetConfig, Recipe
from .spec import ModelKind, Parts

# build_hierarchical's parameters that come from elsewhere in the recipe.
MODEL_RESERVED = {
    "x_dim": "the data",
    "image_shape": "the data",
    "likelihood": "model.likelihood",
    "likelihood_options": "model.likelihood_options",
    "prior": "model.prior",
    "prior_options": "model.prior_options",
}


def check_hierarchical(recipe: Recipe, source: str = "the recipe") -> None:
    """Raises RecipeError for a hierarchical recipe that sets a key of the one-layer VAE, or an
    unknown option (with the closest name)."""
    m, g = recipe.model, recipe.guide
    unused = [
        key
        for key, value, default in (
            ("model.z_dim", m.z_dim, ModelConfig.z_dim),
            ("model.decoder", m.decoder, NetConfig()),
            ("guide.encoder", g.encoder, NetConfig()),
        )
        if value != default
    ]
    if unused:
        raise RecipeError(
            f"{source}: {', '.join(unused)} belong to the one-layer 'vae' model; the "
            f"'hierarchical' model takes its sizes from model.options (z_dims, hidden, "
            f"activation). Remove them."
        )
    checked_lookup(
        {"hierarchical": build_hierarchical},
        "hierarchical",
        "model",
        m.options,
        "model.options",
        source,
        reserved=MODEL_RESERVED,
        error=RecipeError,
    )
    if g.name not in HIERARCHICAL_GUIDES:
        raise RecipeError(
            f"{source}: guide.name = {g.name!r} is a guide for the one-layer 'vae' model; the "
            f"'hierarchical' model needs one of HIERARCHICAL_GUIDES: "
            f"{', '.join(sorted(HIERARCHICAL_GUIDES))} (e.g. guide.name = 'bottom_up')."
        )
    checked_lookup(
        HIERARCHICAL_GUIDES, g.name, "guide", g.options, "guide.options", source, reserved=RESERVED
    )


def hierarchical_parts(recipe: Recipe, data: Splits, options: dict[str, Any]) -> Parts:
    """The model p(z_L) ... p(x | z_1) (the prior on z_L from ``model.prior``) and its guide,
    sized for ``data``."""
    check_hierarchical(recipe)
    m, g = recipe.model, recipe.guide
    model = build_hierarchical(
        data.x_dim,
        likelihood=m.likelihood,
        likelihood_options=m.likelihood_options,
        prior=m.prior,
        prior_options=m.prior_options,
        image_shape=data.image_shape,
        **options,
    )
    a = model.arch
    guide = HIERARCHICAL_GUIDES[g.name](
        data.x_dim, a["z_dims"], a["hidden"], activation=a["activation"], **g.options
    )
    return model, guide


KIND = ModelKind(
    "hierarchical",
    hierarchical_parts,
    "several stochastic layers, sites z1 ... zL (Burda et al. 2016)",
    options=None,  # build_hierarchical's keywords, checked by check_hierarchical
    check=check_hierarchical,
    own_guides=True,
)
