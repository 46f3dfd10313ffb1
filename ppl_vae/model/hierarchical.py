"""A VAE with several stochastic layers, as a Pyro model:
p(z_L) p(z_{L-1} | z_L) ... p(z_1 | z_2) p(x | z_1).

The latent sites are ``"z1"`` (next to the data) to ``"zL"`` (the top, under a prior part from
``PRIORS``, N(0, I) by default), all sampled inside ``pyro.plate("data", N)``; ``"x"`` is
observed there too. So every guide that samples the same sites
(``ppl_vae.guides.hierarchical``), every objective and every bound works on it through the usual
model/guide contract. Each conditional p(z_l | z_{l+1}) is a diagonal Gaussian whose mean and
scale come from one MLP (a linear head for the mean and one for the log scale, on shared hidden
units), with ``exp`` for the scale as in the paper.

With one layer it is Burda et al.'s 1-layer architecture; the 2-layer one has latents [100, 50].

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, section 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn.functional import softplus

from ..core.contract import SharesGuide, TopDistribution, has
from ..core.errors import InputError
from ..core.registry import lookup
from .likelihoods import Likelihood, build_likelihood
from .nets import MLP
from .parts import build_decoder
from .priors import build_prior
from .vae import VAE

# How a Gaussian layer turns its raw output into a positive scale.
SCALES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp,  # the paper's
    "softplus": lambda raw: softplus(raw) + 1e-4,
}


def glorot_(net: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases in every linear layer of ``net`` (the paper's
    initialization: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)))."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class TopOfChain:
    """The guide's top-layer density from x alone, ``distribution(x) =
    guide.top_distribution(x)`` (``core.contract.TopDistribution``): what a VampPrior on the
    top layer reads at its pseudo-inputs u_k, so that p(z_L) = (1/K) sum_k q(z_L | m(u_k)),
    a mixture of K Gaussians whose parameters come from the guide's networks. The bottom-up
    guide's exact q(z_L | u) is the marginal of its whole chain, with no density in closed
    form; the chain at its means is (``BottomUpGaussian.top_distribution``). With one layer it
    is Tomczak & Welling's VampPrior exactly."""

    def __init__(self, guide: nn.Module):
        self.guide = guide

    def distribution(self, x: torch.Tensor) -> dist.Distribution:
        return self.guide.top_distribution(x)


# model.options.init: how the linear layers start ("torch": PyTorch's default).
INITS: dict[str, Callable[[nn.Module], nn.Module]] = {"torch": lambda net: net, "glorot": glorot_}


class GaussianLayer(nn.Module):
    """A conditional diagonal Gaussian N(mu(v), diag(sigma(v)^2)) over ``out_dim`` units: an MLP
    ``v -> hidden -> [mu, raw]`` and sigma = scale(raw).

    Args:
        in_dim, out_dim: sizes of the conditioning input v and of the Gaussian.
        hidden: hidden layer sizes (none: mu and raw are linear in v).
        activation: name from ``ACTIVATIONS`` (the paper: tanh).
        scale: name from ``SCALES`` (the paper: exp).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (),
        activation: str = "tanh",
        scale: str = "exp",
    ):
        super().__init__()
        self.out_dim = out_dim
        self.net = MLP(in_dim, 2 * out_dim, list(hidden), activation)
        self.scale = lookup(SCALES, scale, "scale")

    def loc_scale(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu(v) and sigma(v), each ``[..., out_dim]``."""
        loc, raw = self.net(v).split(self.out_dim, dim=-1)
        return loc, self.scale(raw)

    def forward(self, v: torch.Tensor) -> dist.TorchDistribution:
        """The distribution, with event shape ``[out_dim]``."""
        loc, scale = self.loc_scale(v)
        return dist.Normal(loc, scale).to_event(1)


class HierarchicalVAE(VAE):
    """p(z_L) prod_l p(z_l | z_{l+1}) p(x | z_1), sites ``"z1"`` ... ``"zL"`` and ``"x"``.

    ``prior`` gives p(z_L); ``decoder`` and ``likelihood`` give p(x | z_1), as in ``VAE`` (so
    pictures decode z_1); ``conditionals[l - 1]`` gives p(z_l | z_{l+1}); ``z_dims`` lists the
    latent sizes from z_1 up, and ``z_dim`` is the top one, that of the prior.
    """

    log_joint = None  # its forward is not the VAE's: AIS traces it (JointDensity)

    def __init__(
        self,
        prior: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        conditionals: Sequence[GaussianLayer],
        z_dims: Sequence[int],
        x_dim: int,
        image_shape: Sequence[int] | None = None,
    ):
        if len(conditionals) != len(z_dims) - 1:
            raise InputError(f"{len(z_dims)} latent layers need {len(z_dims) - 1} conditionals.")
        if int(prior.z_dim) != int(z_dims[-1]):
            raise InputError(
                f"the prior is over {prior.z_dim} units but the top layer has {z_dims[-1]}."
            )
        super().__init__(prior, decoder, likelihood, x_dim, image_shape)
        self.z_dims = tuple(z_dims)
        self.conditionals = nn.ModuleList(conditionals)

    def share_guide(self, guide: nn.Module) -> None:
        """Hands the guide's top-layer density (``TopOfChain``) to a prior that reads the
        guide's encoder (a VampPrior over z_L)."""
        if not has(self.prior, SharesGuide):
            return
        if not has(guide, TopDistribution):
            raise InputError(
                f"the hierarchical model's top prior reads the guide's q(z_L | u) at its "
                f"pseudo-inputs, so the guide needs top_distribution(x) "
                f"(ppl_vae.core.TopDistribution); {type(guide).__name__} has none. Use the "
                f"'bottom_up' guide, add the method to yours, or model.prior = 'mog' or 'flow'."
            )
        self.prior.share_guide(TopOfChain(guide))

    @property
    def sites(self) -> list[str]:
        """The latent site names, bottom (next to x) first: ``["z1", ..., "zL"]``."""
        return [f"z{i}" for i in range(1, len(self.z_dims) + 1)]

    def forward(self, x: torch.Tensor) -> None:
        if self.validate_data:
            self.check(x)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample(self.sites[-1], self.prior(x))
            for site, layer in zip(self.sites[-2::-1], self.conditionals[::-1], strict=True):
                z = pyro.sample(site, layer(z))
            pyro.sample("x", self.observation(z), obs=x)

    @torch.no_grad()
    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """Draws ``n`` data points top-down, z_L ~ p(z_L) to x ~ p(x | z_1) (by default the
        mean E[x | z_1] of the last step), ``[n, x_dim]``."""
        z = self.prior(next(self.parameters(), torch.zeros(()))).sample((n,))
        for layer in self.conditionals[::-1]:
            z = layer(z).sample()
        px = self.likelihood(self.decoder(z))
        return px.mean if mean else px.sample()


def _check_sizes(z_dims: Sequence[int], hidden: Sequence[Sequence[int]], where: str) -> None:
    if not z_dims or any(int(d) < 1 for d in z_dims):
        raise InputError(f"{where}: z_dims must list at least one positive size, got {z_dims}.")
    if len(hidden) != len(z_dims):
        raise InputError(
            f"{where}: hidden must hold one list of hidden sizes per stochastic layer "
            f"({len(z_dims)} for z_dims = {list(z_dims)}), got {len(hidden)}: {list(hidden)}."
        )


def build_hierarchical(
    x_dim: int,
    z_dims: Sequence[int] = (100, 50),
    hidden: Sequence[Sequence[int]] = ((200, 200), (100, 100)),
    *,
    activation: str = "tanh",
    scale: str = "exp",
    init: str = "torch",
    likelihood: str = "bernoulli",
    likelihood_options: dict | None = None,
    prior: str = "standard",
    prior_options: dict | None = None,
    image_shape: Sequence[int] | None = None,
) -> HierarchicalVAE:
    """A hierarchical VAE whose decoder mirrors the bottom-up encoder sizes.

    ``z_dims[l]`` is the size of z_{l+1} and ``hidden[l]`` the hidden sizes of the encoder step
    into it (x -> z_1 for l = 0, z_l -> z_{l+1} above); the decoder step back down uses the same
    sizes reversed: with the paper's ``z_dims = [100, 50]``, ``hidden = [[200, 200], [100, 100]]``,
    p(z_1 | z_2) has hidden [100, 100] and p(x | z_1) hidden [200, 200].
    """
    _check_sizes(z_dims, hidden, "model.options")
    start = lookup(INITS, init, "init")
    lik = build_likelihood(likelihood, x_dim, **(likelihood_options or {}))
    decoder = start(build_decoder("mlp", z_dims[0], lik, list(hidden[0])[::-1], activation))
    conditionals = [
        start(GaussianLayer(z_dims[i + 1], z_dims[i], list(hidden[i + 1])[::-1], activation, scale))
        for i in range(len(z_dims) - 1)
    ]
    top = build_prior(prior, z_dims[-1], x_dim, **(prior_options or {}))
    model = HierarchicalVAE(top, decoder, lik, conditionals, z_dims, x_dim, image_shape)
    # the sizes a guide for it is built with (ppl_vae.runs.kinds.hierarchical)
    model.arch = {
        "z_dims": list(z_dims),
        "hidden": [list(h) for h in hidden],
        "activation": activation,
    }
    return model
