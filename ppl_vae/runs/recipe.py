"""Recipes: frozen dataclasses read from TOML, with ``a.b=value`` overrides.

A recipe names everything one experiment needs (data, model, guide, objective, training).
``load(path, overrides)`` reads a TOML file, applies ``--set`` style overrides and checks every
key and the type of every value, naming the key and the file (or the ``--set`` override that
set it) when one is wrong.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ..core.errors import RecipeError, RunDirError
from ..core.options import check_value
from ..core.registry import did_you_mean
from ..layout import CHECKPOINT, RECIPE


@dataclass(frozen=True)
class NetConfig:
    """An encoder or decoder network: ``mlp`` (hidden sizes, activation) or ``conv``."""

    net: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [400])
    activation: str = "relu"


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, how to binarize it, and how much of it to use."""

    name: str = "mnist"
    binarize: str = "none"
    valid_size: int = 10000
    subset: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    # models with a label (model.name = "m2"): how many training points keep their label,
    # class-balanced (100, 600, 1000, 3000 or "all"), and the seed of that draw
    labels: int | str = "all"
    label_seed: int = 0
    # image completion (model.name = "cvae"): quadrants of each image given, 1, 2 or 3
    given_quadrants: int = 2


@dataclass(frozen=True)
class ModelConfig:
    """The Pyro model: its kind (``MODEL_KINDS`` in ``ppl_vae.runs.kinds``; ``"vae"`` is
    p(z) p(x|z)), latent size, its parts (prior, likelihood, decoder) and options of that
    kind."""

    name: str = "vae"
    z_dim: int = 20
    prior: str = "standard"
    prior_options: dict[str, Any] = field(default_factory=dict)
    likelihood: str = "bernoulli"
    likelihood_options: dict[str, Any] = field(default_factory=dict)
    decoder: NetConfig = field(default_factory=NetConfig)
    options: dict[str, Any] = field(default_factory=dict)
    # "random": the network's own init; "logit_mean": the decoder's output bias starts at the
    # logit of the training mean (Bernoulli pixels; Burda et al. 2016)
    output_bias: str = "random"


@dataclass(frozen=True)
class GuideConfig:
    """The amortized guide q(z|x): a name from ``GUIDES``, its encoder and its options."""

    name: str = "diagonal"
    encoder: NetConfig = field(default_factory=NetConfig)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveConfig:
    """The SVI loss: a name and its options."""

    name: str = "elbo"
    num_particles: int = 1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """The optimiser and the loop."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    eval_batch_size: int = 1000
    max_steps: int = 0
    checkpoint_every: int = 1  # epochs between checkpoints (and one at the end)
    noise: str = "global"  # latent noise: one global stream, or "per_point" (a seed per point)
    checkpoint_steps: int = 0  # also one every this many SVI steps; 0: off
    optimizer: str = "adam"  # training.optimizers.OPTIMIZERS: "adam", "adam_iwae" (the paper's)
    optimizer_options: dict[str, Any] = field(default_factory=dict)  # betas, eps, ...
    lr_schedule: str = "constant"  # training.schedule.LR_SCHEDULES: "constant", "burda"
    lr_schedule_options: dict[str, Any] = field(default_factory=dict)
    log_latent: bool = False  # metrics.csv gains active units and KL per epoch
    tensorboard: bool = False  # also log to RUN/tensorboard (the optional tensorboard extra)
    threads: int = 0  # torch's intra-op threads while training; 0: torch's default (all cores)
    replay: bool = True  # step by a traced plan (training.replay): same results, less overhead
    keep_best: bool = False  # also keep the best epoch by validation ELBO in RUN/best.pt
    patience: int = 0  # stop after this many epochs without a better validation ELBO; 0: off


@dataclass(frozen=True)
class Recipe:
    """One trainable experiment."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    guide: GuideConfig = field(default_factory=GuideConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _build(
    cls: type,
    table: dict[str, Any],
    prefix: str,
    source: str,
    origins: dict[tuple[str, ...], str] | None = None,
) -> Any:
    """The dataclass ``cls`` from a TOML table: every key known, every value of its type.

    ``origins`` maps the key paths that overrides set (or created) to the ``--set`` that did,
    so that an error in one names that override rather than ``source``, the file."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        where = _origin(full, origins or {}, source)
        if key not in hints:
            raise RecipeError(
                f"{where}: unknown key '{full}'.{did_you_mean(key, names, prefix)} Valid keys "
                f"here: {', '.join(names)}."
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise RecipeError(f"{where}: key '{full}' must be a table, got {value!r}.")
            kwargs[key] = _build(tp, value, f"{full}.", source, origins)
        else:
            kwargs[key] = check_value(value, tp, full, where)
    return cls(**kwargs)


def _origin(full: str, origins: dict[tuple[str, ...], str], source: str) -> str:
    """Who set the key ``full``: the ``--set`` that set it or a table above it, else ``source``."""
    path = tuple(full.split("."))
    for n in range(len(path), 0, -1):
        if path[:n] in origins:
            return origins[path[:n]]
    return source


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``"a.b=value"`` into ``(["a", "b"], value)``; the value is read as TOML."""
    if "=" not in text:
        raise RecipeError(
            f"--set {text}: an override must look like key=value, e.g. train.epochs=5."
        )
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as guide.name=iaf is a string
    return key.strip().split("."), value


def from_dict(table: dict[str, Any], overrides: list[str] = (), source: str = "<dict>") -> Recipe:
    """Builds a checked Recipe from a nested dict plus ``a.b=value`` overrides; an error names
    ``source`` for a key of ``table`` and ``--set a.b=value`` for a key an override set."""
    table = _deep_copy(table)
    origins: dict[tuple[str, ...], str] = {}
    for text in overrides:
        path, value = parse_override(text)
        by = f"--set {text}"
        node = table
        for n, part in enumerate(path[:-1], 1):
            if part not in node:
                origins[tuple(path[:n])] = by  # a table this override created
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"{by}: '{'.'.join(path[:n])}' is not a table.")
        node[path[-1]] = value
        origins = {k: v for k, v in origins.items() if k[: len(path)] != tuple(path)}
        origins[tuple(path)] = by
    return _build(Recipe, table, "", source, origins)


def load(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Reads a TOML recipe and applies overrides such as ``["train.epochs=5"]``."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file {path} does not exist; recipes live in models/*.toml.")
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML ({e}).") from e
    return from_dict(table, overrides, source=str(path))


def to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a nested dict of primitives."""
    return dataclasses.asdict(recipe)


def save(recipe: Recipe, path: str | Path) -> None:
    """Writes the resolved recipe as TOML, atomically."""
    from ..storage import write_text  # imports torch, which reading a recipe does not need

    write_text(path, tomli_w.dumps(to_dict(recipe)))


def _deep_copy(table: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in table.items()}


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """The resolved recipe of the run dir ``path``, with optional overrides. A path that is not
    a run dir raises RunDirError saying what it is: missing, a file, or a run that ``fit``
    wrote from Python (weights but no recipe), which only Python can rebuild."""
    path = Path(path)
    if not (path / RECIPE).is_file():
        if not path.exists():
            raise RunDirError(
                f"{path} does not exist; give a run dir written by ppl-vae train "
                f"(runs/<recipe name> by default)."
            )
        if not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run dir (a folder with a {RECIPE}).")
        if (path / CHECKPOINT).is_file():
            raise RunDirError(
                f"{path} was written by ppl_vae.fit from Python, without a recipe, so ppl-vae "
                f"cannot rebuild its model and guide: evaluate it from Python with "
                f"ppl_vae.bounds.evaluate(model, guide, x) after loading its weights "
                f"(ppl_vae.training.checkpoint.load_weights('{path / CHECKPOINT}', model, "
                f"guide))."
            )
        raise RunDirError(f"{path} is not a run dir: it has no {RECIPE}.")
    return load(path / RECIPE, overrides)
