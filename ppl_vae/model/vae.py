"""The VAE as a Pyro model: z ~ p(z) (a prior part, N(0, I) by default), x | z ~
likelihood(decoder(z)).

The model samples ``"z"`` and observes ``"x"`` inside ``pyro.plate("data", N)``; any model that
does the same works with every guide, objective and bound in the toolkit. It is built from
parts (``model.parts``): a prior from ``PRIORS``, a likelihood from ``LIKELIHOODS`` and a
decoder net sized for that likelihood.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..core.contract import SharesGuide, has
from .checks import check_batch
from .likelihoods import Likelihood, build_likelihood
from .parts import build_decoder
from .priors import build_prior


class VAE(PyroModule):
    """The generative model p(z) p(x|z) with a neural decoder.

    Args:
        prior: module ``prior(like) -> p(z)`` with event shape ``[z_dim]`` (``PRIORS``).
        decoder: network ``[..., z_dim] -> [..., k * x_dim]`` giving the likelihood's
            parameters (k its ``outputs_per_pixel``).
        likelihood: module mapping decoder outputs to a distribution over pixels.
        x_dim: number of pixels (data are flattened to ``[N, x_dim]``).
        image_shape: (C, H, W) of one data point, for pictures; None for plain vectors.
    """

    def __init__(
        self,
        prior: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        x_dim: int,
        image_shape: Sequence[int] | None = None,
    ):
        super().__init__(name="model")
        self.prior = prior
        self.decoder = decoder
        self.likelihood = likelihood
        self.z_dim = int(prior.z_dim)
        self.x_dim = x_dim
        self.image_shape = tuple(image_shape) if image_shape else None
        self.validate_data = True

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

    def share_guide(self, guide: nn.Module) -> None:
        """Hands the guide to the prior if it reads the guide's encoder (a VampPrior)."""
        if has(self.prior, SharesGuide):
            self.prior.share_guide(guide)

    def observation(self, z: torch.Tensor) -> dist.Distribution:
        """p(x|z), with event shape ``[x_dim]``."""
        return self.likelihood.event(self.decoder(z))

    def forward(self, x: torch.Tensor) -> None:
        if self.validate_data:
            self.check(x)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior(x))
            pyro.sample("x", self.observation(z), obs=x)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x, z), log p(z)) at ``z[..., N, z_dim]``: what a trace of ``forward`` with z
        given scores, without the trace (``core.contract.JointDensity``; AIS's leapfrog steps)."""
        log_prior = self.prior(x).log_prob(z)
        return log_prior + self.observation(z).log_prob(x), log_prior

    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draws ``n`` data points from the model (their means, by default), ``[n, x_dim]``."""
        z = self.prior(next(self.parameters(), torch.zeros(()))).sample((n,))
        px = self.likelihood(self.decoder(z))
        return px.mean if mean else px.sample()


def build_model(
    x_dim: int,
    z_dim: int,
    *,
    likelihood: str = "bernoulli",
    likelihood_options: dict | None = None,
    prior: str = "standard",
    prior_options: dict | None = None,
    net: str = "mlp",
    hidden: Sequence[int] = (400,),
    activation: str = "relu",
    image_shape: Sequence[int] | None = None,
) -> VAE:
    """Builds a VAE from parts named in their registries: the prior (``PRIORS``), the likelihood
    (``LIKELIHOODS``) and the decoder net (``mlp``, ``conv``), sized for that likelihood. The
    arguments come in ``build_guide``'s order: ``x_dim``, then ``z_dim``."""
    p = build_prior(prior, z_dim, x_dim, **(prior_options or {}))
    lik = build_likelihood(likelihood, x_dim, **(likelihood_options or {}))
    decoder = build_decoder(net, z_dim, lik, hidden, activation, image_shape)
    return VAE(p, decoder, lik, x_dim, image_shape)
