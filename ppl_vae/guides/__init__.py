"""Amortized guides q(z|x), one file each; ``GUIDES`` maps a recipe's ``guide.name`` to a class.

To add a guide, write a subclass of ``AmortizedGuide`` (or any PyroModule that samples ``"z"``
under ``pyro.plate("data", N)``) in its own file and add one line below.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..registry import lookup
from .base import AmortizedGuide
from .diagonal import DiagonalNormal

GUIDES: dict[str, type[AmortizedGuide]] = {
    "diagonal": DiagonalNormal,
}


def build_guide(
    name: str,
    x_dim: int,
    z_dim: int,
    net: str = "mlp",
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    image_shape: Sequence[int] | None = None,
    **options,
) -> AmortizedGuide:
    """Builds a registered guide by name, with its encoder and guide-specific options."""
    cls = lookup(GUIDES, name, "guide")
    return cls(
        x_dim,
        z_dim,
        net=net,
        hidden=hidden,
        activation=activation,
        image_shape=image_shape,
        **options,
    )


__all__ = ["GUIDES", "AmortizedGuide", "DiagonalNormal", "build_guide"]
