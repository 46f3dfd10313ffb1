"""Pictures of models with a conditioning input: samples of one class, analogies, completions.

- ``class_samples``: E[x | y, z] for one class y and z ~ p(z) (M2, class-conditional VAE);
- ``analogies``: Kingma et al.'s figure: each row takes a test image's style z (the mean of
  q(z | x, y), y its label, or q(y|x)'s guess for M2) and draws it as every class;
- ``completions``: Sohn et al.'s figure: the given part of a test image, the truth, and
  completions with z ~ p(z | x_in) (the hidden part in each, the given part kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core.contract import Analogies, SumsOutLabel, has
from ..core.errors import InputError
from .pictures import _images, show_grid


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    from torchvision.utils import make_grid

    return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


def check_label(model: Any, label: int | None) -> None:
    """Raises InputError unless ``label`` is None or a class of ``model``."""
    c = model.num_classes if has(model, Analogies) else None
    if label is not None and c is None:
        raise InputError(
            "--label needs a run whose model has labels (model.name = 'm2' or 'conditional'); "
            "this run's model has no class labels. Drop --label, or train models/mnist_m2.toml."
        )
    if label is not None and not 0 <= label < c:
        raise InputError(f"--label must be a class in 0..{c - 1}, got {label}.")


def class_samples(model: Any, label: int, n: int = 64, seed: int = 0) -> torch.Tensor:
    """A grid of ``n`` images E[x | y = label, z], z ~ p(z)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = model.sample(n, label=label)
    return _grid(_images(model, x), int(n**0.5))


@torch.no_grad()
def analogies(model: Any, guide: Any, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """A grid: per row, a test image, then E[x | y, z] for every class y with its style z =
    the mean of q(z | x, y_x), y_x its label (or q(y|x)'s most probable class when None)."""
    if y is None:
        y = guide.classify(x).argmax(-1)
    z = guide.z_distribution(x, y).mean
    rows = model.analogies(z)  # [n, C, x_dim]
    images = torch.cat(
        [
            _images(model, x)[:, None],
            _images(model, rows.flatten(0, 1)).reshape(len(x), -1, *model.image_shape),
        ],
        1,
    )
    return _grid(images.flatten(0, 1), model.num_classes + 1)


@torch.no_grad()
def completions(model: Any, x: torch.Tensor, cond: torch.Tensor, draws: int = 4, seed: int = 0):
    """A grid: per row, the input (hidden pixels gray), the truth, and ``draws`` completions."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        made = [model.complete(cond) for _ in range(draws)]
    shown = torch.where(cond == -1, torch.full_like(cond, 0.5), cond)
    cols = [shown, x, *made]
    images = torch.stack([_images(model, c) for c in cols], 1).flatten(0, 1)
    return _grid(images, len(cols))


def write_label_pictures(model, guide, x, out, labels=None, label=None, n=64, seed=0):
    """Writes ``analogies.png`` and, with ``label``, ``samples_label<y>.png`` (else
    ``samples_by_class.png``: a row of samples per class) into ``out``."""
    check_label(model, label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    if label is not None:
        paths["samples"] = out / f"samples_label{label}.png"
        show_grid(
            class_samples(model, label, n, seed),
            f"Samples of class {label}: E[x | y = {label}, z], z ~ p(z)",
            paths["samples"],
        )
    else:
        c = model.num_classes
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            xs = torch.cat([model.sample(8, label=k) for k in range(c)])
        paths["samples"] = out / "samples_by_class.png"
        show_grid(
            _grid(_images(model, xs), 8),
            "Samples of each class y: E[x | y, z], z ~ p(z)",
            paths["samples"],
            rows=[f"y = {k}" for k in range(c)],
        )
    k = min(8, len(x))
    summed = has(model, SumsOutLabel) and model.summed_cond(x[:1]) is not None  # M2: y latent
    y = labels[:k] if labels is not None and not summed else None
    paths["analogies"] = out / "analogies.png"
    cols = ["x", *[str(k) for k in range(model.num_classes)]]
    show_grid(
        analogies(model, guide, x[:k], y),
        "Analogies: the style z of x, every class y",
        paths["analogies"],
        cols=cols,
    )
    return paths


def plot_completions(model, x, cond, path=None, draws=4, seed=0):
    """The completions grid as a figure whose title says what is gray (the pixels of the input
    hidden from the model, ``cond == -1``) and what fills them in; returns the figure and,
    given ``path``, writes it."""
    from ..model.cvae import Baseline

    cols = ["input", "truth", *[f"draw {i + 1}" for i in range(draws)]]
    fill = (
        "E[x_out | x_in]" if isinstance(model, Baseline) else "E[x_out | z, x_in], z ~ p(z | x_in)"
    )
    title = (
        "Completions. Gray in the input: the quadrants hidden from the model,\n"
        f"which each draw fills in with {fill} (the given part kept)"
    )
    return show_grid(completions(model, x, cond, draws, seed), title, path, cols=cols)


def write_completions(model, x, cond, out, n=8, seed=0):
    """Writes ``completions.png``: ``n`` test images, their inputs and four completions."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "completions.png"
    plot_completions(model, x[:n], cond[:n], path, 4, seed)
    return {"completions": path}
