"""The exact posterior as a guide: q(z|x) = p(z|x) of a model that knows it in closed form."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch.distributions import MultivariateNormal


class ExactPosterior(PyroModule):
    """q(z|x) = p(z|x) of ``truth`` (anything with ``posterior(x)``, a ``MultivariateNormal``
    of batch ``[N]``, e.g. ``ppl_vae.data.LinearGaussian``), sampled at ``"z"`` under the data
    plate. With it every log weight of the true model equals log p(x)."""

    def __init__(self, truth):
        super().__init__(name="guide")
        self.truth = truth

    def distribution(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z|x), batch ``[N]``, event ``[z_dim]``."""
        return self.truth.posterior(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        post = self.truth.posterior(x)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.MultivariateNormal(post.loc, scale_tril=post.scale_tril))
