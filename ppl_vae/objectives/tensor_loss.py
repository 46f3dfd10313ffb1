"""Each objective's loss as two tensors, for the replayed SVI step (``training.replay``).

``tensor_loss(objective, model, guide, args, kwargs)`` returns a ``TensorLoss``: the gradient of
its ``surrogate`` is the gradient the objective's ``loss_and_grads`` backpropagates, and
``value()`` is the float it returns. Pyro's losses read their terms back to Python with
``.item()`` as they go, which a traced plan cannot do; here the terms stay tensors (the plan's
outputs), and ``combine`` adds them up after the plan has run, in Python floats and in Pyro's
order, so the loss too is the eager path's to the last bit.

``TENSOR_LOSSES`` maps an objective class to its function (looked up along the class's MRO, so
a subclass shares its base's entry unless it has its own). An objective without an entry, or
one whose guide has a site without a reparameterized sampler (a score-function term), raises
``NoTensorLoss``: the replayed step then steps that objective eagerly, with Pyro's own code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer import ELBO, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.util import get_dependent_plate_dims, torch_sum
from torch.distributions import kl_divergence

from .annealing import KLWarmup
from .base import ParticleObjective


@dataclass
class TensorLoss:
    """``surrogate``: the tensor to differentiate; ``terms``: the tensors the loss is made of;
    ``combine``: their floats -> the loss, as the objective's own ``loss_and_grads`` adds them."""

    surrogate: torch.Tensor
    terms: list[torch.Tensor]
    combine: Callable[[list[float]], float]

    def value(self) -> float:
        return self.combine([float(t) for t in self.terms])


def _negated(values: list[float]) -> float:
    return -values[0]


class NoTensorLoss(NotImplementedError):
    """This objective (or this guide under it) has no tensor loss: step it eagerly."""


def _samples(trace):
    return [(n, s) for n, s in trace.nodes.items() if s["type"] == "sample"]


def _reparameterized(site: dict, name: str) -> torch.Tensor:
    """The site's entropy term; refuses a score-function term (Pyro's own code handles it)."""
    _, score_function, entropy = site["score_parts"]
    if not is_identically_zero(score_function):
        raise NoTensorLoss(f"guide site '{name}' has no reparameterized sampler")
    return entropy


def _trace_elbo(obj: Trace_ELBO, model, guide, args, kwargs) -> TensorLoss:
    """``Trace_ELBO.loss_and_grads``: log p - log q per particle, over num_particles."""
    surrogate, terms, signs = 0.0, [], []
    for model_trace, guide_trace in obj._get_traces(model, guide, args, kwargs):
        surr = 0.0
        particle = []
        for _, site in _samples(model_trace):
            particle.append(1)
            terms.append(site["log_prob_sum"])
            surr = surr + site["log_prob_sum"]
        for name, site in _samples(guide_trace):
            entropy = _reparameterized(site, name)
            particle.append(-1)
            terms.append(site["log_prob_sum"])
            if not is_identically_zero(entropy):
                surr = surr - entropy.sum()
        signs.append(particle)
        surrogate = surrogate + (-surr) / obj.num_particles

    def combine(values: list[float]) -> float:
        loss, it = 0.0, iter(values)
        for particle in signs:
            elbo = 0
            for sign in particle:
                elbo = elbo + next(it) if sign > 0 else elbo - next(it)
            loss += -elbo / obj.num_particles
        return loss

    return TensorLoss(surrogate, terms, combine)


def _mean_field_elbo(obj: TraceMeanField_ELBO, model, guide, args, kwargs) -> TensorLoss:
    """``TraceMeanField_ELBO``: log p(x|z) - KL(q || p), the KL in closed form where it has one."""
    surrogate, terms = 0.0, []
    for model_trace, guide_trace in obj._get_traces(model, guide, args, kwargs):
        elbo = 0.0
        for name, site in _samples(model_trace):
            if site["is_observed"]:
                elbo = elbo + site["log_prob_sum"]
                continue
            q = guide_trace.nodes[name]
            _reparameterized(q, name)
            try:
                kl = kl_divergence(q["fn"], site["fn"])
            except NotImplementedError:
                elbo = elbo + site["log_prob_sum"] - q["score_parts"].entropy_term.sum()
                continue
            kl = scale_and_mask(kl, scale=q["scale"], mask=q["mask"])
            elbo = elbo - (
                kl.sum() if torch.is_tensor(kl) else kl * torch.Size(q["fn"].batch_shape).numel()
            )
        for name, q in _samples(guide_trace):  # auxiliary guide sites
            if name not in model_trace.nodes:
                elbo = elbo - _reparameterized(q, name).sum()
        terms.append(elbo)
        surrogate = surrogate + (-elbo) / obj.num_particles

    def combine(values: list[float]) -> float:
        loss = 0.0
        for elbo in values:
            loss += -elbo / obj.num_particles
        return loss

    return TensorLoss(surrogate, terms, combine)


def _renyi_elbo(obj: RenyiELBO, model, guide, args, kwargs) -> TensorLoss:
    """``RenyiELBO.loss_and_grads``: the log mean weight of order alpha (alpha = 0: IWAE)."""
    values, surrogates = [], []
    for model_trace, guide_trace in obj._get_traces(model, guide, args, kwargs):
        dims = get_dependent_plate_dims(model_trace.nodes.values())
        value = surr = 0.0
        for _, site in _samples(model_trace):
            lp = torch_sum(site["log_prob"], dims)
            value, surr = value + lp.detach(), surr + lp
        for name, site in _samples(guide_trace):
            entropy = _reparameterized(site, name)
            lp = torch_sum(site["log_prob"], dims)
            value = value - lp.detach()
            if not is_identically_zero(entropy):
                surr = surr - lp
        values.append(value)
        surrogates.append(surr)
    if obj.vectorize_particles and obj.num_particles > 1:
        value, surr = values[0], surrogates[0]
    else:
        value, surr = torch.stack(values), torch.stack(surrogates)
    log_w = (1.0 - obj.alpha) * value
    log_mean = torch.logsumexp(log_w, dim=0, keepdim=True) - math.log(obj.num_particles)
    weights = (log_w - log_mean).exp()
    surrogate = -(weights * surr).sum() / obj.num_particles
    return TensorLoss(surrogate, [log_mean.sum()], lambda v: -(v[0] / (1.0 - obj.alpha)))


def _particles(obj: ParticleObjective, model, guide, args, kwargs) -> TensorLoss:
    """The objectives written here (STL, DReG, MIWAE, PIWAE, CIWAE, free bits)."""
    value, surrogate = obj._objective(obj.particles(model, guide, args, kwargs))
    return TensorLoss(-surrogate, [value], _negated)


def _kl_warmup(obj: KLWarmup, model, guide, args, kwargs) -> TensorLoss:
    """The base loss with its latent sites weighted by this epoch's KL weight."""
    return obj._run(tensor_loss, obj.base, model, guide, args, kwargs)


TENSOR_LOSSES: dict[type, Callable[..., TensorLoss]] = {
    Trace_ELBO: _trace_elbo,
    TraceMeanField_ELBO: _mean_field_elbo,
    RenyiELBO: _renyi_elbo,
    ParticleObjective: _particles,
    KLWarmup: _kl_warmup,
}


def tensor_loss(objective: ELBO, model, guide, args: tuple, kwargs: dict) -> TensorLoss:
    """``objective``'s loss on one batch, as tensors (see the module)."""
    for cls in type(objective).__mro__:
        fn = TENSOR_LOSSES.get(cls)
        if fn is None:
            continue
        if type(objective).loss_and_grads is not cls.loss_and_grads:
            break  # a subclass with a loss of its own: its entry is not this one
        return fn(objective, model, guide, args, kwargs)
    raise NoTensorLoss(f"{type(objective).__name__} has no tensor loss")
