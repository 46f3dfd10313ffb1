"""A finite mixture p(z) = sum_k pi_k p_k(z) over ``[D]``, shared by the learned priors
(``mog``, ``vamp``), whose log density costs memory in K x rows, not K x rows x D.

torch's ``MixtureSameFamily`` scores z ``[..., D]`` by broadcasting it against every component,
``[..., K, D]``, before summing over D: with a VampPrior's K = 500 components, 100 particles of
100 points and D = 50 that is 2.5e8 numbers per temporary. Here the components keep batch shape
``[K]`` whatever the batch shape of the mixture (``expand`` copies nothing), and

- diagonal Gaussian components (``Normal(loc [K, D], scale [K, D]).to_event(1)``) are scored
  with the expanded square, as scikit-learn's ``GaussianMixture`` does for diagonal covariances:
  ||(z - mu_k) / s_k||^2 = (z^2) . s_k^-2 - 2 z . (mu_k s_k^-2) + ||mu_k / s_k||^2, one matrix
  product giving ``[rows, K]`` at once (in float32 its rounding error grows with
  ||z / s_k||^2: about 1e-3 nats at ||z / s_k||^2 = 1e4);
- any other component family (a flow guide's q(z | u_k)) is scored in blocks of rows, each
  ``[block, K, D]``, so that memory stays bounded without gradients.

Sampling draws a component per sample and then that component alone (Gaussian components) or
every component of a block of rows (others). The mixture has no ``rsample``: a prior is scored,
and sampled only to simulate from the model.

References: Pedregosa et al. (2011), scikit-learn, ``sklearn.mixture._gaussian_mixture``
(``_estimate_log_gaussian_prob``, covariance_type="diag").
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from torch.distributions import Independent, Normal

from ..core.errors import InputError

# Rows x components x D numbers per block of the generic path (about 16 MiB in float32).
BLOCK = 2**22


def _diagonal_normal(c: torch.distributions.Distribution) -> Normal | None:
    """The ``Normal`` base of ``Normal(...).to_event(1)``, or None for another family."""
    if isinstance(c, Independent) and c.reinterpreted_batch_ndims == 1:
        if type(c.base_dist) in (Normal, dist.Normal):
            return c.base_dist
    return None


class Mixture(dist.TorchDistribution):
    """sum_k softmax(logits)_k p_k(z), the components ``p_k`` one distribution of batch shape
    ``[K]`` and event shape ``[D]``; the mixture has event shape ``[D]`` and any batch shape.

    Args:
        logits: ``[K]`` unnormalized log weights (zeros: an equal mixture).
        components: batch ``[K]``, event ``[D]``.
        batch_shape: the mixture's batch shape (what ``pyro.plate`` expands it to).
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(
        self,
        logits: torch.Tensor,
        components: torch.distributions.Distribution,
        batch_shape: torch.Size | tuple[int, ...] = (),
        validate_args: bool | None = None,
    ):
        k = logits.shape[-1:] if logits.dim() == 1 else None
        if k is None or components.batch_shape != k or len(components.event_shape) != 1:
            raise InputError(
                f"a Mixture needs logits [K] and components of batch shape [K] and event shape "
                f"[D]; got logits {list(logits.shape)}, components of batch "
                f"{list(components.batch_shape)} and event {list(components.event_shape)}."
            )
        self.logits = logits - logits.logsumexp(-1)
        self.components = components
        super().__init__(torch.Size(batch_shape), components.event_shape, validate_args)

    @property
    def num_components(self) -> int:
        return self.logits.shape[-1]

    @property
    def support(self):
        return self.components.support

    @property
    def mean(self) -> torch.Tensor:
        m = (self.logits.exp().unsqueeze(-1) * self.components.mean).sum(-2)
        return m.expand(self.batch_shape + self.event_shape)

    def expand(self, batch_shape, _instance=None) -> Mixture:
        """The same mixture with batch shape ``batch_shape``; the components are not copied."""
        return Mixture(self.logits, self.components, batch_shape, self._validate_args)

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_k(z) for every component: ``z [..., D]`` gives ``[..., K]``."""
        d = self.event_shape[0]
        rows = z.reshape(-1, d)
        normal = _diagonal_normal(self.components)
        if normal is not None:
            lp = _diagonal_log_prob(normal.loc, normal.scale, rows)
        else:
            k = self.num_components
            step = max(1, BLOCK // (k * d))
            lp = torch.cat(
                [
                    self.components.log_prob(rows[i : i + step].unsqueeze(-2).expand(-1, k, d))
                    for i in range(0, len(rows), step)
                ]
            )
        return lp.reshape(*z.shape[:-1], self.num_components)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log sum_k pi_k p_k(z), with shape ``broadcast(z.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(z)
        lp = torch.logsumexp(self.component_log_prob(z) + self.logits, -1)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        """Draws ``sample_shape + batch_shape`` points: a component index from pi, then a draw
        of that component."""
        shape = torch.Size(sample_shape) + self.batch_shape
        n, d, k = math.prod(shape), self.event_shape[0], self.num_components
        index = torch.distributions.Categorical(logits=self.logits).sample((n,))
        normal = _diagonal_normal(self.components)
        if normal is not None:
            loc, scale = (t.expand(k, d) for t in (normal.loc, normal.scale))
            z = loc[index] + scale[index] * torch.randn_like(loc[index])
        else:
            step = max(1, BLOCK // (k * d))
            z = torch.cat([self._draw(j) for j in index.split(step)] or [_empty(self, d)])
        return z.reshape(shape + self.event_shape)

    def _draw(self, index: torch.Tensor) -> torch.Tensor:
        """One draw of component ``index[i]`` for each i, ``[len(index), D]``: every component
        is drawn and the chosen one kept (a generic family cannot draw one alone)."""
        every = self.components.sample((len(index),))  # [n, K, D]
        return every[torch.arange(len(index), device=index.device), index]


def _empty(m: Mixture, d: int) -> torch.Tensor:
    """An empty ``[0, D]`` draw in the mixture's dtype and device."""
    return m.logits.new_zeros((0, d))


def _diagonal_log_prob(loc: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log N(z_n; mu_k, diag(s_k^2)) for ``z [n, D]``, ``loc, scale [K, D]``: ``[n, K]``, as one
    matrix product [z^2, z] @ [-s_k^-2 / 2, mu_k s_k^-2]^T plus a constant per component."""
    loc, scale = torch.broadcast_tensors(loc, scale)
    precision = scale.pow(-2)  # [K, D]
    const = -0.5 * (loc.pow(2) * precision).sum(-1) - scale.log().sum(-1)
    const = const - 0.5 * loc.shape[-1] * math.log(2 * math.pi)
    weights = torch.cat([-0.5 * precision, loc * precision], -1)  # [K, 2D]
    return torch.addmm(const, torch.cat([z.pow(2), z], -1), weights.T)
