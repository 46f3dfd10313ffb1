"""A Bernoulli distribution whose log density is one fused pass over the logits.

``log p(x | l) = x l - softplus(l)``. PyTorch computes it through
``binary_cross_entropy_with_logits``, whose CPU kernel evaluates ``log1p`` element by element
(about ten times the cost of ``exp``), and autograd then keeps its intermediates. Here

    softplus(l) = max(l, 0) + log1p(exp(-|l|)),

with ``log1p(e)`` computed as ``log(u) - ((u - 1) - e) / u`` for ``u = 1 + e`` (exact to
rounding, vectorised ``exp`` and ``log`` only), and the gradient ``x - sigmoid(l)`` is written
out by hand, so a backward pass costs one sigmoid. Values agree with
``torch.distributions.Bernoulli`` to float rounding (tested).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.distributions.utils import broadcast_all


class _BernoulliLogProb(torch.autograd.Function):
    """``x * l - softplus(l)``, elementwise, with a hand-written gradient."""

    @staticmethod
    def forward(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        e = logits.abs().neg_().exp_()  # exp(-|l|) in (0, 1]
        u = e + 1
        log1p = u.log().sub_(((u - 1).sub_(e)).div_(u))  # log1p(e), corrected for rounding
        out = torch.mul(x, logits)
        out.sub_(logits.clamp_min(0)).sub_(log1p)
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, x = ctx.saved_tensors
        grad_logits = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_logits = (grad * (x - torch.sigmoid(logits))).sum_to_size(logits.shape)
        if ctx.needs_input_grad[1]:
            grad_x = (grad * logits).sum_to_size(x.shape)
        return grad_logits, grad_x


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log Bernoulli(x | sigmoid(logits))`` elementwise, broadcasting the two."""
    return _BernoulliLogProb.apply(logits, x)


class BernoulliLogits(dist.Bernoulli):
    """``pyro.distributions.Bernoulli(logits=...)`` with the fused ``log_prob`` above."""

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        super().__init__(logits=logits, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(BernoulliLogits, _instance)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return bernoulli_log_prob(logits, value)
