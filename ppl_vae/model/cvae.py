"""Image completion: the conditional VAE p(x_out | x_in) and its deterministic baseline.

The data ``x`` are whole images and the conditioning input ``cond`` is x_in: the given pixels,
the others set to -1 (``data.quadrants``). Only the hidden pixels are scored, so the log
weights, and every bound over them, are for log p(x_out | x_in).

- ``CVAE``: z ~ p(z | x_in) = N(mu(x_in), sigma(x_in)) (the prior network), x_out ~
  likelihood(generation([z, x_in])); its guide is the recognition network q(z | x_in, x_out),
  any registered guide reading ``[x, cond]`` (``guides.conditional.CondGuide``). Which inputs
  the prior and generation networks read is its ``variant`` (``CVAE_VARIANTS``): ``sohn``, as
  above, or ``pyro``, Pyro's tutorial model, whose prior network reads x_in with the hidden
  pixels filled in by a frozen, trained baseline's guess, and whose generation network reads z
  alone.
- ``Baseline``: x_out ~ likelihood(net(x_in)), no latent; trained by maximum likelihood (its
  ELBO is exact), its guide is ``guides.conditional.NoLatents``.

Both compose the likelihood part (``LIKELIHOODS``) and a decoder sized for it; the CVAE's
prior is its own network, p(z | x_in).

References: Sohn, Lee & Yan (2015), Learning Structured Output Representation using Deep
Conditional Generative Models; Pyro's conditional VAE tutorial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch.nn.functional import softplus

from ..core.errors import DataError, InputError
from ..core.registry import lookup
from .checks import check_batch
from .labelled import joined
from .likelihoods import Likelihood, build_likelihood
from .nets import Frozen, build_net
from .parts import build_decoder


@dataclass(frozen=True)
class Variant:
    """Which inputs the CVAE's networks read."""

    prior_reads_guess: bool  # x_in with a frozen baseline's guess in the hidden pixels
    generation_reads_input: bool  # [z, x_in]; else z alone


CVAE_VARIANTS: dict[str, Variant] = {
    "sohn": Variant(False, True),  # p(z | x_in), p(x_out | z, x_in): Sohn et al. (2015)
    "pyro": Variant(True, False),  # p(z | x_in, guess), p(x_out | z): Pyro's CVAE tutorial
}


class _Conditional(PyroModule):
    """Shared parts: the data check, the hidden-pixel mask, and p(x_out | output)."""

    takes_cond = True  # x_in, as cond= (core.contract.Conditioned)

    def __init__(self, likelihood: Likelihood, x_dim: int, image_shape=None):
        super().__init__(name="model")
        self.likelihood = likelihood
        self.x_dim = x_dim
        self.image_shape = tuple(image_shape) if image_shape else None

    def check(self, x: torch.Tensor) -> None:
        check_batch(x, self.x_dim)
        self.likelihood.check(x)

    def check_cond(self, x: torch.Tensor, cond: torch.Tensor | None) -> None:
        if cond is None:
            raise InputError(
                "the image-completion model needs its input: call model(x, cond=x_in), with "
                "x_in the given pixels and -1 where a pixel is to be predicted."
            )
        if cond.shape != x.shape:
            raise DataError(
                f"cond must have the shape of x, {list(x.shape)}, got {list(cond.shape)}."
            )

    def observation(self, params: torch.Tensor, cond: torch.Tensor) -> dist.Distribution:
        """p(x_out | .): the likelihood on the hidden pixels of ``cond`` only."""
        return self.likelihood(params).mask(cond == -1).to_event(1)


class CVAE(_Conditional):
    """p(z | x_in) p(x_out | z, x_in) with a prior network and a generation network."""

    def __init__(
        self,
        prior_net,
        generation_net,
        likelihood,
        z_dim: int,
        x_dim: int,
        image_shape=None,
        min_scale: float = 1e-4,
        guess: Frozen | None = None,
        generation_reads_input: bool = True,
    ):
        super().__init__(likelihood, x_dim, image_shape)
        self.prior_net = prior_net
        self.generation_net = generation_net
        self.z_dim = z_dim
        self.min_scale = min_scale
        self.guess = guess  # a frozen baseline's network: x_in -> its likelihood's parameters
        self.generation_reads_input = generation_reads_input

    def prior_input(self, cond: torch.Tensor) -> torch.Tensor:
        """x_in, or with a baseline, x_in with its guess (the mean) in the hidden pixels."""
        if self.guess is None:
            return cond
        return torch.where(cond == -1, self.likelihood(self.guess(cond)).mean, cond)

    def prior_given(self, cond: torch.Tensor) -> dist.Distribution:
        """p(z | x_in), batch ``[N]``, event ``[z_dim]``."""
        loc, raw = self.prior_net(self.prior_input(cond)).split(self.z_dim, -1)
        return dist.Normal(loc, softplus(raw) + self.min_scale).to_event(1)

    def generate(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters from z (and x_in, unless the variant reads z alone)."""
        return self.generation_net(joined(z, cond) if self.generation_reads_input else z)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
        self.check_cond(x, cond)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", self.prior_given(cond))
            pyro.sample("x", self.observation(self.generate(z, cond), cond), obs=x)

    @torch.no_grad()
    def complete(self, cond: torch.Tensor, mean: bool = True) -> torch.Tensor:
        """One completion of each input (z from the prior network): given pixels kept,
        hidden ones the mean (or a sample) of p(x_out | z, x_in)."""
        z = self.prior_given(cond).sample()
        px = self.likelihood(self.generate(z, cond))
        guess = px.mean if mean else px.sample()
        return torch.where(cond == -1, guess, cond)


class Baseline(_Conditional):
    """The deterministic network x_in -> p(x_out | x_in) that Sohn et al. compare against."""

    def __init__(self, net, likelihood, x_dim: int, image_shape=None):
        super().__init__(likelihood, x_dim, image_shape)
        self.net = net

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
        self.check_cond(x, cond)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", self.observation(self.net(cond), cond), obs=x)

    @torch.no_grad()
    def complete(self, cond: torch.Tensor, mean: bool = True) -> torch.Tensor:
        px = self.likelihood(self.net(cond))
        return torch.where(cond == -1, px.mean if mean else px.sample(), cond)


def build_cvae(
    x_dim: int,
    z_dim: int,
    *,
    baseline: bool = False,
    likelihood: str = "bernoulli",
    likelihood_options: dict | None = None,
    hidden: Sequence[int] = (500, 500),
    activation: str = "relu",
    image_shape: Sequence[int] | None = None,
    variant: str = "sohn",
    guess: Baseline | None = None,
) -> _Conditional:
    """Builds the CVAE (MLP prior and generation networks) of a variant (``CVAE_VARIANTS``) or,
    with ``baseline``, the plain network. A variant whose prior reads a guess needs ``guess``,
    a trained ``Baseline`` of the same task, which is frozen into the CVAE."""
    lik = build_likelihood(likelihood, x_dim, **(likelihood_options or {}))
    if baseline:
        return Baseline(
            build_decoder("mlp", x_dim, lik, hidden, activation), lik, x_dim, image_shape
        )
    v = lookup(CVAE_VARIANTS, variant, "CVAE variant")
    if v.prior_reads_guess and guess is None:
        raise InputError(
            f"the {variant!r} CVAE's prior network reads a trained baseline's guess: pass "
            f"guess=, a trained Baseline of the same task (recipes: model.options.baseline_run)."
        )
    frozen = Frozen(guess.net) if v.prior_reads_guess else None
    prior = build_net("encoder", "mlp", x_dim, 2 * z_dim, hidden, activation)
    gen_in = z_dim + x_dim if v.generation_reads_input else z_dim
    gen = build_decoder("mlp", gen_in, lik, hidden, activation)
    return CVAE(
        prior,
        gen,
        lik,
        z_dim,
        x_dim,
        image_shape,
        guess=frozen,
        generation_reads_input=v.generation_reads_input,
    )
