"""The base of the objectives written here (STL, DReG, MIWAE, free bits): a Pyro ``ELBO`` over
one vectorized draw of P particles.

``tracing.trace_particles`` traces the guide under the particle plate and replays the model;
``Particles`` reduces each site's log density to ``[P, N]``, so an objective is a function of
log p(x|z), log p(z) and log q(z|x) per particle and data point. Two things Pyro's losses do
not offer are added:

- ``log q(z|x)`` evaluated with the guide's parameters detached while ``z`` keeps its
  reparameterized path to them (for STL and DReG): the guide is run a second time through
  ``torch.func.functional_call`` with detached parameters (``pyro.param`` values detached too),
  replaying the latent values;
- a hook on each latent value through which DReG rescales, particle by particle, the gradient
  that flows back into the guide.

Values carry Pyro's site scales, so the KL warm-up (which scales latent sites) applies to them.

References: Roeder, Wu & Duvenaud (2017), Sticking the Landing; Tucker, Lawson, Gu & Maddison
(2019), Doubly Reparameterized Gradient Estimators for Monte Carlo Objectives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pyro.poutine as poutine
import torch
from pyro.infer import ELBO
from pyro.poutine.messenger import Messenger
from pyro.poutine.trace_struct import Trace
from torch.func import functional_call

from ..core.errors import ObjectiveError
from ..core.tracing import (
    DATA_PLATE,
    log_weight,
    particle_plate,
    per_point,
    settle_plate_nesting,
    site_log_prob,
    trace_particles,
)


class _DetachParams(Messenger):
    """Detaches the value of every ``pyro.param`` statement (PyroParams read the param store)."""

    def _postprocess_message(self, msg) -> None:
        if msg["type"] == "param" and isinstance(msg["value"], torch.Tensor):
            msg["value"] = msg["value"].detach()


def detached(guide: Callable) -> Callable:
    """The guide with every parameter detached: same values, no gradient reaches them."""
    if not isinstance(guide, torch.nn.Module):
        raise ObjectiveError(
            f"STL and DReG need a guide that is a torch.nn.Module (e.g. a PyroModule) so that "
            f"its parameters can be detached; got {type(guide).__name__}."
        )
    params = {name: p.detach() for name, p in guide.named_parameters()}

    def run(*args, **kwargs):
        with warnings.catch_warnings(), _DetachParams():
            # pyro.module() warns that detached tensors are not registered: they must not be.
            warnings.filterwarnings("ignore", ".*was not registered in the param store")
            return functional_call(guide, params, args, kwargs, strict=False)

    return run


@dataclass
class Particles:
    """One vectorized draw of P particles: the model and guide traces and their log densities.

    ``q_trace`` holds the guide distributions used for log q: the guide's own trace, or its
    re-run with detached parameters. ``values`` are the latent values the model was run on.
    """

    model_trace: Trace
    q_trace: Trace
    values: dict[str, torch.Tensor]
    num_particles: int
    plates: int

    def reduce(self, t: torch.Tensor, site: dict, keep: int = 0) -> torch.Tensor:
        """Sums ``t`` (batch dims + ``keep`` trailing dims) to ``[P, N, *kept]``."""
        return per_point(t, site, self.plates, keep)

    def _sum(self, trace: Trace, names, values=None) -> torch.Tensor:
        total = 0.0
        for name in names:
            v = None if values is None else values[name]
            total = total + site_log_prob(trace.nodes[name], self.plates, v)
        return total

    @property
    def latents(self) -> list[str]:
        return list(self.values)

    def log_lik(self) -> torch.Tensor:
        """log p(x|z) of the observed sites, ``[P, N]``."""
        tr = self.model_trace
        obs = [n for n, s in tr.nodes.items() if s["type"] == "sample" and s["is_observed"]]
        return self._sum(tr, obs)

    def log_prior(self) -> torch.Tensor:
        """log p(z) of the latent sites (times their scale), ``[P, N]``."""
        return self._sum(self.model_trace, self.latents)

    def log_q(self) -> torch.Tensor:
        """log q(z|x) (times the latent scale), ``[P, N]``."""
        return self._sum(self.q_trace, self.latents, self.values)

    def log_w(self) -> torch.Tensor:
        """log w = log p(x|z) + log p(z) - log q(z|x), ``[P, N]``."""
        return log_weight(self.model_trace, self.q_trace, self.values, self.plates)

    def latent_scale(self) -> float:
        """The scale that all latent sites share (the KL weight; 1 without warm-up)."""
        scales = {float(self.q_trace.nodes[n]["scale"]) for n in self.latents}
        scales |= {float(self.model_trace.nodes[n]["scale"]) for n in self.latents}
        if len(scales) != 1:
            raise ObjectiveError(f"latent sites carry different scales {sorted(scales)}.")
        return scales.pop()

    def scale_guide_gradient(self, factor: torch.Tensor) -> None:
        """Multiplies the gradient reaching each latent value by ``factor[P, N]``."""
        for name, v in self.values.items():
            if not v.requires_grad:
                continue
            site = self.q_trace.nodes[name]
            event = v.dim() - (self.plates + 1)
            data_dim = next(f.dim for f in site["cond_indep_stack"] if f.name == DATA_PLATE)
            shape = [factor.shape[0]] + [1] * self.plates + [1] * event
            shape[self.plates + 1 + data_dim] = factor.shape[1]
            f = factor.detach().reshape(shape)
            v.register_hook(lambda g, f=f: g * f)


class ParticleObjective(ELBO):
    """Base class: a Pyro ``ELBO`` whose subclasses define ``_objective(particles)``.

    ``_objective`` returns ``(value, surrogate)``: the objective summed over the batch (a bound
    on log p(x), in nats) and a tensor whose gradient is the estimator's gradient of it.

    Args:
        num_particles: particles per data point, drawn in one vectorized pass.

    Class attributes:
        detach_guide: evaluate log q with the guide's parameters detached (STL, DReG).
        clone_latents: hand the model copies of the latent values, to hook their gradient.
        kl_estimate: how the objective estimates a separate KL term, for free bits
            (``"sample"``, ``"analytic"``, ``"stl"``), or None where it has none.
    """

    detach_guide = False
    clone_latents = False
    kl_estimate: str | None = None

    def __init__(self, num_particles: int = 1):
        super().__init__(num_particles=num_particles, vectorize_particles=True)

    def _get_trace(self, model, guide, args, kwargs):
        raise NotImplementedError("ParticleObjective draws all particles in particles().")

    def particles(self, model: Callable, guide: Callable, args, kwargs) -> Particles:
        """Traces the guide under a particle plate and replays the model on its latents."""
        settle_plate_nesting(self, model, guide, *args, **kwargs)
        plates = self.max_plate_nesting - (1 if self.num_particles > 1 else 0)
        t = trace_particles(
            model, guide, self.num_particles, plates, args, kwargs, self.clone_latents
        )
        for name in t.values:
            fn = t.guide_trace.nodes[name]["fn"]
            if not fn.has_rsample:
                raise ObjectiveError(
                    f"{type(self).__name__} needs reparameterized guide sites; site '{name}' "
                    f"draws from {type(fn).__name__}, which has no rsample."
                )
        q_tr = t.guide_trace
        if self.detach_guide:
            run = poutine.replay(detached(guide), trace=t.guide_trace)
            run = poutine.block(run, hide_types=["param"])  # keep SVI from collecting copies
            q_tr = poutine.trace(particle_plate(self.num_particles, plates)(run)).get_trace(
                *args, **kwargs
            )
        return Particles(t.model_trace, q_tr, t.values, self.num_particles, plates)

    def _objective(self, p: Particles) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model, guide, *args, **kwargs) -> float:
        """The negative objective, summed over the batch (no gradients)."""
        with torch.no_grad():
            value, _ = self._objective(self.particles(model, guide, args, kwargs))
        return -value.item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """The negative objective; backpropagates the estimator's gradient into the params."""
        value, surrogate = self._objective(self.particles(model, guide, args, kwargs))
        if surrogate.requires_grad:
            (-surrogate).backward()
        return -value.item()

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """A tensor equal to the negative objective whose gradient is the estimator's."""
        value, surrogate = self._objective(self.particles(model, guide, args, kwargs))
        return -(value.detach() + surrogate - surrogate.detach())
