"""The amortized guide contract: an encoder maps x to a distribution q(z|x) over ``"z"``.

Subclasses implement ``distribution(x)``, which returns a reparameterizable distribution with
batch shape ``[N]`` and event shape ``[z_dim]`` (a "lazy distribution", as in zuko);
``forward(x)`` samples it at site ``"z"`` under ``pyro.plate("data", N)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..model.nets import build_net


class AmortizedGuide(PyroModule):
    """Base class of the built-in guides: ``encoder(x) -> params -> q(z|x)``.

    Args:
        x_dim: number of pixels of one (flattened) data point.
        z_dim: latent size.
        num_outputs: how many numbers the encoder produces per data point.
        net: the encoder network (see ``ppl_vae.model.nets``), ``mlp`` or ``conv``.
        hidden: its hidden layer sizes.
        activation: its activation.
        image_shape: ``(C, H, W)`` of one data point, for the ``conv`` net.
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        num_outputs: int,
        net: str = "mlp",
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        image_shape: Sequence[int] | None = None,
    ):
        super().__init__(name="guide")
        self.x_dim = x_dim
        self.z_dim = z_dim
        self.num_outputs = num_outputs
        self.encoder = build_net(
            "encoder", net, x_dim, num_outputs, hidden, activation, image_shape
        )
        self._reused: dict | None = None  # see reusing_distribution()

    def start_independent_of_x(self, rows: slice) -> None:
        """Zeroes the weights of the encoder outputs ``rows`` (their biases stay random), so
        that those parameters start the same for every x and training adds the dependence on x.
        Does nothing for an encoder whose last module is not a linear layer giving the outputs.
        """
        layers = [m for m in self.encoder.modules() if isinstance(m, nn.Linear)]
        if layers and layers[-1].out_features == self.num_outputs:
            with torch.no_grad():
                layers[-1].weight[rows] = 0.0

    def distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        """Returns q(z|x) with batch shape ``[N]`` and event shape ``[z_dim]``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def reusing_distribution(self) -> Iterator[None]:
        """Inside the block, with gradients off, q(z|x) is built once per data tensor ``x`` and
        reused: drawing many chunks of particles for the same points (``ppl_vae.bounds``) runs
        the encoder once. The encoder is deterministic, so nothing else changes."""
        self._reused = {}
        try:
            yield
        finally:
            self._reused = None

    def _distribution(self, x: torch.Tensor) -> dist.TorchDistribution:
        reused = self._reused
        if reused is None or torch.is_grad_enabled():
            return self.distribution(x)
        key = (x.data_ptr(), x._version, x.shape, x.stride())
        if reused.get("key") != key:
            reused.update(key=key, q=self.distribution(x))
        return reused["q"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self._distribution(x))
