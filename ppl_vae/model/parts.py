"""A model is built from parts: a prior (``PRIORS``), a likelihood (``LIKELIHOODS``) and a
decoder net (``DECODERS``), each chosen by name. This module joins them.

The decoder is sized from the likelihood: ``outputs_per_pixel`` numbers per pixel (parameter j
of pixel i at ``params[..., j * x_dim + i]``; a conv decoder gives them as j-major channels). A
part that reads the guide's networks gets the guide from ``connect`` once both are built.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..core.contract import SharesGuide, has
from .nets import build_net


def build_decoder(
    net: str,
    in_features: int,
    likelihood: nn.Module,
    hidden: Sequence[int],
    activation: str,
    image_shape: Sequence[int] | None = None,
) -> nn.Module:
    """A decoder ``[..., in_features] -> [..., k * x_dim]`` for ``likelihood``, with
    k = ``likelihood.outputs_per_pixel`` (a conv decoder: k times the image's channels)."""
    k = int(likelihood.outputs_per_pixel)
    shape = None if image_shape is None else (k * image_shape[0], *image_shape[1:])
    return build_net("decoder", net, in_features, k * likelihood.x_dim, hidden, activation, shape)


def connect(model: object, guide: object) -> None:
    """Hands ``guide`` to every part of ``model`` that reads it (``SharesGuide``): call it once
    the model and guide are built. It registers nothing: parameters stay with their owner."""
    if has(model, SharesGuide):
        model.share_guide(guide)
