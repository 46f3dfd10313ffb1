"""The VAE as a Pyro model: p(z) = N(0, I), x | z ~ likelihood(decoder(z)).

The model samples ``"z"`` and observes ``"x"`` inside ``pyro.plate("data", N)``; any model that
does the same works with every guide, objective and bound in the toolkit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..core.errors import InputError
from .checks import check_batch
from .likelihoods import Likelihood, build_likelihood
from .nets import build_net


class VAE(PyroModule):
    """The generative model p(z) p(x|z) with a neural decoder.

    Args:
        decoder: network ``[..., z_dim] -> [..., x_dim]`` giving the likelihood's parameters.
        likelihood: module mapping decoder outputs to a distribution over pixels.
        z_dim: latent size; the prior is N(0, I) on R^z_dim.
        x_dim: number of pixels (data are flattened to ``[N, x_dim]``).
        image_shape: (C, H, W) of one data point, for pictures; None for plain vectors.
    """

    def __init__(
        self,
        decoder: nn.Module,
        likelihood: Likelihood,
        z_dim: int,
        x_dim: int,
        image_shape: Sequence[int] | None = None,
    ):
        super().__init__(name="model")
        self.decoder = decoder
        self.likelihood = likelihood
        self.z_dim = z_dim
        self.x_dim = x_dim
        self.image_shape = tuple(image_shape) if image_shape else None
        self.validate_data = True
        self._priors: dict = {}

    def check(self, x: torch.Tensor) -> None:
        """Raises DataError unless ``x`` is ``[N, x_dim]`` data this likelihood can score."""
        check_batch(x, self.x_dim)
        self.likelihood.check(x)

    @contextlib.contextmanager
    def data_checks_off(self) -> Iterator[None]:
        """Inside the block, ``forward`` skips ``check``: for callers that checked the data
        once already (``ppl_vae.model.checks.checked_once``)."""
        previous, self.validate_data = self.validate_data, False
        try:
            yield
        finally:
            self.validate_data = previous

    def prior(self, like: torch.Tensor) -> dist.Distribution:
        """p(z) = N(0, I), with event shape ``[z_dim]``, on ``like``'s device and dtype (built
        once per device and dtype: distributions are immutable)."""
        key = (like.dtype, like.device)
        if key not in self._priors:
            zero = like.new_zeros(())
            self._priors[key] = dist.Normal(zero, zero + 1).expand([self.z_dim]).to_event(1)
        return self._priors[key]

    def observation(self, z: torch.Tensor) -> dist.Distribution:
        """p(x|z), with event shape ``[x_dim]``."""
        out = self.decoder(z)
        event = getattr(self.likelihood, "event", None)  # a fused per-event density, if any
        return event(out) if event is not None else self.likelihood(out).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        if self.validate_data:
            self.check(x)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior(x))
            pyro.sample("x", self.observation(z), obs=x)

    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draws ``n`` data points from the model (their means, by default), ``[n, x_dim]``."""
        z = self.prior(next(self.parameters(), torch.zeros(()))).sample((n,))
        px = self.likelihood(self.decoder(z))
        return px.mean if mean else px.sample()


def build_model(
    z_dim: int,
    x_dim: int,
    likelihood: str = "bernoulli",
    likelihood_options: dict | None = None,
    net: str = "mlp",
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    image_shape: Sequence[int] | None = None,
) -> VAE:
    """Builds a VAE from names: likelihood (``LIKELIHOODS``) and decoder net (``mlp``, ``conv``)."""
    if z_dim < 1:
        raise InputError(f"z_dim must be at least 1, got {z_dim}.")
    decoder = build_net("decoder", net, z_dim, x_dim, hidden, activation, image_shape)
    lik = build_likelihood(likelihood, x_dim, **(likelihood_options or {}))
    return VAE(decoder, lik, z_dim, x_dim, image_shape)
