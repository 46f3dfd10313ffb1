"""Free bits: a wrapper that holds each group's KL of an ELBO at a floor lambda (in nats).

    L_lambda = sum_n E_q[log p(x_n|z)] - N sum_j max(lambda, (1/N) sum_n KL_j(x_n)),

with KL_j(x_n) = KL(q(z_j|x_n) || p(z_j)) for each latent dimension j (``group = "dim"``) or each
latent site (``group = "site"``), averaged over the minibatch. While a group's batch-mean KL is
below lambda its term is the constant lambda, so the gradient stops pushing that KL towards
zero. ``FreeBits(base, lambda)`` wraps any objective that has a separate KL term and estimates
the KL as the base does, which the base declares as ``kl_estimate`` (Pyro's own losses are
known here): ``"sample"`` (log q(z) - log p(z), ``Trace_ELBO``), ``"analytic"`` (closed form,
``TraceMeanField_ELBO``) or ``"stl"`` (log q with the guide's parameters detached,
``STL_ELBO``), with the base's number of particles. With lambda = 0 this is the base ELBO.
The KL warm-up goes outside: ``KLWarmup(FreeBits(elbo, lambda), epochs)``.

References: Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved Variational
Inference with Inverse Autoregressive Flow, Appendix C.
"""

from __future__ import annotations

import torch
from pyro.infer import ELBO, Trace_ELBO, TraceMeanField_ELBO
from torch.distributions import Distribution, Independent

from ..core.contract import BeginsEpoch, DeclaresKL, has
from .analytic import AnalyticKL_ELBO, closed_form_kl, describe
from .annealing import KLWarmup
from .base import ObjectiveError, ParticleObjective, Particles
from .stl import STL_ELBO

KL_ESTIMATES = ("sample", "analytic", "stl")
GROUPS = ("dim", "site")


def kl_estimate_of(loss: ELBO) -> str | None:
    """How ``loss`` estimates its KL term: its ``kl_estimate`` attribute if it declares one, else
    ``"analytic"`` for Pyro's ``TraceMeanField_ELBO``, ``"sample"`` for its ``Trace_ELBO`` and
    None (no separate KL term) for any other loss."""
    if has(loss, DeclaresKL):
        return loss.kl_estimate
    if isinstance(loss, TraceMeanField_ELBO):
        return "analytic"
    return "sample" if isinstance(loss, Trace_ELBO) else None


def _per_dim(d: Distribution, site: str, role: str) -> Distribution:
    if isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1:
        return d.base_dist
    raise ObjectiveError(
        f"free bits per latent dimension need the {role} at site '{site}' to factorize over one "
        f"event dimension (e.g. Normal(...).to_event(1)), got {describe(d)}; set "
        f"objective.options.free_bits_group = 'site' for one floor per latent site."
    )


class FreeBits(ParticleObjective):
    """Wraps an ELBO: the same objective with ``free_bits`` nats per group of its KL.

    Args:
        base: an objective with a separate KL term (``kl_estimate_of(base)`` is not None).
        free_bits: the floor lambda, in nats, >= 0.
        group: ``"dim"`` (one floor per latent dimension) or ``"site"`` (per latent site).
    """

    def __init__(self, base: ELBO, free_bits: float = 0.0, group: str = "dim"):
        if isinstance(base, KLWarmup | FreeBits):
            raise ObjectiveError(
                f"free bits wrap the objective itself, not a {type(base).__name__}: put the KL "
                f"warm-up outside, KLWarmup(FreeBits(elbo, free_bits), warmup_epochs)."
            )
        kl = kl_estimate_of(base)
        if kl is None:
            raise ObjectiveError(
                f"free bits floor the KL term of an ELBO; {type(base).__name__} has no separate "
                f"KL term."
            )
        if not free_bits >= 0:
            raise ObjectiveError(f"free_bits must be >= 0 nats, got {free_bits!r}.")
        if kl not in KL_ESTIMATES or group not in GROUPS:
            raise ObjectiveError(
                f"kl must be one of {KL_ESTIMATES} and free_bits_group one of {GROUPS}, got "
                f"{kl!r} and {group!r}."
            )
        super().__init__(base.num_particles)
        self.base, self.free_bits, self.kl, self.group = base, float(free_bits), kl, group
        self.detach_guide = kl == "stl"
        self.last_kl: dict[str, torch.Tensor] = {}  # batch-mean KL per group at the last step

    def begin_epoch(self, epoch: int) -> dict[str, float]:
        """Logs the floor with each epoch's metrics (and what the base loss logs)."""
        base = self.base.begin_epoch(epoch) if has(self.base, BeginsEpoch) else None
        return {**(base or {}), "free_bits": self.free_bits}

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


class FreeBitsELBO(FreeBits):
    """``FreeBits`` over the ELBO with ``num_particles`` particles whose KL estimate is ``kl``
    (the constructor of ppl_vae 0.1)."""

    def __init__(
        self, num_particles: int = 1, free_bits: float = 0.0, kl: str = "sample", group: str = "dim"
    ):
        pyro_args = {"num_particles": num_particles, "vectorize_particles": num_particles > 1}
        bases = {
            "sample": lambda: Trace_ELBO(**pyro_args),
            "analytic": lambda: AnalyticKL_ELBO(**pyro_args),
            "stl": lambda: STL_ELBO(num_particles),
        }
        if kl not in bases:
            raise ObjectiveError(f"kl must be one of {KL_ESTIMATES}, got {kl!r}.")
        super().__init__(bases[kl](), free_bits, group)
