"""Pictures of a trained image VAE: prior samples, reconstructions, interpolations, latent codes.

Images are the likelihood's mean E[x | z] (pixel probabilities for Bernoulli pixels), folded to
the model's ``image_shape`` and laid out with ``torchvision.utils.make_grid`` (torchvision is
imported when a picture is made). Latent codes are
the guide's mean E_q[z | x] where its distribution has one, else one sample of site ``"z"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyro.poutine as poutine
import torch

from ..errors import InputError


def _images(model: Any, x: torch.Tensor) -> torch.Tensor:
    shape = getattr(model, "image_shape", None)
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
    out_dir: str | Path,
    labels: torch.Tensor | None = None,
    n: int = 64,
    seed: int = 0,
) -> dict[str, Path]:
    """Writes ``samples.png``, ``reconstructions.png``, ``interpolations.png`` (from the first
    images of ``x``) and ``latent.png`` (all of ``x``, coloured by ``labels``) into ``out_dir``."""
    from torchvision.utils import save_image

    from .plots import plot_latent

    if len(x) < 2:
        raise InputError(f"pictures need at least 2 data points, got {len(x)}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f"{k}.png" for k in ("samples", "reconstructions", "interpolations")}
    save_image(prior_samples(model, n, seed), paths["samples"])
    save_image(reconstructions(model, guide, x[: min(n // 2, len(x))]), paths["reconstructions"])
    pairs = min(8, len(x) // 2)
    save_image(
        interpolations(model, guide, x[:pairs], x[pairs : 2 * pairs]), paths["interpolations"]
    )
    z2, names = latent_2d(guide, x)
    paths["latent"] = out / "latent.png"
    plot_latent(z2, None if labels is None else labels[: len(x)].cpu(), paths["latent"], names)
    return paths
