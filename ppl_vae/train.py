"""``fit()``: the SVI loop, with progress, per-epoch metrics and checkpoints. No argparse here."""

from __future__ import annotations

import csv
import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from tqdm.auto import tqdm

from .data import Splits
from .storage import load_checkpoint, save_checkpoint, write_json, write_text

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
SUMMARY = "summary.json"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What a run produced: one row of metrics per epoch and the final test ELBO."""

    history: list[dict[str, float]] = field(default_factory=list)
    test_elbo: float | None = None
    steps: int = 0


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` (falls back to the CPU with a warning when none is present) or ``auto``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn("train.device = 'cuda' but no GPU is available; running on the CPU.",
                      stacklevel=2)  # fmt: skip
        device = "cpu"
    return torch.device(device)


@torch.no_grad()
def estimate_elbo(
    model: Callable, guide: Callable, x: torch.Tensor, batch_size: int = 1000
) -> float:
    """Mean single-sample ELBO per data point over ``x``, in nats, evaluated in batches."""
    loss = Trace_ELBO()
    total = 0.0
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
    eval_batch_size: int = 1000,
    progress: bool = True,
) -> FitResult:
    """Trains ``model`` and ``guide`` with ``pyro.infer.SVI`` and Adam.

    Args:
        model, guide: a Pyro model that observes ``"x"`` under ``pyro.plate("data", N)`` and a
            guide (PyroModule) that samples its latents under the same plate.
        data: a ``Splits`` (train, valid, test) or a plain tensor ``[N, x_dim]`` to train on.
        loss: an SVI loss; ``Trace_ELBO()`` by default. If it has ``begin_epoch(epoch)``, that is
            called before each epoch (0-based) and the dict it returns is logged in the metrics.
        run_dir: where ``metrics.csv`` and ``checkpoint.pt`` go; nothing is written if None.
        resume: continue from ``run_dir/checkpoint.pt``.
        max_steps: stop after this many SVI steps in all (0: no limit).
        checkpoint_every: save a checkpoint every this many epochs, and always at the end.

    Returns:
        A FitResult with one metrics row per epoch and, for Splits, the final test ELBO.
    """
    if isinstance(data, torch.Tensor):
        data = Splits(data, data[:0], data[:0])
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}.")
    dev = resolve_device(device)
    model.to(dev)
    guide.to(dev)
    data = data.to(dev)
    check = getattr(model, "check", None)
    if check is not None:
        for s in ("train", "valid", "test"):
            if len(data.split(s)):
                check(data.train_epoch(torch.Generator(dev).manual_seed(0)) if s == "train"
                      else data.split(s))  # fmt: skip
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)

    pyro.set_rng_seed(seed)
    generator = torch.Generator(dev).manual_seed(seed)
    optim = Adam({"lr": lr})
    result = FitResult()
    start_epoch = 0
    with pyro.get_param_store().scope():
        if resume:
            start_epoch = _restore(run_dir, model, guide, optim, generator, result)
        svi = SVI(model, guide, optim, loss if loss is not None else Trace_ELBO())
        validate = getattr(model, "validate_data", None)
        if validate is not None:
            model.validate_data = False  # checked once above; keep it off the hot loop
        try:
            for epoch in range(start_epoch, epochs):
                if max_steps and result.steps >= max_steps:
                    break
                begin = getattr(loss, "begin_epoch", None)  # svi.loss is a bound method for ELBOs
                logged = begin(epoch) if begin is not None else {}  # e.g. a KL weight schedule
                row = _epoch(svi, data, epoch, batch_size, generator, result, max_steps, progress)
                row.update(logged or {})
                if len(data.valid):
                    row["valid_elbo"] = estimate_elbo(model, guide, data.valid, eval_batch_size)
                result.history.append(row)
                last = epoch + 1 == epochs or bool(max_steps and result.steps >= max_steps)
                if run_dir is not None:
                    _write_metrics(run_dir / METRICS, result.history)
                    if last or (epoch + 1) % checkpoint_every == 0:
                        _save(run_dir / CHECKPOINT, model, guide, optim, generator, result, epoch)
            if len(data.test):
                result.test_elbo = estimate_elbo(model, guide, data.test, eval_batch_size)
        finally:
            if validate is not None:
                model.validate_data = validate
    if run_dir is not None:
        write_json(run_dir / SUMMARY, _summary(result))
    return result


def _epoch(svi, data, epoch, batch_size, generator, result, max_steps, progress) -> dict:
    x = data.train_epoch(generator)
    n = len(x)
    perm = torch.randperm(n, generator=generator, device=x.device)
    total, seen = 0.0, 0
    t0 = time.perf_counter()
    steps = range(0, n, batch_size)
    bar = tqdm(steps, desc=f"epoch {epoch + 1}", disable=not progress, leave=False)
    for i in bar:
        if max_steps and result.steps >= max_steps:
            break
        xb = x[perm[i : i + batch_size]]
        loss = svi.step(xb)
        result.steps += 1
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {loss} at step {result.steps} (epoch {epoch + 1}); the last "
                f"good checkpoint is kept. Lower train.lr or check the data."
            )
        total += loss
        seen += len(xb)
        if result.steps % 20 == 0:
            bar.set_postfix(elbo=f"{-total / seen:.2f}")
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "step": result.steps, "train_elbo": -total / max(seen, 1),
            "seconds": seconds}  # fmt: skip


def _state(optim, generator) -> dict[str, Any]:
    return {
        "optim": optim.get_state(),
        "rng": {"torch": torch.get_rng_state(), "generator": generator.get_state()},
    }


def _save(path, model, guide, optim, generator, result, epoch) -> None:
    save_checkpoint(path, {
        "model": model.state_dict(),
        "guide": guide.state_dict(),
        "epoch": epoch + 1,
        "step": result.steps,
        "history": result.history,
        **_state(optim, generator),
    })  # fmt: skip


def _restore(run_dir, model, guide, optim, generator, result) -> int:
    if run_dir is None:
        raise ValueError("resume=True needs run_dir, the run to resume.")
    state = load_checkpoint(run_dir / CHECKPOINT)
    model.load_state_dict(state["model"])
    guide.load_state_dict(state["guide"])
    optim.set_state(state["optim"])
    torch.set_rng_state(state["rng"]["torch"])
    generator.set_state(state["rng"]["generator"])
    result.steps = state["step"]
    result.history = list(state["history"])
    return state["epoch"]


def _write_metrics(path: Path, history: list[dict]) -> None:
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    write_text(path, buf.getvalue())


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
