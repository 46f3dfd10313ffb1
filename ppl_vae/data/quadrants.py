"""The quadrant task of Sohn et al. (2015): from 1, 2 or 3 quadrants of a digit, predict the rest.

``quadrant_split(data, given)`` keeps each split's full images as the data ``x`` and adds the
conditioning input ``cond``: the image with the pixels to predict set to ``HIDDEN`` (-1). A
conditional model scores only the hidden pixels, so its bound is on log p(x_out | x_in).

Which quadrants are given (as in Pyro's CVAE tutorial): 1, the bottom left; 2, the left half;
3, all but the bottom right.

Binarization. Under ``data.binarize = "dynamic"`` the input is the gray given quadrants (as in
Pyro's tutorial) and the hidden pixels are bits: new ones every epoch in training, fixed ones
for validation and test, so the bound is a density of binary pixels given gray inputs. Under
``"static"`` both are the same fixed bits.

References: Sohn, Lee & Yan (2015), Learning Structured Output Representation using Deep
Conditional Generative Models; Pyro's conditional VAE tutorial.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..core.errors import DataError
from . import SPLITS, Splits

HIDDEN = -1.0  # a pixel of cond that the model must predict


def given_mask(given: int, height: int = 28, width: int = 28) -> torch.Tensor:
    """A boolean image ``[height * width]``, True on the ``given`` quadrants."""
    if given not in (1, 2, 3):
        raise DataError(
            f"data.given_quadrants must be 1, 2 or 3 (quadrants of the image given as input), "
            f"got {given}."
        )
    m = torch.zeros(height, width, dtype=torch.bool)
    h, w = height // 2, width // 2
    m[h:, :w] = True  # 1: the bottom left
    if given >= 2:
        m[:, :w] = True  # 2: the left half
    if given == 3:
        m[:h, :] = True  # 3: all but the bottom right
    return m.flatten()


def hide(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with the pixels outside ``mask`` set to ``HIDDEN``."""
    return torch.where(mask.to(x.device), x, x.new_full((), HIDDEN))


def quadrant_split(data: Splits, given: int) -> Splits:
    """Adds ``cond`` = the given quadrants of every image (the rest ``HIDDEN``) to each split:
    gray values where the data keep them (dynamic binarization), else the images themselves."""
    if data.image_shape is None or data.image_shape[0] != 1:
        raise DataError(
            "the quadrant task needs single-channel images (data.name = 'mnist' or "
            "'fashion_mnist'); this dataset has no image shape."
        )
    mask = given_mask(given, *data.image_shape[1:])
    inputs = {s: data.gray.get(s, getattr(data, s)) for s in SPLITS}
    return replace(data, cond={s: hide(x, mask) for s, x in inputs.items()})
