"""Free bits: the ELBO with each group's KL held at a floor lambda (in nats).

    L_lambda = sum_n E_q[log p(x_n|z)] - N sum_j max(lambda, (1/N) sum_n KL_j(x_n)),

with KL_j(x_n) = KL(q(z_j|x_n) || p(z_j)) for each latent dimension j (``group = "dim"``) or each
latent site (``group = "site"``), averaged over the minibatch. While a group's batch-mean KL is
below lambda its term is the constant lambda, so the gradient stops pushing that KL towards
zero. The KL is estimated as the matching base objective does: ``"sample"`` (log q(z) - log p(z),
as ``elbo``), ``"analytic"`` (closed form, as ``elbo_analytic_kl``) or ``"stl"`` (log q with the
guide's parameters detached, as ``elbo_stl``). With lambda = 0 this is that ELBO.

References: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved Variational
Inference with Inverse Autoregressive Flow, Appendix C.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent

from .analytic import closed_form_kl, describe
from .base import ObjectiveError, ParticleObjective, Particles

KL_ESTIMATES = ("sample", "analytic", "stl")
GROUPS = ("dim", "site")


def _per_dim(d: Distribution, site: str, role: str) -> Distribution:
    if isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1:
        return d.base_dist
    raise ObjectiveError(
        f"free bits per latent dimension need the {role} at site '{site}' to factorize over one "
        f"event dimension (e.g. Normal(...).to_event(1)), got {describe(d)}; set "
        f"objective.options.free_bits_group = 'site' for one floor per latent site."
    )


class FreeBitsELBO(ParticleObjective):
    """The ELBO with free bits: ``free_bits`` nats per group, KL estimated by ``kl``."""

    def __init__(
        self, num_particles: int = 1, free_bits: float = 0.0, kl: str = "sample", group: str = "dim"
    ):
        if not free_bits >= 0:
            raise ObjectiveError(f"free_bits must be >= 0 nats, got {free_bits!r}.")
        if kl not in KL_ESTIMATES or group not in GROUPS:
            raise ObjectiveError(
                f"kl must be one of {KL_ESTIMATES} and free_bits_group one of {GROUPS}, got "
                f"{kl!r} and {group!r}."
            )
        super().__init__(num_particles)
        self.free_bits, self.kl, self.group = float(free_bits), kl, group
        self.detach_guide = kl == "stl"
        self.last_kl: dict[str, torch.Tensor] = {}  # batch-mean KL per group at the last step

    def begin_epoch(self, epoch: int) -> dict[str, float]:
        """Logs the floor with each epoch's metrics."""
        return {"free_bits": self.free_bits}

    def group_kl(self, p: Particles, name: str) -> torch.Tensor:
        """KL per particle, data point and group, ``[P, N, G]``, without the latent scale."""
        q_site, p_site = p.q_trace.nodes[name], p.model_trace.nodes[name]
        q, prior, z = q_site["fn"], p_site["fn"], p.values[name]
        if self.group == "dim":
            q, prior = _per_dim(q, name, "guide"), _per_dim(prior, name, "prior")
        if self.kl == "analytic":
            kl = closed_form_kl(q, prior, name)
        else:
            kl = q.log_prob(z) - prior.log_prob(z)
        if self.group == "dim":
            return p.reduce(kl, q_site, keep=1)
        return p.reduce(kl, q_site).unsqueeze(-1)

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        recon = p.log_lik().mean(0)
        penalty = 0.0
        for name in p.latents:
            kl = self.group_kl(p, name).mean((0, 1))
            self.last_kl[name] = kl.detach()
            penalty = penalty + kl.clamp(min=self.free_bits).sum()
        value = recon.sum() - p.latent_scale() * recon.shape[0] * penalty
        return value.detach(), value
