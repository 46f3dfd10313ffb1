"""The parts a recipe names, built and checked: data, model and guide, objective.

``check_recipe`` checks every name and option table of a recipe before any data are loaded, so
that a typo fails in a second, not after the data have loaded or a first epoch has run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..core.contract import SharesGuide
from ..core.errors import RecipeError
from ..core.options import checked_lookup
from ..core.registry import lookup
from ..data import BINARIZATIONS, DATASETS, Splits, load_data
from ..data import RESERVED as DATA_RESERVED
from ..guides import GUIDES
from ..guides import RESERVED as GUIDE_RESERVED
from ..model import ACTIVATIONS, LIKELIHOODS, PRIORS, connect
from ..model.likelihoods import RESERVED as LIKELIHOOD_RESERVED
from ..model.output_bias import OUTPUT_BIASES, init_output_bias
from ..model.priors import RESERVED as PRIOR_RESERVED
from ..objectives import OBJECTIVES, build_objective, wrapper_option_types
from ..objectives import RESERVED as OBJECTIVE_RESERVED
from ..training.noise import NOISES
from .kinds import MODEL_KINDS, ModelKind
from .recipe import Recipe


def model_kind(recipe: Recipe) -> ModelKind:
    """The ``ModelKind`` of ``model.name`` (``MODEL_KINDS``), or the error naming the closest."""
    return lookup(MODEL_KINDS, recipe.model.name, "model")


def build_data(recipe: Recipe, data_dir: str | Path | None = None) -> Splits:
    """Loads the recipe's dataset, with the conditioning input its model kind's data step adds,
    if any (labels, the given quadrants of an image)."""
    d = recipe.data
    s = load_data(d.name, data_dir, d.binarize, d.subset, d.valid_size, **d.options)
    kind = model_kind(recipe)
    s = kind.data(recipe, s, kind.resolve(recipe)) if kind.data is not None else s
    return replace(s, gray={})  # read by the kind's data step alone; not kept or moved


def build_parts(recipe: Recipe, data: Splits) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Builds the model and guide a recipe names (its kind's ``parts``), sized for ``data``,
    hands the guide to the parts that read it (``model.connect``), and starts the decoder's
    output bias as ``model.output_bias`` says."""
    kind = model_kind(recipe)
    model, guide = kind.parts(recipe, data, kind.resolve(recipe))
    connect(model, guide)
    init_output_bias(model, data.train, recipe.model.output_bias)
    return model, guide


def check_recipe(recipe: Recipe, source: str = "the recipe") -> None:
    """Checks every name a recipe uses and its option tables before any data are loaded: a
    wrong one raises UnknownNameError (with the closest name) or RecipeError (key and file).
    Option tables go through ``checked_lookup``, the check the builders make themselves."""
    d, m, g, o = recipe.data, recipe.model, recipe.guide, recipe.objective
    lookup({b: b for b in BINARIZATIONS}, d.binarize, "binarization")
    lookup(NOISES, recipe.train.noise, "train.noise")
    kind = model_kind(recipe)
    lookup(OUTPUT_BIASES, m.output_bias, "model.output_bias")
    kind.resolve(recipe, source)
    if kind.check is not None:
        kind.check(recipe, source)
    if not kind.takes_prior and (m.prior != "standard" or m.prior_options):
        raise RecipeError(
            f"{source}: model.prior: the {kind.name!r} model has its own prior network; remove "
            f"model.prior and model.prior_options."
        )
    for net in (m.decoder, g.encoder):
        lookup(ACTIVATIONS, net.activation, "activation")
    tables = [
        (DATASETS, d.name, "dataset", d.options, "data.options", DATA_RESERVED, None),
        (PRIORS, m.prior, "prior", m.prior_options, "model.prior_options", PRIOR_RESERVED, None),
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
    if kind.own_guides:  # it checked its guide already
        tables = [t for t in tables if t[0] is not GUIDES]
    for registry, name, what, options, key, reserved, extra in tables:
        checked_lookup(registry, name, what, options, key, source, reserved, extra)
    if kind.no_guide_prior and issubclass(PRIORS[m.prior], SharesGuide):
        raise RecipeError(
            f"{source}: model.prior = {m.prior!r} cannot be the {kind.name!r} model's prior: "
            f"{kind.no_guide_prior}"
        )


def build_recipe_objective(recipe: Recipe, data: Splits | None = None):
    """The objective (the SVI loss) a recipe names, with the options its model kind derives
    from ``data`` (M2's ``labelled_scale``)."""
    o = recipe.objective
    kind = model_kind(recipe)
    derive = kind.objective_options
    derived = derive(recipe, data, kind.resolve(recipe)) if derive and data is not None else {}
    return build_objective(o.name, o.num_particles, derived=derived, **o.options)
