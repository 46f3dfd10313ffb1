"""Amortized guides q(z|x), one file each; ``GUIDES`` maps a recipe's ``guide.name`` to a class.

To add a guide, write a subclass of ``AmortizedGuide`` (or any PyroModule that samples ``"z"``
under ``pyro.plate("data", N)``) in its own file and add one line below.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence

from ..errors import InputError
from ..registry import lookup
from . import gaussian_kl  # noqa: F401  (registers closed-form KLs with torch)
from .base import AmortizedGuide
from .diagonal import DiagonalNormal
from .flow import FlowGuide
from .full_cov import FullCovariance
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
    """Builds a registered guide by name, with its encoder and guide-specific options (a
    recipe's ``guide.options``); an option the guide does not take is a ValueError."""
    cls = lookup(GUIDES, name, "guide")
    valid = guide_options(cls)
    for key in options:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"guide {name!r} has no option {key!r}.{hint} Its options: "
                f"{', '.join(valid) or 'none'}."
            )
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
    skip = {"self", "x_dim", "z_dim", "net", "hidden", "activation", "image_shape"}
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name not in skip and p.kind is p.POSITIONAL_OR_KEYWORD]


__all__ = [
    "GUIDES",
    "IAF",
    "NSF",
    "AmortizedGuide",
    "DiagonalMixture",
    "DiagonalNormal",
    "FlowGuide",
    "FullCovariance",
    "LowRankNormal",
    "Planar",
    "Sylvester",
    "build_guide",
    "guide_options",
]
