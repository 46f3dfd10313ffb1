"""One torch optimizer over every parameter SVI steps, behind Pyro's optimizer interface.

``pyro.optim.PyroOptim`` keeps one torch optimizer per parameter and calls each in turn, so a
step pays the optimizer's per-call overhead once per parameter tensor, and it replaces every
gradient with a fresh tensor of zeros afterwards. ``JointOptim`` keeps a single torch optimizer
(a fused Adam, one kernel per tensor, where torch has one) and drops the gradients instead, as
``optimizer.zero_grad()`` does. Its state is saved and loaded in ``PyroOptim``'s format (one
single-parameter state dict per param-store name), so checkpoints written by either load into
either, and resumes stay exact. ``AllReduceOptim`` sums the gradients over the ranks of a
data-parallel run first; ``adam(lr, world)`` gives whichever of the two the run needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyro
import torch
from pyro.optim import PyroOptim

from ..distributed import SINGLE, World, all_reduce_sum


class JointOptim(PyroOptim):
    """A ``PyroOptim`` that steps all parameters with one torch optimizer.

    Args:
        optim_constructor: a ``torch.optim.Optimizer`` class, e.g. ``torch.optim.Adam``.
        optim_args: its keyword arguments, the same for every parameter (a dict; per-parameter
            callables are ``PyroOptim``'s job).
        fused: ask for torch's fused implementation when every parameter is a floating-point
            tensor on the CPU or a CUDA GPU; otherwise the optimizer's default is used.
    """

    def __init__(self, optim_constructor, optim_args: dict, fused: bool = True):
        if not isinstance(optim_args, dict):
            raise TypeError(
                "JointOptim takes one dict of optimizer arguments for all parameters; for "
                "per-parameter arguments use pyro.optim.PyroOptim."
            )
        super().__init__(optim_constructor, optim_args)
        self.fused = fused
        self.optimizer: torch.optim.Optimizer | None = None
        self._params: frozenset[torch.Tensor] = frozenset()
        # set_state()'s single-parameter state dicts, by param-store name, for parameters not
        # stepped yet: SVI creates parameters on its first step, after a resume loads the state
        self._pending: dict[str, dict[str, Any]] = {}

    def __call__(self, params: Iterable[torch.Tensor], *args, **kwargs) -> None:
        params = params if isinstance(params, frozenset | set) else set(params)
        if params != self._params:
            self._rebuild(params)
        self.optimizer.step(*args, **kwargs)
        self.optimizer.zero_grad(set_to_none=True)  # SVI's zero_grads then has nothing to do

    def _rebuild(self, params: set[torch.Tensor]) -> None:
        """A new torch optimizer over ``params`` that keeps the state of those already seen."""
        old = self.optimizer.state if self.optimizer is not None else {}
        store = pyro.get_param_store()
        ordered = sorted(params, key=store.param_name)  # the same order in every process
        self.optimizer = self._construct(ordered)
        for p in ordered:
            waiting = self._pending.pop(store.param_name(p), None)
            if waiting is not None:
                single = self._construct([p])
                single.load_state_dict(waiting)  # casts the state to p's device and dtype
                self.optimizer.state[p] = single.state[p]
            elif p in old:
                self.optimizer.state[p] = old[p]
        self.optim_objs = {p: self.optimizer for p in ordered}
        self._params = frozenset(params)

    def _construct(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        args = dict(self.pt_optim_args)
        if self.fused and _fusable(params):
            args.setdefault("fused", True)
        return self.pt_optim_constructor(params, **args)

    def get_state(self) -> dict:
        """``{param name: single-parameter optimizer state dict}``, as ``PyroOptim`` saves."""
        if self.optimizer is None:
            return {}
        store = pyro.get_param_store()
        state = {}
        for p in self._params:
            single = self._construct([p])
            if p in self.optimizer.state:
                single.state[p] = self.optimizer.state[p]
            state[store.param_name(p)] = single.state_dict()
        return state

    def set_state(self, state_dict: dict) -> None:
        """Loads ``get_state()``'s output (also ``PyroOptim``'s) for the parameters it names."""
        self._pending.update(state_dict)
        if self.optimizer is not None:  # parameters already stepped take their state now
            self._rebuild(set(self._params))


def _fusable(params: list[torch.Tensor]) -> bool:
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def adam(
    lr: float,
    world: World = SINGLE,
    constructor: type[torch.optim.Optimizer] = torch.optim.Adam,
    **kwargs: Any,
) -> JointOptim:
    """Adam over all parameters at once (fused where torch supports it); in a data-parallel
    ``world``, an ``AllReduceOptim`` that sums the gradients over the ranks before each step.
    ``constructor`` may name another torch optimizer class (``training.optimizers.OPTIMIZERS``);
    ``kwargs`` are its options."""
    args = {"lr": lr, **kwargs}
    fused = constructor is torch.optim.Adam  # other classes may have no fused kernel
    if world.active:
        return AllReduceOptim(constructor, args, world, fused)
    return JointOptim(constructor, args, fused)


class AllReduceOptim(JointOptim):
    """A Pyro optimiser that sums gradients over the ranks, then steps every parameter."""

    def __init__(self, optim_constructor, optim_args: dict, world: World, fused: bool = True):
        super().__init__(optim_constructor, optim_args, fused)
        self.world = world

    def __call__(self, params: Iterable[torch.Tensor], *args, **kwargs) -> None:
        store = pyro.get_param_store()
        # SVI passes a set, whose order differs between processes; names are the same.
        params = sorted(params, key=store.param_name)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = all_reduce_sum(torch.cat([g.reshape(-1) for g in grads]), self.world)
        for p, g in zip(params, flat.split([g.numel() for g in grads]), strict=True):
            p.grad = g.view_as(p).clone()
        super().__call__(params, *args, **kwargs)
