"""``fit()``: SVI training with per-epoch metrics, checkpoints and exact resume. No argparse."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.infer.util import is_validation_enabled

from ..data import Splits
from ..distributed import SINGLE, World, broadcast_parameters, device_for, resolve_device
from ..errors import InputError
from ..layout import CHECKPOINT, METRICS, SUMMARY
from ..model.checks import DataError, check_finite
from ..registry import lookup
from ..storage import remove_temporaries, write_json
from .checkpoint import load_training
from .loop import Loop, TrainingDiverged
from .noise import NOISES
from .optim import AllReduceOptim, adam

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "SUMMARY",
    "FitResult",
    "TrainingDiverged",
    "estimate_elbo",
    "fit",
    "resolve_device",
]


@dataclass
class FitResult:
    """What a run produced: one row of metrics per epoch and the final test ELBO."""

    history: list[dict[str, float]] = field(default_factory=list)
    test_elbo: float | None = None
    steps: int = 0


@torch.no_grad()
def estimate_elbo(
    model: Callable, guide: Callable, x: torch.Tensor, batch_size: int = 1000, seed: int = 0
) -> float:
    """Mean single-sample ELBO per data point over ``x``, in nats, evaluated in batches.

    It draws from its own RNG stream seeded with ``seed`` and leaves the global one as it was,
    so evaluating during training changes nothing in the training run (and resume stays exact).
    """
    loss = Trace_ELBO()
    total = 0.0
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(x), batch_size):
            total += loss.loss(model, guide, x[i : i + batch_size])
    return -total / len(x)


def fit(
    model: Callable,
    guide: Callable,
    data: Splits | torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    loss: Any = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    max_steps: int = 0,
    checkpoint_every: int = 1,
    checkpoint_steps: int = 0,
    eval_batch_size: int = 1000,
    progress: bool = True,
    world: World = SINGLE,
    noise: str = "global",
) -> FitResult:
    """Trains ``model`` and ``guide`` with ``pyro.infer.SVI`` and Adam.

    Args:
        model, guide: a Pyro model that observes ``"x"`` under ``pyro.plate("data", N)`` and a
            guide (PyroModule) that samples its latents under the same plate.
        data: a ``Splits`` (train, valid, test) or a plain tensor ``[N, x_dim]`` to train on.
        loss: an SVI loss; ``Trace_ELBO()`` by default. If it has ``begin_epoch(epoch)``, that is
            called before each epoch (0-based; again for an epoch a resume re-enters) and the
            dict it returns is logged in the metrics.
        run_dir: where ``metrics.csv`` and ``checkpoint.pt`` go; nothing is written if None.
        resume: continue from ``run_dir/checkpoint.pt``, exactly where it stopped (even
            mid-epoch): the result is bit for bit that of a run that never stopped.
        max_steps: stop after this many SVI steps in all (0: no limit).
        checkpoint_every: save a checkpoint every this many epochs, and always at the end.
        checkpoint_steps: also save one every this many SVI steps (0: off).
        world: this process's place under torchrun (``ppl_vae.distributed.init()``). Each of
            the W ranks takes ``batch_size`` points of every global batch of W * batch_size,
            gradients are summed over the ranks before each step, the reported ELBO covers all
            ranks, and only rank 0 writes files.
        noise: ``"global"`` (one random stream per process) or ``"per_point"`` (each data
            point's latent noise from its own seed: results do not depend on how batches are
            split across processes; Normal and MultivariateNormal guides).

    A NaN or Inf loss raises TrainingDiverged naming the step and keeps the last checkpoint.
    Ctrl-C finishes the SVI step in progress, saves a checkpoint (with ``run_dir``) and raises
    KeyboardInterrupt; a second Ctrl-C stops at once.

    Returns:
        A FitResult with one metrics row per epoch and, for Splits, the final test ELBO.
    """
    if isinstance(data, torch.Tensor):
        data = Splits(data, data[:0], data[:0])
    for name, value, least in (
        ("epochs", epochs, 1),
        ("batch_size", batch_size, 1),
        ("checkpoint_every", checkpoint_every, 1),
        ("checkpoint_steps", checkpoint_steps, 0),
        ("max_steps", max_steps, 0),
    ):
        if value < least:
            raise InputError(f"train.{name} must be at least {least}, got {value}.")
    if lr <= 0:
        raise InputError(f"train.lr must be positive, got {lr}.")
    lookup(NOISES, noise, "noise")
    if resume and run_dir is None:
        raise InputError("resume=True needs run_dir, the run to resume.")
    dev = device_for(world, resolve_device(device))
    model.to(dev)
    guide.to(dev)
    data = data.to(dev)
    _check_data(model, data)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(run_dir)  # what a write killed half-way left behind

    pyro.set_rng_seed(seed + world.rank)  # the data generator below is the same on every rank
    generator = torch.Generator(dev).manual_seed(seed)
    optim = adam(lr)  # one fused Adam over all parameters, in Pyro's optimizer interface
    if world.active:  # sums gradients over the ranks before every step
        optim = AllReduceOptim(torch.optim.Adam, {"lr": lr}, world)
    result = FitResult()
    limits = (epochs, max_steps, checkpoint_every, checkpoint_steps)
    loop = Loop(
        model, guide, optim, data, generator, run_dir, result, limits, world, NOISES[noise](seed)
    )
    # Pyro's checks (model and guide sites agree, shapes, supports) run on the first step only
    loop.validate_next = is_validation_enabled()
    with pyro.get_param_store().scope(), loop.interrupt, pyro.validation_enabled(False):
        if resume:
            position, result.history = load_training(
                run_dir / CHECKPOINT, model, guide, optim, dev, world
            )
            loop.resumed(position)
        broadcast_parameters([model, guide], world)
        loss = loss if loss is not None else Trace_ELBO()
        svi = SVI(model, guide, optim, loss)
        _settle_plate_nesting(loss, model, guide, data)
        begin = getattr(loss, "begin_epoch", None)  # not svi.loss: SVI keeps an ELBO's method
        validate = getattr(model, "validate_data", None)
        if validate is not None:
            model.validate_data = False  # checked once above; keep it off the hot loop
        try:
            while not loop.done():
                logged = begin(loop.pos.epoch) if begin is not None else {}  # e.g. KL annealing
                finished = loop.epoch(svi, batch_size, progress)
                row = loop.row(logged)
                if len(data.valid) and world.is_main:
                    row["valid_elbo"] = estimate_elbo(model, guide, data.valid, eval_batch_size)
                loop.end_epoch(row, finished)
            result.steps = loop.pos.step
            if len(data.test) and world.is_main:
                result.test_elbo = estimate_elbo(model, guide, data.test, eval_batch_size)
        finally:
            if validate is not None:
                model.validate_data = validate
    if run_dir is not None and world.is_main:
        write_json(run_dir / SUMMARY, _summary(result))
    return result


def _check_data(model: Callable, data: Splits) -> None:
    if len(data.train) == 0:
        raise DataError(
            "the training data are empty (N = 0); pass at least one data point, and check "
            "data.subset and data.valid_size in the recipe."
        )
    check = getattr(model, "check", None)
    for s in ("train", "valid", "test"):
        x = data.split(s)
        if not len(x):
            continue
        if s == "train":
            x = data.train_epoch(torch.Generator(x.device).manual_seed(0))
        if check is not None:
            check(x)  # shape, finiteness and what the likelihood can score
        else:
            check_finite(x)


def _settle_plate_nesting(loss: Any, model: Callable, guide: Callable, data: Splits) -> None:
    """Makes vectorized Pyro ELBOs guess their ``max_plate_nesting`` now, on their own RNG
    stream: ``loss`` and the ELBOs it wraps (as attributes, e.g. a KL warm-up's base loss).

    Pyro guesses it by running the guide once at the first step, which draws random numbers;
    that first step comes at a different point in a resumed run, so it would shift the stream.
    """
    x = data.train_epoch(torch.Generator(data.train.device).manual_seed(0))[:1]
    for elbo in _elbos(loss):
        if elbo.vectorize_particles and elbo.max_plate_nesting == math.inf:
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                elbo._guess_max_plate_nesting(model, guide, (x,), {})


def _elbos(loss: Any, depth: int = 3) -> list[ELBO]:
    if not isinstance(loss, ELBO) or depth == 0:
        return []
    inner = [e for v in vars(loss).values() for e in _elbos(v, depth - 1)]
    return [loss, *inner]


def _summary(result: FitResult) -> dict[str, Any]:
    seconds = [row["seconds"] for row in result.history]
    return {
        "steps": result.steps,
        "epochs": len(result.history),
        "train_elbo": result.history[-1]["train_elbo"] if result.history else None,
        "valid_elbo": result.history[-1].get("valid_elbo") if result.history else None,
        "test_elbo": result.test_elbo,
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
    }
