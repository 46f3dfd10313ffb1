"""Datasets as tensors ``[N, x_dim]`` on the device, with binarization and a registry by name.

``DATASETS`` maps a recipe's ``data.name`` to a loader ``(root, **options) -> Splits``. All data
are flattened to one row per data point; ``image_shape`` says how to fold a row back.

Binarization (``data.binarize``):
- ``none``: grayscale values in [0, 1] (or real values), unchanged;
- ``dynamic``: training images are resampled x ~ Bernoulli(gray) every epoch; validation and
  test images are sampled once with a fixed seed, so that every run is scored on the same bits
  (their gray values stay in ``Splits.gray``, for inputs such as the quadrant task's);
- ``static``: every split is sampled once with a fixed seed;
- ``threshold``: x > 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..core.errors import DataError
from ..core.options import checked_lookup
from ..core.registry import lookup
from .larochelle import load_larochelle
from .linear_gaussian import LinearGaussian
from .mnist import load_idx
from .root import MissingDataError, data_root

BINARIZATIONS = ("none", "dynamic", "static", "threshold")
SPLITS = ("train", "valid", "test")
BINARIZE_SEED = 1234  # fixed, so that static and evaluation bits are the same in every run
LAROCHELLE_VALID = 10000  # binarized_mnist's validation split, fixed by the file
# The parameters of a loader that load_data fills in itself, and where a recipe sets them.
RESERVED = {"root": "--data-dir or $PPL_VAE_DATA", "valid_size": "data.valid_size"}


@dataclass(frozen=True)
class Splits:
    """Train, validation and test tensors ``[N, x_dim]`` plus what is known about them."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    image_shape: tuple[int, ...] | None = None
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    binarize: str = "none"
    truth: LinearGaussian | None = None
    # a conditioning input per split, one row per data point (a label, the given part of an
    # image), passed as ``cond=`` to the model and guide; -1 marks an unlabelled training point
    cond: dict[str, torch.Tensor] = field(default_factory=dict)
    # under dynamic binarization, the gray values the fixed validation and test bits were drawn
    # from (the training split is gray itself)
    gray: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def x_dim(self) -> int:
        return self.train.shape[-1]

    def split(self, name: str) -> torch.Tensor:
        """The split ``train``, ``valid`` or ``test`` as it is scored (fixed bits)."""
        return getattr(self, lookup({s: s for s in SPLITS}, name, "split"))

    def train_epoch(self, generator: torch.Generator) -> torch.Tensor:
        """The training data for one epoch: resampled bits under dynamic binarization."""
        if self.binarize == "dynamic":
            return torch.bernoulli(self.train, generator=generator)
        return self.train

    def to(self, device: str | torch.device) -> Splits:
        move = {s: getattr(self, s).to(device) for s in SPLITS}
        cond = {k: v.to(device) for k, v in self.cond.items()}
        gray = {k: v.to(device) for k, v in self.gray.items()}
        return replace(self, **move, cond=cond, gray=gray)


def _binarize(x: torch.Tensor, how: str, seed: int) -> torch.Tensor:
    if how == "threshold":
        return (x > 0.5).float()
    g = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=g)


def _mnist_like(name: str):
    def load(root: Path, valid_size: int = 10000, download: bool = False) -> Splits:
        raw = load_idx(name, root, download)
        x = raw["train"][0].reshape(-1, 784).float() / 255
        y = raw["train"][1]
        if not 0 <= valid_size < len(x):
            raise DataError(f"data.valid_size must be in [0, {len(x)}), got {valid_size}.")
        cut = len(x) - valid_size
        test = raw["test"][0].reshape(-1, 784).float() / 255
        labels = {"train": y[:cut], "valid": y[cut:], "test": raw["test"][1]}
        return Splits(x[:cut], x[cut:], test, (1, 28, 28), labels)

    return load


def _larochelle(root: Path, valid_size: int = LAROCHELLE_VALID, download: bool = False) -> Splits:
    """The published train/valid/test split; ``valid_size`` may only repeat its size. With
    ``download``, a missing file is built from the original files (checked by SHA-256)."""
    # The split is part of the benchmark (results are comparable only on it), so another size
    # is refused rather than ignored, and before any file is read.
    if valid_size != LAROCHELLE_VALID:
        raise DataError(
            f"binarized_mnist comes with a fixed validation split of {LAROCHELLE_VALID} images "
            f"(Larochelle & Murray 2011), so data.valid_size must be {LAROCHELLE_VALID} for it, "
            f"got {valid_size}. For another split use data.name = 'mnist' with "
            f"data.binarize = 'static'."
        )
    s = load_larochelle(root, download)
    return Splits(s["train"], s["valid"], s["test"], (1, 28, 28), binarize="static")


def _linear_gaussian(
    root: Path,
    valid_size: int = 1000,
    x_dim: int = 10,
    z_dim: int = 2,
    noise: float = 0.5,
    correlation: float = 0.0,
    n_train: int = 10000,
    n_test: int = 1000,
    seed: int = 0,
) -> Splits:
    truth = LinearGaussian.random(x_dim, z_dim, noise, correlation, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = truth.sample(n_train + valid_size + n_test, g)
    return Splits(
        x[:n_train], x[n_train : n_train + valid_size], x[n_train + valid_size :], truth=truth
    )


DATASETS: dict[str, Callable[..., Splits]] = {
    "mnist": _mnist_like("mnist"),
    "fashion_mnist": _mnist_like("fashion_mnist"),
    "binarized_mnist": _larochelle,
    "linear_gaussian": _linear_gaussian,
}


def load_data(
    name: str,
    data_dir: str | Path | None = None,
    binarize: str = "none",
    subset: int = 0,
    valid_size: int | None = None,
    **options: Any,
) -> Splits:
    """Loads a registered dataset, binarizes it and optionally keeps the first ``subset`` rows
    of every split (for smoke tests). ``options`` (a recipe's ``data.options``) are checked
    against the dataset's loader; ``valid_size`` None keeps the loader's default."""
    loader = checked_lookup(DATASETS, name, "dataset", options, "data.options", reserved=RESERVED)
    binarize = lookup({b: b for b in BINARIZATIONS}, binarize, "binarization")
    if valid_size is not None:
        options["valid_size"] = valid_size
    s = loader(data_root(data_dir), **options)
    if subset:
        s = replace(s, **{k: getattr(s, k)[:subset] for k in SPLITS})
        s = replace(s, labels={k: v[:subset] for k, v in s.labels.items()})
    for k in SPLITS:
        if len(getattr(s, k)) == 0 and k != "valid":
            raise DataError(f"the {k} split of {name!r} is empty; check data.subset and sizes.")
    if binarize != "none" and s.binarize != "static":
        if s.truth is not None:
            raise DataError(f"dataset {name!r} is real-valued and cannot be binarized.")
        fixed = {
            k: _binarize(getattr(s, k), binarize, BINARIZE_SEED + i) for i, k in enumerate(SPLITS)
        }
        gray = {}
        if binarize == "dynamic":
            fixed.pop("train")  # resampled every epoch
            gray = {k: getattr(s, k) for k in fixed}
        s = replace(s, binarize=binarize, gray=gray, **fixed)
    return s


__all__ = [
    "DATASETS",
    "LinearGaussian",
    "MissingDataError",
    "Splits",
    "data_root",
    "load_data",
]
