"""The annealing target of one chunk of data points: log p(x, z) and the start density log s(z)
with their gradients in z, from Pyro traces, vectorized over chains x data points.

The latent sites of the model (any number, each ``[C, N, *shape]`` under the particle plate and
``pyro.plate("data", N)``) are packed into one tensor ``z[C, N, D]`` so that the HMC kernel
works on plain tensors. The start density s is the guide q(z|x) (``start="q"``) or the model's
prior p(z) (``start="prior"``); both are read from traces, the model conditioned on ``z``
(``poutine.condition``) and the guide conditioned on it too, so that a guide whose later sites
depend on earlier ones (a hierarchical guide) is scored correctly. Where they can be, both are
read without traces: q(z|x) from ``guide.distribution(x)`` (built once) and log p(x, z) from
``model.log_joint(x, z)`` (checked against the trace on each chunk's first draws).

References: Neal (2001), Annealed Importance Sampling; Wu, Burda, Salakhutdinov & Grosse (2017),
On the Quantitative Analysis of Decoder-Based Generative Models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyro.poutine as poutine
import torch
from torch.distributions import Normal, constraints

from ..core.contract import EncoderDistribution, JointDensity, has
from ..core.errors import SiteError
from ..core.tracing import (
    is_latent,
    is_scored,
    particle_plate,
    site_log_prob,
    trace_particles,
)

START = ("q", "prior")


@dataclass
class State:
    """A point of every chain: ``z[C, N, D]``, log p(x, z) and log s(z) ``[C, N]`` and their
    gradients in z ``[C, N, D]`` (all in the model's dtype)."""

    z: torch.Tensor
    log_p: torch.Tensor
    log_s: torch.Tensor
    grad_p: torch.Tensor
    grad_s: torch.Tensor

    def select(self, mask: torch.Tensor, other: State) -> State:
        """This state where ``mask[C, N]`` is False, ``other`` where it is True."""
        m = mask.unsqueeze(-1)
        return State(
            torch.where(m, other.z, self.z),
            torch.where(mask, other.log_p, self.log_p),
            torch.where(mask, other.log_s, self.log_s),
            torch.where(m, other.grad_p, self.grad_p),
            torch.where(m, other.grad_s, self.grad_s),
        )


def _real_support(site: dict) -> bool:
    support = site["fn"].support
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return support is constraints.real


def check_latent(site: dict) -> None:
    """Raises SiteError unless the site is a continuous latent on the whole real line."""
    name, fn = site["name"], site["fn"]
    if fn.support.is_discrete:
        raise SiteError(
            f"latent site '{name}' is discrete ({type(fn).__name__}); AIS with HMC moves "
            f"continuous latents only: sum the discrete site out in the model (enumerate it by "
            f"hand) or evaluate this model with IWAE."
        )
    if not _real_support(site):
        raise SiteError(
            f"latent site '{name}' has support {fn.support}, not the real line; HMC moves "
            f"latents on R^d: sample an unconstrained variable and transform it in the model."
        )


class Target:
    """log p(x, z) and log s(z) of ``x[N]`` for ``num_chains`` chains, with gradients in z."""

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        x: torch.Tensor,
        num_chains: int,
        plates: int,
        start: str = "q",
    ):
        self.model, self.guide, self.x = model, guide, x
        self.plate = particle_plate(num_chains, plates)
        self.plates, self.start = plates, start
        self.shapes: dict[str, torch.Size] = {}
        self.q = None  # a guide's q(z|x) that does not depend on other latents: built once
        self.direct = False  # log p(x, z) from model.log_joint, checked against the trace
        self.q_score = None  # d log q / dz of a diagonal Normal q, without a backward pass

    def initial(self) -> State:
        """Draws z from the start density for every chain and point, and scores it."""
        with torch.no_grad():
            if self.start == "q":
                t = trace_particles(
                    self.model, self.guide, self.plate.size, self.plates, (self.x,), {}
                )
                values, trace = t.values, t.model_trace
            else:
                trace = poutine.trace(self.plate(self.model)).get_trace(self.x)
                values = {n: s["value"] for n, s in trace.nodes.items() if is_latent(s)}
        for name, site in trace.nodes.items():
            if is_latent(site):
                check_latent(site)
                if name not in values:
                    raise SiteError(
                        f"model site '{name}' is latent but the guide does not sample it."
                    )
        if not values:
            raise SiteError("the model has no latent site: log p(x) needs no estimate.")
        c, n = self.plate.size, self.x.shape[0]
        for name, v in values.items():
            if v.dim() < 2 or v.shape[0] != c or v.shape[1] != n:
                raise SiteError(
                    f"latent site '{name}' has shape {list(v.shape)}; AIS needs [chains, N, ...] "
                    f"with pyro.plate('data', N) as the outermost plate."
                )
            self.shapes[name] = v.shape[2:]
        self.dtype = next(iter(values.values())).dtype
        self._fixed_q(values)
        self._direct_joint(values)
        return self.score(self.pack(values))

    def _fixed_q(self, values: dict) -> None:
        # One latent site and a guide with distribution(x) (the toolkit's amortized guides):
        # q(z|x) depends on x alone, so the encoder runs once instead of at every leapfrog step.
        if self.start == "q" and list(values) == ["z"] and has(self.guide, EncoderDistribution):
            with torch.no_grad():
                self.q = self.guide.distribution(self.x)
            base = getattr(self.q, "base_dist", None)
            if isinstance(base, Normal) and self.q.reinterpreted_batch_ndims == 1:
                loc, var = base.loc, base.scale**2  # its score in z, in closed form
                self.q_score = lambda z: -(z - loc) / var

    def _direct_joint(self, values: dict) -> None:
        # One latent site and a model with log_joint(x, z) (the toolkit's VAE): every leapfrog
        # step scores it without a trace of the model, once it matched the trace here.
        if list(values) != ["z"] or not has(self.model, JointDensity):
            return
        with torch.no_grad():
            traced = self._traced_joint(values)
            direct = self.model.log_joint(self.x, values["z"])
        shape = values["z"].shape[:2]
        self.direct = all(
            d.shape == shape and torch.allclose(d, t.expand(shape), rtol=1e-6, atol=1e-6)
            for d, t in zip(direct, traced, strict=True)
        )

    def pack(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        c, n = self.plate.size, self.x.shape[0]
        return torch.cat([values[k].reshape(c, n, -1) for k in self.shapes], -1)

    def unpack(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [math.prod(s) for s in self.shapes.values()]
        parts = torch.split(z, sizes, -1)
        return {
            k: p.reshape(*z.shape[:2], *s)
            for (k, s), p in zip(self.shapes.items(), parts, strict=True)
        }

    def _log_joint(self, values: dict) -> tuple[torch.Tensor, torch.Tensor]:
        if self.direct:
            return self.model.log_joint(self.x, values["z"])
        return self._traced_joint(values)

    def _traced_joint(self, values: dict) -> tuple[torch.Tensor, torch.Tensor]:
        tr = poutine.trace(poutine.condition(self.plate(self.model), data=values)).get_trace(self.x)
        log_p, log_prior = 0.0, 0.0
        for site in tr.nodes.values():
            if is_scored(site):
                lp = site_log_prob(site, self.plates, scaled=False)
                log_p = log_p + lp
                if site["name"] in values:  # conditioned latents read as observed
                    log_prior = log_prior + lp
        return log_p, log_prior

    def _log_q(self, values: dict) -> torch.Tensor:
        if self.q is not None:
            return self.q.log_prob(values["z"])
        tr = poutine.trace(poutine.condition(self.plate(self.guide), data=values)).get_trace(self.x)
        log_q = 0.0
        for name in values:
            log_q = log_q + site_log_prob(tr.nodes[name], self.plates, scaled=False)
        return log_q

    def score(self, z: torch.Tensor) -> State:
        """log p(x, z), log s(z) and their gradients at ``z[C, N, D]``."""
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            values = self.unpack(z)
            log_p, log_prior = self._log_joint(values)
            log_s = log_prior if self.start == "prior" else self._log_q(values)
            shape = z.shape[:2]
            log_p, log_s = log_p.expand(shape), log_s.expand(shape)
            grad_p = _grad(log_p, z, "the model")
            if self.q_score is not None:
                grad_s = self.q_score(z.detach())
            else:
                grad_s = _grad(log_s, z, "the start")
        return State(z.detach(), log_p.detach(), log_s.detach(), grad_p, grad_s)


def _grad(f: torch.Tensor, z: torch.Tensor, what: str) -> torch.Tensor:
    g = None
    if f.requires_grad:
        (g,) = torch.autograd.grad(f.sum(), z, retain_graph=True, allow_unused=True)
    if g is None:
        raise SiteError(
            f"the log density of {what} cannot be differentiated in the latents (it detaches "
            f"them or uses a non-differentiable operation); HMC needs gradients in z."
        )
    return g
