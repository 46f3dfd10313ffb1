"""Data parallelism over ``torch.distributed``: one process per core, GPU or node (torchrun).

``World`` describes this process's place; ``init()`` reads torchrun's environment and starts
the process group (gloo on CPU, nccl on GPUs); ``resolve_device`` turns a device name into the
device this process runs on. ``training.optim.AllReduceOptim`` sums every gradient over the
ranks before the optimiser steps, as DistributedDataParallel does; the sum (not the mean)
matches Pyro's losses, which are sums over the batch, so W ranks with batch B take exactly the
step one process takes with batch W * B.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def resolve_device(device: str | torch.device, world: World = SINGLE) -> torch.device:
    """The device to run on, from ``cpu``, ``cuda[:i]`` (the CPU, with a warning, when no GPU is
    present), ``auto`` (a GPU if there is one) or a ``torch.device``, which is taken as it is.
    Under torchrun each rank takes the GPU of its local rank."""
    if not isinstance(device, torch.device):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"device {device!r} was asked for but no GPU is available; running on the CPU.",
                stacklevel=2,
            )
            device = "cpu"
        device = torch.device(device)
    return device_for(world, device)


def init(device: torch.device | str = "cpu") -> World:
    """The world torchrun launched this process into (a single process without torchrun): nccl
    when ``device`` asks for a GPU and there is one, else gloo."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return SINGLE
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        cuda = str(device).startswith(("cuda", "auto")) and torch.cuda.is_available()
        backend = "nccl" if cuda else "gloo"
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


def broadcast_parameters(modules: Iterable[torch.nn.Module], world: World) -> None:
    """Copies rank 0's parameters and buffers to every rank, as DistributedDataParallel does."""
    if not world.active:
        return
    with torch.no_grad():
        for module in modules:
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)
