"""Bernoulli pixels as one event, whose log density is a fused pass over the logits.

``log p(x | l) = x l - softplus(l)``. PyTorch computes it through
``binary_cross_entropy_with_logits``, whose CPU kernel evaluates ``log1p`` element by element
(about ten times the cost of ``exp``), and autograd then keeps its intermediates. Here

    softplus(l) = max(l, 0) + log1p(exp(-|l|)) = max(l, 0) - log sigmoid(|l|),

which needs only the vectorised ``sigmoid`` and ``log``, and the gradient ``x - sigmoid(l)`` is
written out by hand, so a backward pass costs one sigmoid. ``IndependentBernoulli`` sums over
the pixels inside the kernel, without writing the per-pixel values: ``sum log sigmoid(|l|)`` is
taken as the log of products of 16 factors (each in [1/2, 1), so nothing underflows), which
needs 16 times fewer logarithms. Values agree with ``torch.distributions.Bernoulli`` to float
rounding (tested against float64).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch.distributions.utils import broadcast_all

GROUP = 16  # factors per product in the summed kernel: 2^-16 <= product <= 1


def _group(d: int, dtype: torch.dtype) -> int:
    """The largest of 16, 8, 4, 2, 1 that divides ``d`` pixels; 1 (a log per pixel) for the
    half-precision types, whose few mantissa bits a product of 16 factors would spend."""
    if dtype not in (torch.float32, torch.float64):
        return 1
    return next(g for g in (GROUP, 8, 4, 2, 1) if d % g == 0)


class _BernoulliLogProbSum(torch.autograd.Function):
    """``sum_d x_d l_d - softplus(l_d)`` over the last dimension, with a hand-written gradient."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        d = logits.shape[-1]
        tmp = torch.clamp_min(logits, 0)
        out = tmp.addcmul_(x, logits, value=-1).sum(-1).neg_()  # sum of x l - max(l, 0)
        torch.abs(logits, out=tmp).sigmoid_()  # in [1/2, 1)
        g = _group(d, logits.dtype)
        out.add_(tmp.view(*tmp.shape[:-1], d // g, g).prod(-1).log_().sum(-1))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        """d/dl = x - sigmoid(l) and d/dx = l per pixel, times the sum's gradient."""
        logits, x = ctx.saved_tensors
        grad = grad.unsqueeze(-1)
        grad_logits = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_logits = (grad * (x - torch.sigmoid(logits))).sum_to_size(logits.shape)
        if ctx.needs_input_grad[1]:
            grad_x = (grad * logits).sum_to_size(x.shape)
        return grad_logits, grad_x


def bernoulli_log_prob_sum(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log Bernoulli(x | sigmoid(logits))`` summed over the last dimension."""
    logits, x = broadcast_all(logits, x)
    return _BernoulliLogProbSum.apply(logits.contiguous(), x)


class IndependentBernoulli(dist.Independent):
    """Bernoulli pixels as one event (``Bernoulli(logits=logits).to_event(1)``) whose
    ``log_prob`` sums over the pixels in the fused kernel above."""

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        super().__init__(dist.Bernoulli(logits=logits), 1, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(IndependentBernoulli, _instance)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return bernoulli_log_prob_sum(self.base_dist.logits, value)
