"""Models with a label: M2 (the label a latent class, summed out where unseen) and the
class-conditional VAE (the label a given input).

Both decode p(x | y, z) = likelihood(decoder([z, onehot(y)])) with z ~ p(z) (a prior part,
N(0, I) by default) under
``pyro.plate("data", N)``; the label arrives as ``cond=`` (a LongTensor ``[N]``), the
conditioning input of the model contract.

- ``label_prior=True`` (M2): y ~ Cat(1/C) is a sample site ``"y"``, observed where ``cond`` is
  given. Without ``cond`` the guide samples (or enumerates) it, and the bounds sum it out
  exactly: log p(x) = logsumexp_y [log p(y) + log p(x|y)] (``summed_cond``).
- ``label_prior=False`` (class-conditional VAE): y is an input, p(x | y) is the model, and
  ``cond`` is required.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
Generative Models; Sohn, Lee & Yan (2015), Learning Structured Output Representation using Deep
Conditional Generative Models.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from ..core.errors import DataError, InputError
from .likelihoods import Likelihood, build_likelihood
from .parts import build_decoder
from .priors import build_prior
from .vae import VAE


def joined(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``cat([a, b], -1)`` after broadcasting their batch dimensions (an enumerated label
    ``[C, 1, C]`` meets latents ``[C, N, z]`` or data ``[N, x]``)."""
    shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return torch.cat([a.expand(*shape, a.shape[-1]), b.expand(*shape, b.shape[-1])], -1)


def as_onehot(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot codes of integer labels, in ``like``'s dtype. A comparison rather than
    ``torch.nn.functional.one_hot``, which reads the labels' range back to Python at every call
    (a replayed step cannot; the labels are checked once, by ``check_cond_labels``)."""
    classes = torch.arange(num_classes, device=y.device)
    return (y.long().unsqueeze(-1) == classes).to(like.dtype)


def check_cond_labels(cond: torch.Tensor, n: int, num_classes: int) -> None:
    """Raises DataError unless ``cond`` holds ``n`` integer labels in ``[0, num_classes)``."""
    if not isinstance(cond, torch.Tensor) or cond.is_floating_point() or cond.shape != (n,):
        got = list(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
        raise DataError(
            f"cond must be integer labels of shape [{n}], one per data point, got {got}."
        )
    if n and (int(cond.min()) < 0 or int(cond.max()) >= num_classes):
        bad = cond[(cond < 0) | (cond >= num_classes)][:3].tolist()
        raise DataError(
            f"labels must lie in [0, {num_classes}), found {bad}; pass labels 0..{num_classes - 1}."
        )


class LabelledVAE(VAE):
    """p(z) [p(y)] p(x | y, z): a VAE whose decoder also reads the one-hot label.

    Args:
        prior: p(z), as for ``VAE``.
        decoder: network ``[..., z_dim + C] -> [..., k * x_dim]``.
        likelihood: as for ``VAE``.
        x_dim: as for ``VAE``.
        num_classes: C, the number of labels.
        label_prior: True for M2 (y ~ Cat(1/C), summed out where unseen); False for a
            class-conditional VAE (y given).
        image_shape: as for ``VAE``.
    """

    log_joint = None  # its forward is not the VAE's: AIS traces it (JointDensity)

    takes_cond = True  # the label, as cond= (core.contract.Conditioned)

    def __init__(
        self,
        prior: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        x_dim: int,
        num_classes: int,
        label_prior: bool = True,
        image_shape: Sequence[int] | None = None,
    ):
        super().__init__(prior, decoder, likelihood, x_dim, image_shape)
        self.num_classes = num_classes
        self.label_prior = label_prior

    def label_distribution(self, like: torch.Tensor) -> dist.Distribution:
        """p(y) = Cat(1/C)."""
        return dist.Categorical(logits=like.new_zeros(self.num_classes))

    def summed_cond(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """The labels the bounds sum over when none is given (M2): every class, ``[N]`` each;
        None for a class-conditional VAE, whose label must be given."""
        if not self.label_prior:
            return None
        return [x.new_full((x.shape[0],), c, dtype=torch.long) for c in range(self.num_classes)]

    def observation_given(self, z: torch.Tensor, y: torch.Tensor) -> dist.Distribution:
        """p(x | y, z), with event shape ``[x_dim]``."""
        return self.observation(joined(z, as_onehot(y, self.num_classes, z)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
        if self.validate_data:
            self.check(x)
            if cond is not None:
                check_cond_labels(cond, x.shape[0], self.num_classes)
        if cond is None and not self.label_prior:
            raise InputError(
                "the class-conditional VAE models p(x | y) and needs the labels: call it as "
                "model(x, cond=y) with y a LongTensor [N]."
            )
        with pyro.plate("data", x.shape[0]):
            if self.label_prior:
                y = pyro.sample("y", self.label_distribution(x), obs=cond)
            else:
                y = cond
            z = pyro.sample("z", self.prior(x))
            pyro.sample("x", self.observation_given(z, y), obs=x)

    @torch.no_grad()
    def sample(
        self, n: int, mean: bool = True, label: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Draws ``n`` data points of class ``label`` (an int, labels ``[n]``, or None: drawn
        from p(y)), ``[n, x_dim]``."""
        like = next(self.parameters())
        y = self.labels_for(n, label, like)
        z = self.prior(like).sample((n,))
        px = self.likelihood(self.decoder(joined(z, as_onehot(y, self.num_classes, z))))
        return px.mean if mean else px.sample()

    @torch.no_grad()
    def analogies(self, z: torch.Tensor) -> torch.Tensor:
        """The means of p(x | y, z) for each row of ``z`` and every class y, ``[n, C, x_dim]``:
        one style, every label (Kingma et al.'s analogies figure)."""
        y = torch.arange(self.num_classes, device=z.device)
        codes = joined(z[:, None, :], as_onehot(y, self.num_classes, z)[None])
        return self.likelihood(self.decoder(codes)).mean

    def labels_for(self, n: int, label, like: torch.Tensor) -> torch.Tensor:
        """``n`` labels: ``label`` repeated, the tensor ``label``, or draws from p(y)."""
        if label is None:
            return self.label_distribution(like).sample((n,))
        y = torch.as_tensor(label, device=like.device).long().expand(n)
        check_cond_labels(y.contiguous(), n, self.num_classes)
        return y


def build_labelled_model(
    x_dim: int,
    z_dim: int,
    *,
    num_classes: int = 10,
    label_prior: bool = True,
    likelihood: str = "bernoulli",
    likelihood_options: dict | None = None,
    prior: str = "standard",
    prior_options: dict | None = None,
    hidden: Sequence[int] = (500,),
    activation: str = "softplus",
    image_shape: Sequence[int] | None = None,
) -> LabelledVAE:
    """Builds an M2 (``label_prior``) or class-conditional VAE with an MLP decoder, from the
    same parts as ``build_model``."""
    if z_dim < 1 or num_classes < 2:
        raise InputError(f"need z_dim >= 1 and num_classes >= 2, got {z_dim}, {num_classes}.")
    p = build_prior(prior, z_dim, x_dim, **(prior_options or {}))
    lik = build_likelihood(likelihood, x_dim, **(likelihood_options or {}))
    decoder = build_decoder("mlp", z_dim + num_classes, lik, hidden, activation)
    return LabelledVAE(p, decoder, lik, x_dim, num_classes, label_prior, image_shape)
