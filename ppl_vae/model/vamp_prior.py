"""The ``vamp`` prior (VampPrior): an equal mixture of the guide's own posteriors at K learned
pseudo-inputs u_k,

    p(z) = (1/K) sum_k q(z | u_k),

with q the guide's ``distribution(x)`` (``core.contract.EncoderDistribution``): a diagonal
Gaussian, a mixture or a flow, anything with a ``log_prob``. The pseudo-inputs are parameters of
the prior, ``[K, x_dim]`` in data space; the encoder stays the guide's (kept in a
``core.Shared``, handed over by ``ppl_vae.model.connect``), so its parameters are saved and
optimized once, with the guide, and the prior's gradient reaches them too.

Cost: one encoder pass over the K pseudo-inputs per call of the prior, that is per run of the
model (per SVI step, per chunk of particles in ``bounds.log_weights``, per leapfrog gradient in
AIS); the mixture keeps its components at batch ``[K]`` when ``pyro.plate`` broadcasts it, and
scores z ``[P, N, D]`` with K x P x N numbers (``model.mixture``).

Start: the official code (jmtomczak/vae_vampprior) draws the pseudo-inputs' pre-activations
from N(-0.05, 0.01^2) and squashes them into [0, 1], or copies random training points (its
``use_training_data_init``). Here they live in data space, unsquashed, and start at
N(init_loc, init_scale^2) per pixel, by default 0.5 +- 0.1: gray images in the middle of [0, 1]
data, spread enough that the components part early. In Python ``pseudo_inputs`` sets them, e.g.
to K random training points.

References: Tomczak & Welling (2018), VAE with a VampPrior, AISTATS; code:
jmtomczak/vae_vampprior (``models/Model.py``, ``add_pseudoinputs``).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ..core.contract import EncoderDistribution, Shared, has
from ..core.errors import InputError
from .mixture import Mixture
from .mog_prior import check_count, check_positive, check_z_dim

CONNECT = (
    "call ppl_vae.model.connect(model, guide) once both are built (train_recipe and load_run do it)"
)


class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z | u_k) over K = ``num_pseudo`` pseudo-inputs ``[K, x_dim]``.

    Args:
        z_dim: latent size.
        x_dim: pixels of one data point (set by the model from the data).
        num_pseudo: K, at least 1.
        init_loc: the mean of the pseudo-inputs' start, N(init_loc, init_scale^2) per pixel.
        init_scale: its standard deviation.
        pseudo_inputs: their start instead, a tensor ``[num_pseudo, x_dim]`` (Python only).
    """

    def __init__(
        self,
        z_dim: int,
        x_dim: int,
        num_pseudo: int = 500,
        init_loc: float = 0.5,
        init_scale: float = 0.1,
        pseudo_inputs: torch.Tensor | None = None,
    ):
        super().__init__()
        check_z_dim(z_dim)
        check_count(num_pseudo, "num_pseudo", "K, the number of pseudo-inputs")
        check_positive(init_scale, "init_scale")
        if isinstance(init_loc, bool) or not isinstance(init_loc, int | float):
            raise InputError(f"model.prior_options.init_loc must be a number, got {init_loc!r}.")
        self.z_dim, self.x_dim, self.num_pseudo = z_dim, int(x_dim), num_pseudo
        if pseudo_inputs is None:
            u = init_loc + init_scale * torch.randn(num_pseudo, self.x_dim)
        else:
            u = self._checked_start(pseudo_inputs)
        self.pseudo_inputs = nn.Parameter(u)
        self._guide: Shared | None = None

    def _checked_start(self, u: object) -> torch.Tensor:
        want = [self.num_pseudo, self.x_dim]
        if not torch.is_tensor(u) or list(u.shape) != want or not u.is_floating_point():
            got = f"shape {list(u.shape)}" if torch.is_tensor(u) else type(u).__name__
            raise InputError(
                f"model.prior_options.pseudo_inputs must be a float tensor [num_pseudo, x_dim] "
                f"= {want} (one row per pseudo-input, as wide as a flattened data point); got "
                f"{got}. Pass K rows of the data, e.g. x[:K].reshape(K, -1), with "
                f"num_pseudo = K."
            )
        return u.detach().clone().to(torch.get_default_dtype())

    @property
    def guide(self) -> nn.Module | None:
        """The guide whose encoder the prior reads (None until ``share_guide``)."""
        return None if self._guide is None else self._guide.module

    def share_guide(self, guide: nn.Module) -> None:
        """Keeps ``guide`` (in a ``Shared``: not registered here) after checking that its
        encoder reads the pseudo-inputs and gives q over ``z_dim`` units."""
        if not has(guide, EncoderDistribution):
            raise InputError(
                f"prior 'vamp' scores z under the guide's q(z | u_k), so the guide needs "
                f"distribution(x) (ppl_vae.core.EncoderDistribution): q(z|x) of the one latent "
                f"site from x alone; {type(guide).__name__} has none. Use a guide of "
                f"ppl_vae.GUIDES, or model.prior = 'mog' or 'flow'."
            )
        u = self.pseudo_inputs.detach()[:2]
        try:
            with torch.no_grad():
                q = guide.distribution(u)
        except (RuntimeError, ValueError, TypeError) as e:
            raise InputError(
                f"prior 'vamp': the guide's encoder cannot read the pseudo-inputs, rows of "
                f"x_dim = {self.x_dim} numbers like a flattened data point in "
                f"{u.dtype} ({' '.join(str(e).split())[:200]}). Build the model and the guide "
                f"for the same data (the same x_dim) and dtype."
            ) from e
        self._check(q, len(u))
        self._guide = Shared(guide)

    def _check(self, q: dist.Distribution, k: int) -> None:
        if tuple(q.batch_shape) != (k,) or tuple(q.event_shape) != (self.z_dim,):
            raise InputError(
                f"prior 'vamp' needs the guide's q(z | u) with batch shape [{k}] for {k} "
                f"pseudo-inputs and event shape [{self.z_dim}] (model.z_dim); it gave batch "
                f"{list(q.batch_shape)} and event {list(q.event_shape)}. Build the guide with "
                f"the model's z_dim."
            )

    def forward(self, like: torch.Tensor) -> Mixture:
        """The mixture, event shape ``[z_dim]``, on ``like``'s device and dtype: one encoder
        pass over the pseudo-inputs."""
        if self._guide is None:
            raise InputError(
                f"prior 'vamp' reads the guide's encoder at its pseudo-inputs, and no guide was "
                f"shared with it yet: {CONNECT}."
            )
        u = self.pseudo_inputs.to(like)
        q = self._guide.module.distribution(u)
        self._check(q, self.num_pseudo)
        return Mixture(u.new_zeros(self.num_pseudo), q)
