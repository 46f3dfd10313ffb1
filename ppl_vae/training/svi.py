"""``fit()``: SVI training with per-epoch metrics, checkpoints and exact resume. No argparse."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.util import is_validation_enabled

from ..core.contract import BeginsEpoch, has
from ..core.errors import InputError
from ..core.registry import lookup
from ..core.threads import in_threads
from ..core.tracing import settle_plate_nesting
from ..data import Splits
from ..distributed import SINGLE, World, broadcast_parameters, resolve_device
from ..layout import CHECKPOINT, METRICS, SUMMARY
from ..model.checks import DataError, checked_once
from ..provenance import TrainingLock, record, utc_now
from ..storage import remove_temporaries, write_json
from .checkpoint import load_training
from .loop import Loop, Schedule, TrainingDiverged
from .metrics import epoch_row, estimate_elbo
from .noise import NOISES
from .optimizers import build_optimizer
from .replay import ReplayedSVI
from .schedule import build_schedule, scheduled
from .selection import best_epoch
from .tensorboard import TensorBoardLog

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
    replayed: int = 0  # of this call's steps, those a replayed plan took (train.replay)


@in_threads
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
    objective: Any = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    max_steps: int = 0,
    checkpoint_every: int = 1,
    checkpoint_steps: int = 0,
    eval_batch_size: int = 1000,
    progress: bool = True,
    world: World = SINGLE,
    noise: str = "global",
    optimizer: str = "adam",
    optimizer_options: dict[str, Any] | None = None,
    lr_schedule: str = "constant",
    lr_schedule_options: dict[str, Any] | None = None,
    log_latent: bool = False,
    tensorboard: bool = False,
    epoch_metrics: Callable[[Any, Any, Any], dict[str, float]] | None = None,
    threads: int = 0,
    replay: bool = False,
    keep_best: bool = False,
    patience: int = 0,
) -> FitResult:
    """Trains ``model`` and ``guide`` with ``pyro.infer.SVI`` and Adam.

    Args:
        model: a Pyro model that observes ``"x"`` under ``pyro.plate("data", N)``.
        guide: a guide (PyroModule) that samples its latents under the same plate.
        data: a ``Splits`` (train, valid, test) or a plain tensor ``[N, x_dim]`` to train on.
        objective: the SVI loss (``build_objective``); ``Trace_ELBO()`` by default. If it has
            ``begin_epoch(epoch)`` (``core.contract.BeginsEpoch``), that is called before each
            epoch (0-based; again for an epoch a resume re-enters) and the dict it returns is
            logged in the metrics.
        run_dir: where ``metrics.csv`` and ``checkpoint.pt`` go; nothing is written if None.
        resume: continue from ``run_dir/checkpoint.pt``, exactly where it stopped (even
            mid-epoch): the result is bit for bit that of a run that never stopped.
        max_steps: stop after this many SVI steps in all (0: no limit).
        checkpoint_every: save a checkpoint every this many epochs, and always at the end.
        checkpoint_steps: also save one every this many SVI steps (0: off).
        progress: show, on stderr, a bar over the run ("epoch 3/10"), a line per epoch (ELBOs,
            logged values, seconds) and, on resume, where it picks up; False prints nothing.
        world: this process's place under torchrun (``ppl_vae.distributed.init()``). Each of
            the W ranks takes ``batch_size`` points of every global batch of W * batch_size,
            gradients are summed over the ranks before each step, the reported ELBO covers all
            ranks, and only rank 0 writes files.
        noise: ``"global"`` (one random stream per process) or ``"per_point"`` (each data
            point's latent noise from its own seed: results do not depend on how batches are
            split across processes; Normal and MultivariateNormal guides).
        optimizer: a name from ``training.optimizers.OPTIMIZERS`` (``adam``, or ``adam_iwae``
            as the IWAE paper's code applies it).
        optimizer_options: its options (``betas``, ``eps``, ...).
        lr_schedule: the learning rate per epoch, starting at ``lr``: a name from
            ``training.schedule.LR_SCHEDULES`` (``constant``, or ``burda``: 3^i epochs at
            lr * 10^(-i/7)); a scheduled rate is logged as ``lr``.
        lr_schedule_options: its options.
        log_latent: add the active units and the KL (on up to 1000 validation points) to each
            epoch's metrics, so that posterior collapse shows as it happens.
        tensorboard: also log each epoch's metrics, KL per unit and prior samples to
            ``run_dir/tensorboard`` (needs the optional ``tensorboard`` extra).
        threads: torch's intra-op threads while it trains (``torch.set_num_threads``; the
            previous count comes back after); 0 leaves torch's default. One thread per job is
            the fast choice when jobs share a machine (docs/performance.md).
        replay: step through ``training.replay.ReplayedSVI``: the model and guide traced once
            into a plan of tensor operations, replayed while the batch shape stays (the same
            losses and gradients as Pyro's eager step, at a fixed seed; faster at small
            batches). Objectives without a tensor loss (M2's) step eagerly, and so does a run
            with per-point noise. Off by default here, as your model's and guide's Python
            runs only when a plan is traced (a print or a counter in ``forward`` would run once
            per plan); recipes, which build the toolkit's own parts, set it on
            (``train.replay``).
        keep_best: also write the weights of the epoch with the best validation ELBO so far
            to ``run_dir/best.pt`` (``ppl-vae evaluate --best`` scores them); needs a
            validation split.
        patience: stop once this many epochs have passed without a better validation ELBO
            (0: run every epoch); needs a validation split (``training.selection``).
        epoch_metrics: ``(model, guide, data) -> {name: value}``, more figures for each
            epoch's metrics row (M1's classifier on the codes); keys that start with ``test_``
            also go into ``summary.json``.

    A NaN or Inf loss raises TrainingDiverged naming the step and keeps the last checkpoint.
    Ctrl-C finishes the SVI step in progress, saves a checkpoint (with ``run_dir``) and raises
    KeyboardInterrupt; a second Ctrl-C stops at once.

    Returns:
        A FitResult with one metrics row per epoch and, for Splits, the final test ELBO.
    """
    _check_args(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        checkpoint_every=checkpoint_every,
        checkpoint_steps=checkpoint_steps,
        max_steps=max_steps,
        noise=noise,
        resume=resume,
        run_dir=run_dir,
        patience=patience,
    )
    dev = resolve_device(device, world)  # a name, or the device train_recipe resolved
    model.to(dev)
    guide.to(dev)
    data = _as_splits(data).to(dev)
    _check_selection(data, keep_best, patience)
    run_dir = Path(run_dir) if run_dir is not None else None
    objective = objective if objective is not None else Trace_ELBO()
    # one optimizer over all parameters (a fused Adam by default), in Pyro's interface
    optim = build_optimizer(optimizer, lr, world, **dict(optimizer_options or {}))
    lr_at = build_schedule(lr_schedule, lr, **dict(lr_schedule_options or {}))
    loop = Loop(
        model,
        guide,
        optim,
        data,
        schedule=Schedule(
            epochs, max_steps, checkpoint_every, checkpoint_steps, keep_best, patience
        ),
        generator=torch.Generator(dev).manual_seed(seed),  # the same on every rank
        run_dir=run_dir,
        world=world,
        noise=NOISES[noise](seed),
        # Pyro's checks (model and guide sites agree, shapes, supports) on the first step only:
        # read now, as _checked_data turns Pyro's validation off for the rest
        validate_first=is_validation_enabled(),
    )
    # a training holds the run dir's lock; how it ended goes into state.json (provenance)
    started = utc_now()
    writes = run_dir is not None and world.is_main
    with TrainingLock(run_dir) if writes else contextlib.nullcontext():
        board = TensorBoardLog(run_dir) if tensorboard and world.is_main else None  # fails early
        with _checked_data(model, data), pyro.get_param_store().scope(), loop.interrupt:
            if run_dir is not None and world.is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                remove_temporaries(run_dir)  # what a write killed half-way left behind
            pyro.set_rng_seed(seed + world.rank)
            if resume:
                loop.resumed(*load_training(run_dir / CHECKPOINT, model, guide, optim, dev, world))
            broadcast_parameters([model, guide], world)
            # per-point noise re-seeds every step, which a plan cannot: those runs step eagerly
            replayed = replay and noise == "global"
            svi = (ReplayedSVI if replayed else SVI)(model, guide, optim, objective)
            # Pyro losses would guess their plate nesting at the first step, drawing random numbers
            # (a resumed run's first step comes elsewhere in the stream): probe it now, RNG forked.
            x = data.train_epoch(torch.Generator(data.train.device).manual_seed(0))[:1]
            given = {k: v[:1] for k, v in loop.batch_inputs(torch.arange(1)).items()}
            settle_plate_nesting(objective, model, guide, x, **given)
            main = world.is_main  # rank 0 alone evaluates and writes files

            loop.run(
                svi,
                batch_size,
                progress,
                # the epoch's learning rate, then the objective's hook
                begin_epoch=scheduled(
                    lr_at, optim, objective.begin_epoch if has(objective, BeginsEpoch) else None
                ),
                evaluate=epoch_row(
                    model,
                    guide,
                    data,
                    eval_batch_size,
                    log_latent=log_latent,
                    board=board,
                    row_of=loop.row,
                    extra=epoch_metrics,
                )
                if main
                else None,
            )
            if board is not None:
                board.close()
            test_elbo = None
            if len(data.test) and main:
                cond = data.cond.get("test")
                test_elbo = estimate_elbo(model, guide, data.test, eval_batch_size, 0, cond)
        result = FitResult(
            history=loop.history,
            test_elbo=test_elbo,
            steps=loop.pos.step,
            replayed=getattr(svi, "replayed", 0),
        )
        if run_dir is not None and main:
            summary = _summary(result)
            summary["provenance"] = record(run_dir, started=started, seed=seed, device=dev)
            write_json(run_dir / SUMMARY, summary)
    return result


def _check_args(
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    checkpoint_every: int,
    checkpoint_steps: int,
    max_steps: int,
    noise: str,
    resume: bool,
    run_dir: str | Path | None,
    patience: int = 0,
) -> None:
    """Raises InputError for an argument of fit() that no run can use, naming its recipe key."""
    for name, value, least in (
        ("epochs", epochs, 1),
        ("patience", patience, 0),
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


def _check_selection(data: Splits, keep_best: bool, patience: int) -> None:
    """Epoch selection reads the validation split: refuse it without one."""
    if (keep_best or patience) and not len(data.valid):
        asked = "train.keep_best" if keep_best else "train.patience"
        raise InputError(
            f"{asked} selects epochs by their validation ELBO, and these data have no "
            f"validation split; set data.valid_size > 0 (it is taken from the training images), "
            f"or turn {asked} off."
        )


def _as_splits(data: Splits | torch.Tensor) -> Splits:
    """A plain tensor is all training data, with no validation or test split."""
    if isinstance(data, torch.Tensor):
        return Splits(data, data[:0], data[:0])
    return data


def _checked_data(model: Callable, data: Splits) -> contextlib.AbstractContextManager[None]:
    """Checks every split now, the training split as one epoch drawn the way training draws
    them (dynamic binarization: bits, not gray values); see ``checked_once``."""
    if len(data.train) == 0:
        raise DataError(
            "the training data are empty (N = 0); pass at least one data point, and check "
            "data.subset and data.valid_size in the recipe."
        )
    train = data.train_epoch(torch.Generator(data.train.device).manual_seed(0))
    return checked_once(model, train, data.valid, data.test)


def _summary(result: FitResult) -> dict[str, Any]:
    seconds = [row["seconds"] for row in result.history]
    return {
        "steps": result.steps,
        "replayed_steps": result.replayed,
        "epochs": len(result.history),
        "train_elbo": result.history[-1]["train_elbo"] if result.history else None,
        "valid_elbo": result.history[-1].get("valid_elbo") if result.history else None,
        "best_epoch": best_epoch(result.history),
        "test_elbo": result.test_elbo,
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
        # what a guide's epoch_metrics logged about the test split (M2: test_accuracy)
        **{k: v for k, v in (result.history or [{}])[-1].items() if k.startswith("test_")},
    }
