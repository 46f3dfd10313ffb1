"""Amortized guides q(z|x), one file each; ``GUIDES`` maps a recipe's ``guide.name`` to a class.

To add a guide, write a subclass of ``AmortizedGuide`` (or any PyroModule that samples ``"z"``
under ``pyro.plate("data", N)``) in its own file and add one line below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.options import checked_lookup, parameters
from . import gaussian_kl  # noqa: F401  (registers closed-form KLs with torch)
from .base import AmortizedGuide
from .conditional import CondGuide, NoLatents
from .diagonal import DiagonalNormal
from .exact import ExactPosterior
from .flow import FlowGuide
from .full_cov import FullCovariance
from .hierarchical import HIERARCHICAL_GUIDES, BottomUpGaussian
from .iaf import IAF
from .low_rank import LowRankNormal
from .mixture import DiagonalMixture
from .nsf import NSF
from .planar import Planar
from .sylvester import Sylvester

GUIDES: dict[str, type[AmortizedGuide]] = {
    "diagonal": DiagonalNormal,
    "full_cov": FullCovariance,
    "low_rank": LowRankNormal,
    "mixture": DiagonalMixture,
    "iaf": IAF,
    "sylvester": Sylvester,
    "nsf": NSF,
    "planar": Planar,
}


# The parameters of a guide class that build_guide fills in itself, and where a recipe sets
# them: they are not guide options.
RESERVED = {
    "x_dim": "the data",
    "image_shape": "the data",
    "z_dim": "model.z_dim",
    "net": "guide.encoder.net",
    "hidden": "guide.encoder.hidden",
    "activation": "guide.encoder.activation",
}


def build_guide(
    name: str,
    x_dim: int,
    z_dim: int,
    *,
    net: str = "mlp",
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    image_shape: Sequence[int] | None = None,
    **options: Any,
) -> AmortizedGuide:
    """Builds a registered guide by name, with its encoder and guide-specific options (a
    recipe's ``guide.options``), which are checked against the guide class's signature: an
    option it does not take is an InputError naming the closest one."""
    cls = checked_lookup(GUIDES, name, "guide", options, "guide.options", reserved=RESERVED)
    return cls(
        x_dim,
        z_dim,
        net=net,
        hidden=hidden,
        activation=activation,
        image_shape=image_shape,
        **options,
    )


def guide_options(cls: type) -> list[str]:
    """The guide-specific keyword options of a guide class (not x_dim, z_dim or the encoder's)."""
    return [name for name in parameters(cls) if name not in RESERVED]


__all__ = [
    "GUIDES",
    "IAF",
    "NSF",
    "AmortizedGuide",
    "CondGuide",
    "DiagonalMixture",
    "DiagonalNormal",
    "ExactPosterior",
    "FlowGuide",
    "FullCovariance",
    "LowRankNormal",
    "NoLatents",
    "Planar",
    "Sylvester",
    "HIERARCHICAL_GUIDES",
    "BottomUpGaussian",
    "build_guide",
    "guide_options",
]
