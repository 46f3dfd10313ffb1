"""Data parallelism over ``torch.distributed``: one process per core, GPU or node (torchrun).

``World`` describes this process's place; ``init()`` reads torchrun's environment and starts
the process group (gloo on CPU, nccl on GPUs). ``AllReduceOptim`` sums every gradient over the
ranks before the optimiser steps, as DistributedDataParallel does; the sum (not the mean)
matches Pyro's losses, which are sums over the batch, so W ranks with batch B take exactly the
step one process takes with batch W * B.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import pyro
import torch
import torch.distributed as dist

from .optim import JointOptim


@dataclass(frozen=True)
class World:
    """This process's rank among ``size`` processes."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def init(device: torch.device | str = "cpu") -> World:
    """The world torchrun launched this process into (a single process without torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return SINGLE
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return World(rank, size)


def device_for(world: World, device: torch.device) -> torch.device:
    """One GPU per local rank; CPU processes share the CPU."""
    if device.type == "cuda" and world.active:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def all_reduce_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """Sums a tensor over the ranks (a no-op in a single process)."""
    if world.active:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather(obj, world: World) -> list:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not world.active:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    """Waits until every rank gets here."""
    if world.active:
        dist.barrier()


class AllReduceOptim(JointOptim):
    """A Pyro optimiser that sums gradients over the ranks, then steps every parameter."""

    def __init__(self, optim_constructor, optim_args: dict, world: World):
        super().__init__(optim_constructor, optim_args)
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


def broadcast_parameters(modules: Iterable[torch.nn.Module], world: World) -> None:
    """Copies rank 0's parameters and buffers to every rank, as DistributedDataParallel does."""
    if not world.active:
        return
    with torch.no_grad():
        for module in modules:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)
