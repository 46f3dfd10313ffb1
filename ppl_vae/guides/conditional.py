"""Guides of the image-completion models: q(z | x, x_in) and the guide of a model with no
latents (the CVAE's deterministic baseline)."""

from __future__ import annotations

import pyro
import torch
from pyro.nn import PyroModule

from ..core.errors import InputError
from ..model.labelled import joined


class CondGuide(PyroModule):
    """q(z | x, cond): a registered guide whose encoder reads ``[x, cond]``."""

    takes_cond = True  # core.contract.Conditioned

    def __init__(self, z_guide):
        super().__init__(name="guide")
        self.z_guide = z_guide

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            raise InputError("this guide needs the conditioning input: guide(x, cond=x_in).")
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.z_guide.distribution(joined(x, cond)))


class NoLatents(PyroModule):
    """The guide of a model without latent variables: it samples nothing."""

    takes_cond = True  # it accepts (and ignores) the conditioning input

    def __init__(self):
        super().__init__(name="guide")
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # optimisers need a parameter

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> None:
        return None
