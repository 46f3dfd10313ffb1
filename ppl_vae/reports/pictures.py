"""Pictures of a trained image VAE: prior samples, reconstructions, interpolations, latent codes.

Images are the likelihood's mean E[x | z] (pixel probabilities for Bernoulli pixels), folded to
the model's ``image_shape`` and laid out with ``torchvision.utils.make_grid`` (torchvision is
imported when a picture is made). Latent codes are
the guide's mean E_q[z | x] where its distribution has one, else one sample of site ``"z"``.
``write_pictures`` draws the grids as matplotlib figures, enlarged, with a title and row or
column labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyro.poutine as poutine
import torch

from ..core.contract import HasImages, has
from ..core.errors import InputError


def _images(model: Any, x: torch.Tensor) -> torch.Tensor:
    shape = model.image_shape if has(model, HasImages) else None
    if not shape:
        raise InputError(
            "pictures need image data: this model has no image_shape (its data are plain "
            "vectors). Use an image dataset such as mnist or fashion_mnist."
        )
    return x.reshape(-1, *shape).clamp(0, 1).cpu()


@torch.no_grad()
def decode(model: Any, z: torch.Tensor) -> torch.Tensor:
    """E[x | z] as images ``[N, C, H, W]`` in [0, 1]."""
    return _images(model, model.likelihood(model.decoder(z)).mean)


@torch.no_grad()
def encode(guide: Any, x: torch.Tensor) -> torch.Tensor:
    """Latent codes ``[N, z_dim]``: the mean of q(z|x), or one draw of ``"z"`` if it has none."""
    try:
        return guide.distribution(x).mean
    except (AttributeError, NotImplementedError):
        return poutine.trace(guide).get_trace(x).nodes["z"]["value"]


def prior_samples(model: Any, n: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` images E[x | z], z ~ p(z), as a grid ``[3, H, W]``."""
    from torchvision.utils import make_grid

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x = model.sample(n)
    return make_grid(_images(model, x), nrow=int(n**0.5), padding=2, pad_value=1.0)


def reconstructions(model: Any, guide: Any, x: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A grid whose rows alternate: ``nrow`` inputs, then their reconstructions E[x | E_q[z|x]]."""
    from torchvision.utils import make_grid

    inputs = _images(model, x)
    recon = decode(model, encode(guide, x))
    rows = [t for i in range(0, len(x), nrow) for t in (inputs[i : i + nrow], recon[i : i + nrow])]
    return make_grid(torch.cat(rows), nrow=nrow, padding=2, pad_value=1.0)


def interpolations(
    model: Any, guide: Any, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8
) -> torch.Tensor:
    """One row per pair: x_a, then E[x | z] along z = (1 - t) z_a + t z_b for ``steps`` values
    of t in [0, 1], then x_b."""
    from torchvision.utils import make_grid

    if len(x_a) != len(x_b) or steps < 2:
        raise InputError("interpolations need as many x_a as x_b and at least 2 steps.")
    z_a, z_b = encode(guide, x_a), encode(guide, x_b)
    t = torch.linspace(0, 1, steps, dtype=z_a.dtype, device=z_a.device)[:, None, None]
    path = decode(model, ((1 - t) * z_a + t * z_b).transpose(0, 1).reshape(-1, z_a.shape[-1]))
    path = path.reshape(len(x_a), steps, *path.shape[1:])
    ends = _images(model, x_a)[:, None], _images(model, x_b)[:, None]
    grid = torch.cat([ends[0], path, ends[1]], 1).flatten(0, 1)
    return make_grid(grid, nrow=steps + 2, padding=2, pad_value=1.0)


def latent_2d(guide: Any, x: torch.Tensor) -> tuple[torch.Tensor, tuple[str, str]]:
    """Latent codes in 2-D: the codes themselves when z is 2-D, otherwise their projection on
    the first two principal components. Returns the points ``[N, 2]`` and the axis names."""
    z = encode(guide, x).double().cpu()
    if z.shape[-1] == 2:
        return z, ("z_1", "z_2")
    if z.shape[-1] == 1:
        return torch.cat([z, torch.zeros_like(z)], -1), ("z_1", "")
    centered = z - z.mean(0)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    return centered @ v[:2].T, ("PC 1 of z", "PC 2 of z")


def write_pictures(
    model: Any,
    guide: Any,
    x: torch.Tensor,
    out: str | Path,
    labels: torch.Tensor | None = None,
    n: int = 64,
    seed: int = 0,
) -> dict[str, Path]:
    """Writes ``samples.png``, ``reconstructions.png``, ``interpolations.png`` (from the first
    images of ``x``) and ``latent.png`` (all of ``x``, coloured by ``labels``) into ``out``."""
    from .plots import plot_latent

    if len(x) < 2:
        raise InputError(f"pictures need at least 2 data points, got {len(x)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{k}.png" for k in ("samples", "reconstructions", "interpolations")}
    grid = prior_samples(model, n, seed)
    show_grid(grid, "Samples from the prior: E[x | z], z ~ p(z)", paths["samples"])
    k = max(1, min(n // 2, len(x)))
    nrow = min(8, k)  # whole rows only, so that each row of inputs sits above its own outputs
    grid = reconstructions(model, guide, x[: k - k % nrow], nrow)
    rows = ["input", "reconstruction"] * (k // nrow)
    title = "Test images (input) and their reconstructions E[x | E_q[z|x]]"
    show_grid(grid, title, paths["reconstructions"], rows=rows, groups=2)
    pairs, steps = min(8, len(x) // 2), 8
    grid = interpolations(model, guide, x[:pairs], x[pairs : 2 * pairs], steps)
    ts = [f"{t:.2g}" for t in torch.linspace(0, 1, steps).tolist()]
    cols = ["x_a", "t = 0", *ts[1:-1], "t = 1", "x_b"]
    title = "Interpolations: E[x | z], z = (1 - t) E_q[z|x_a] + t E_q[z|x_b]"
    show_grid(grid, title, paths["interpolations"], cols=cols)
    z2, names = latent_2d(guide, x)
    paths["latent"] = out / "latent.png"
    plot_latent(z2, None if labels is None else labels[: len(x)].cpu(), paths["latent"], names)
    return paths


def show_grid(
    grid: torch.Tensor,
    title: str,
    path: str | Path | None = None,
    rows: Sequence[str] = (),
    cols: Sequence[str] = (),
    groups: int = 0,
    dpi: int = 100,
):
    """A grid ``[3, H, W]`` (from ``make_grid``, padding 2) as a figure: enlarged by a whole
    factor, under ``title``, with ``rows`` labelled on the left, ``cols`` on top and, with
    ``groups``, a line after every ``groups`` rows. Returns the figure; writes it to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _, h, w = grid.shape
    # A whole factor keeps every pixel square and sharp; about 600 pixels across at most.
    scale = max(2, min(4, 600 // w))
    fig = Figure(figsize=(w * scale / dpi, h * scale / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest", vmin=0, vmax=1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # make_grid: cell i spans pixels [cell * i, cell * (i + 1)) after 2 pixels of padding
    row, col = (h - 2) / max(len(rows), 1), (w - 2) / max(len(cols), 1)
    ax.set_yticks([row * (i + 0.5) + 1 for i in range(len(rows))], rows)
    ax.set_xticks([col * (i + 0.5) + 1 for i in range(len(cols))], cols)
    ax.tick_params(length=0, bottom=False, labeltop=True, labelbottom=False)
    for r in range(groups, len(rows), groups or 1):
        # on the 2 pixels of padding between groups, so that the images stay whole
        ax.axhline(row * r + 0.5, color="C0", lw=2 * scale * 72 / dpi)
    ax.set_title(title, fontsize="medium")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # "tight" widens the canvas to hold the labels outside the image, keeping its scale
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    return fig
