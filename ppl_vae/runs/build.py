"""The parts a recipe names, built and checked: data, model and guide, objective.

``check_recipe`` checks every name and option table of a recipe before any data are loaded, so
that a typo fails in a second, not after the data have loaded or a first epoch has run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ..core.errors import RecipeError
from ..core.options import checked_lookup
from ..core.registry import lookup
from ..data import BINARIZATIONS, DATASETS, Splits, load_data
from ..data import RESERVED as DATA_RESERVED
from ..guides import GUIDES, build_guide
from ..guides import RESERVED as GUIDE_RESERVED
from ..model import ACTIVATIONS, LIKELIHOODS, VAE, build_model
from ..model.likelihoods import RESERVED as LIKELIHOOD_RESERVED
from ..model.output_bias import OUTPUT_BIASES, init_output_bias
from ..objectives import OBJECTIVES, build_objective, wrapper_option_types
from ..objectives import RESERVED as OBJECTIVE_RESERVED
from ..training.noise import NOISES
from .hierarchical import check_hierarchical, hierarchical_parts
from .kinds import KIND_DATA, KIND_LOSS_OPTIONS, KIND_PARTS, check_kind
from .recipe import Recipe


def build_data(recipe: Recipe, data_dir: str | Path | None = None) -> Splits:
    """Loads the recipe's dataset, with the conditioning input its model kind reads, if any
    (``KIND_DATA``: labels, the given quadrants of an image)."""
    d = recipe.data
    s = load_data(d.name, data_dir, d.binarize, d.subset, d.valid_size, **d.options)
    prepare = KIND_DATA.get(recipe.model.name)
    s = prepare(recipe, s) if prepare is not None else s
    return replace(s, gray={})  # read by the kind's data step alone; not kept or moved


def build_parts(recipe: Recipe, data: Splits) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Builds the model and guide a recipe names (``model.name`` in ``MODEL_KINDS``), sized for
    ``data``; the decoder's output bias starts as ``model.output_bias`` says."""
    model, guide = lookup(MODEL_KINDS, recipe.model.name, "model")(recipe, data)
    init_output_bias(model, data.train, recipe.model.output_bias)
    return model, guide


def _vae_parts(recipe: Recipe, data: Splits) -> tuple[VAE, torch.nn.Module]:
    """The VAE p(z) p(x|z) and a guide from ``GUIDES``; it takes no ``model.options``."""
    m, g = recipe.model, recipe.guide
    if m.options:
        raise RecipeError(
            f"model.options: the 'vae' model takes no options, got {sorted(m.options)}; its "
            f"settings are model.z_dim, model.likelihood and model.decoder."
        )
    model = build_model(
        m.z_dim,
        data.x_dim,
        m.likelihood,
        m.likelihood_options,
        m.decoder.net,
        m.decoder.hidden,
        m.decoder.activation,
        data.image_shape,
    )
    guide = build_guide(
        g.name,
        data.x_dim,
        m.z_dim,
        g.encoder.net,
        g.encoder.hidden,
        g.encoder.activation,
        data.image_shape,
        **g.options,
    )
    return model, guide


# model.name -> a builder (recipe, data) -> (model, guide). A model kind that needs other parts
# (several stochastic layers, a label, a conditioning input) adds one line here.
MODEL_KINDS: dict[str, Callable[[Recipe, Splits], tuple[torch.nn.Module, torch.nn.Module]]] = {
    "vae": _vae_parts,
    "hierarchical": hierarchical_parts,
    **KIND_PARTS,  # "m2", "conditional", "cvae": models with a label or a given input
}
# Kinds whose guides are not GUIDES check their guide and options themselves.
KIND_CHECKS: dict[str, Callable[[Recipe, str], None]] = {"hierarchical": check_hierarchical}
KIND_CHECKS.update(dict.fromkeys(KIND_PARTS, check_kind))


def check_recipe(recipe: Recipe, source: str = "the recipe") -> None:
    """Checks every name a recipe uses and its option tables before any data are loaded: a
    wrong one raises UnknownNameError (with the closest name) or RecipeError (key and file).
    Option tables go through ``checked_lookup``, the check the builders make themselves."""
    d, m, g, o = recipe.data, recipe.model, recipe.guide, recipe.objective
    lookup({b: b for b in BINARIZATIONS}, d.binarize, "binarization")
    lookup(NOISES, recipe.train.noise, "train.noise")
    lookup(MODEL_KINDS, m.name, "model")
    lookup(OUTPUT_BIASES, m.output_bias, "model.output_bias")
    kind_check = KIND_CHECKS.get(m.name)
    if kind_check is not None:
        kind_check(recipe, source)
    for net in (m.decoder, g.encoder):
        lookup(ACTIVATIONS, net.activation, "activation")
    tables = [
        (DATASETS, d.name, "dataset", d.options, "data.options", DATA_RESERVED, None),
        (
            LIKELIHOODS,
            m.likelihood,
            "likelihood",
            m.likelihood_options,
            "model.likelihood_options",
            LIKELIHOOD_RESERVED,
            None,
        ),
        (GUIDES, g.name, "guide", g.options, "guide.options", GUIDE_RESERVED, None),
        (
            OBJECTIVES,
            o.name,
            "objective",
            o.options,
            "objective.options",
            OBJECTIVE_RESERVED,
            wrapper_option_types(),
        ),
    ]
    if kind_check is not None:  # it checked its guide already
        tables = [t for t in tables if t[0] is not GUIDES]
    for registry, name, what, options, key, reserved, extra in tables:
        checked_lookup(registry, name, what, options, key, source, reserved, extra)


def build_loss(recipe: Recipe, data: Splits | None = None):
    """The SVI loss a recipe names, with the options its model kind derives from ``data``
    (``KIND_LOSS_OPTIONS``: M2's ``labelled_scale``)."""
    o = recipe.objective
    derive = KIND_LOSS_OPTIONS.get(recipe.model.name)
    derived = derive(recipe, data) if derive is not None and data is not None else {}
    return build_objective(o.name, o.num_particles, derived=derived, **o.options)
