"""Guides for hierarchical VAEs: the bottom-up q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1}).

The contract a hierarchical guide follows (write your own to it): ``guide(x)`` samples the
model's latent sites ``"z1"`` ... ``"zL"`` inside ``pyro.plate("data", N)``, each from a
reparameterizable distribution whose batch shape broadcasts with the data plate (under a
vectorized particle plate ``z1`` is ``[K, N, d1]`` and the steps above take it as it comes).
That is all the objectives and bounds need. ``distribution(x)``, q(z_1 | x), is optional: the
pictures use its mean as the code of x, the layer the decoder reads. ``top_distribution(x)`` is
optional too: a top-layer density from x alone, which a VampPrior on the top layer reads at its
pseudo-inputs (``ppl_vae.model.hierarchical.TopOfChain``). Register a guide class in
``HIERARCHICAL_GUIDES`` (one line) and a recipe picks it with ``guide.name``; it is built as
``cls(x_dim, z_dims, hidden, activation=..., **guide.options)``.

An exact guide exists for a chain z_L -> ... -> z_1 -> x: p(z_{l+1} | z_l, x) = p(z_{l+1} | z_l),
so the true posterior factorizes as q(z_1 | x) q(z_2 | z_1) ...; the bottom-up guide can
represent it (``tests/test_hierarchical.py`` checks this on a linear-Gaussian chain).

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, section 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..core.registry import lookup
from ..model.hierarchical import INITS, GaussianLayer, _check_sizes
from .base import AmortizedGuide


class BottomUpGaussian(AmortizedGuide):
    """q(z_1 | x) prod_l q(z_{l+1} | z_l), each a diagonal Gaussian from an MLP (tanh and exp
    scales, as in the paper).

    Args:
        x_dim: number of pixels.
        z_dims: latent sizes from z_1 up.
        hidden: ``hidden[l]``, the hidden sizes of the step into z_{l+1} (x -> z_1 first).
        activation: name from ``ACTIVATIONS``.
        scale: ``"exp"`` (the paper) or ``"softplus"``.
        init: ``"torch"`` (PyTorch's default) or ``"glorot"`` (the paper: Glorot-uniform weights,
            zero biases).
    """

    def __init__(
        self,
        x_dim: int,
        z_dims: Sequence[int],
        hidden: Sequence[Sequence[int]],
        activation: str = "tanh",
        scale: str = "exp",
        init: str = "torch",
    ):
        _check_sizes(z_dims, hidden, "guide")
        start = lookup(INITS, init, "init")
        # the base class's methods (reusing_distribution), not its single encoder network
        PyroModule.__init__(self, name="guide")
        self.x_dim, self.z_dim, self.z_dims = x_dim, z_dims[0], tuple(z_dims)
        self._reused = None
        self.first = start(GaussianLayer(x_dim, z_dims[0], list(hidden[0]), activation, scale))
        self.steps = nn.ModuleList(
            start(GaussianLayer(z_dims[i], z_dims[i + 1], list(hidden[i + 1]), activation, scale))
            for i in range(len(z_dims) - 1)
        )

    @property
    def sites(self) -> list[str]:
        """The latent sites it samples, bottom first: ``["z1", ..., "zL"]``."""
        return [f"z{i}" for i in range(1, len(self.z_dims) + 1)]

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        """q(z_1 | x), batch shape ``[N]``, event shape ``[z_dims[0]]``."""
        return self.first(x)

    def top_distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        """q(z_L | m_{L-1}(x)): the top step at the chain of means m_1 = E[z_1 | x],
        m_{l+1} = E[z_{l+1} | m_l], batch ``[N]``, event ``[z_dims[-1]]``. With one layer it is
        q(z_1 | x) itself. The chain's exact marginal q(z_L | x) has no closed form; this is the
        density a VampPrior on the top layer mixes over its pseudo-inputs."""
        layers = [self.first, *self.steps]
        z = x
        for layer in layers[:-1]:
            z = layer.loc_scale(z)[0]
        return layers[-1](z)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z1", self._distribution(x))
            draws = [z]
            for site, step in zip(self.sites[1:], self.steps, strict=True):
                z = pyro.sample(site, step(z))
                draws.append(z)
        return draws


# guide.name -> class, for model.name = "hierarchical"; one line per guide.
HIERARCHICAL_GUIDES: dict[str, type[nn.Module]] = {"bottom_up": BottomUpGaussian}

# The parameters that the builder fills in itself, and where a recipe sets them.
RESERVED = {
    "x_dim": "the data",
    "z_dims": "model.options.z_dims",
    "hidden": "model.options.hidden",
    "activation": "model.options.activation",
}
