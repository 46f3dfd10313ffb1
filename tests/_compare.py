"""Comparisons the suite makes in several files: bit-for-bit equality of nested results, and
one step's loss value and parameter gradients at a fixed seed."""

from __future__ import annotations

import pyro
import torch


def assert_same(a, b, path="checkpoint"):
    """Recursive bit-for-bit equality; wall-clock ``seconds`` are the only values allowed to
    differ."""
    assert type(a) is type(b), path
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        keys = set(a) - {"seconds"}
        assert keys == set(b) - {"seconds"}, path
        for k in keys:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same(u, v, f"{path}[{i}]")
    else:
        assert a == b, path


def step(loss, model, guide, x, seed):
    """Loss value and every parameter gradient of one step at ``seed`` (after the warm-up call
    in which Pyro guesses the plate nesting, which draws from the RNG)."""
    pyro.set_rng_seed(0)
    loss.loss(model, guide, x)
    pyro.set_rng_seed(seed)
    value = loss.loss_and_grads(model, guide, x)
    grads = {}
    for prefix, module in (("model", model), ("guide", guide)):
        for name, p in module.named_parameters():
            grads[f"{prefix}.{name}"] = p.grad.clone()
            p.grad = None
    return value, grads
