"""The SVI epoch loop behind ``fit()``: steps, periodic checkpoints, divergence and Ctrl-C.

The loop keeps its place as a ``Position`` (epoch, batch in the epoch, step), so it can stop
anywhere (``max_steps``, Ctrl-C, a crash) and a resume continues from the last checkpoint
exactly. It keeps the metrics history too: one row per epoch, saved in every checkpoint. A NaN
or Inf loss, or NaN parameters, stop it before anything is saved: the last good checkpoint is
never overwritten.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import SVI

from ..core.errors import TrainingDiverged
from ..data import Splits
from ..distributed import SINGLE, World, all_gather, all_reduce_sum, barrier
from ..layout import BEST, CHECKPOINT, METRICS
from .checkpoint import DeferredInterrupt, Position, rng_state, save_training
from .progress import Progress, resume_line, write_metrics
from .selection import best_epoch, stalled

Row = dict[str, float]


@dataclass(frozen=True)
class Schedule:
    """How long training runs and when it saves: ``epochs`` in all, at most ``max_steps`` SVI
    steps (0: no limit), a checkpoint every ``checkpoint_every`` epochs and every
    ``checkpoint_steps`` steps (0: off), and always at the end; with ``keep_best``, the best
    epoch by validation ELBO in ``best.pt`` too, and with ``patience``, an early stop
    (``training.selection``)."""

    epochs: int
    max_steps: int = 0
    checkpoint_every: int = 1
    checkpoint_steps: int = 0
    keep_best: bool = False  # write the best validation epoch's weights to best.pt
    patience: int = 0  # stop after this many epochs without a better validation ELBO; 0: off

    def done(self, pos: Position) -> bool:
        return pos.epoch >= self.epochs or self.out_of_steps(pos)

    def out_of_steps(self, pos: Position) -> bool:
        return bool(self.max_steps and pos.step >= self.max_steps)

    def save_after_step(self, pos: Position) -> bool:
        return bool(self.checkpoint_steps and pos.step % self.checkpoint_steps == 0)


class Loop:
    """The state of one fit(): where it stands, its metrics history, and how it steps, saves
    and stops.

    Args:
        model, guide, optim, data: what SVI trains, with which optimizer, on which ``Splits``.
        schedule: how long to train and when to save.
        generator: draws each epoch's shuffle and dynamically binarized bits (the same seed on
            every rank, so the ranks agree on the global batches).
        run_dir: where checkpoints and metrics go; None writes nothing.
        world: rank r takes the r-th share of every global batch.
        noise: ``noise(indices, epoch)``, a context manager around each step (per-point noise).
        validate_first: run the first step with Pyro's validation on (and the rest without).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        guide: torch.nn.Module,
        optim: Any,
        data: Splits,
        *,
        schedule: Schedule,
        generator: torch.Generator,
        run_dir: Path | None = None,
        world: World = SINGLE,
        noise: Callable[[torch.Tensor, int], Any] | None = None,
        validate_first: bool = False,
    ) -> None:
        self.model, self.guide, self.optim, self.data = model, guide, optim, data
        self.schedule, self.generator = schedule, generator
        self.run_dir, self.world = run_dir, world
        self.noise = noise or (lambda indices, epoch: contextlib.nullcontext())
        self.validate_next = validate_first
        self.pos = Position()
        self.history: list[Row] = []
        self.saved: tuple[int, int, int] | None = None  # (epoch, batch, step) on disk
        self.restored = False
        self.stopped_early = False  # patience ran out (training.selection)
        self.interrupt = DeferredInterrupt(self.stopped_at_once)

    @property
    def saved_step(self) -> int | None:
        return self.saved[2] if self.saved is not None else None

    def resumed(self, position: Position, history: list[Row]) -> None:
        """Continues from a loaded checkpoint's position and metrics history."""
        self.pos, self.history = position, history
        self.saved = (position.epoch, position.batch, position.step)
        self.restored = True
        self.stopped_early = stalled(history, self.schedule.patience)  # the same on every rank

    def done(self) -> bool:
        return self.schedule.done(self.pos) or self.stopped_early

    def run(
        self,
        svi: SVI,
        batch_size: int,
        progress: bool = False,
        begin_epoch: Callable[[int], Row] | None = None,
        evaluate: Callable[[], Row] | None = None,
    ) -> None:
        """Trains until the schedule is done. Each epoch's row holds what ``begin_epoch(epoch)``
        returned before the epoch (e.g. a KL weight) and ``evaluate()`` after it. With
        ``progress``, rank 0 shows a bar and a line per epoch on stderr (and, after a resume,
        where it picked up)."""
        epochs, batches = self.schedule.epochs, self.batches_per_epoch(batch_size)
        shown = Progress(progress and self.world.is_main, epochs, batches, self.schedule.max_steps)
        if self.restored:
            shown.say(resume_line(self.run_dir, self.pos, epochs, batches))
        shown.open(self.pos)
        try:
            while not self.done():
                logged = begin_epoch(self.pos.epoch) if begin_epoch is not None else {}
                finished = self.epoch(svi, batch_size, shown)
                row = self.row(logged)
                if evaluate is not None:
                    row.update(evaluate())
                shown.end_epoch(row, finished)
                self.end_epoch(row, finished)
        finally:
            shown.close()

    def batches_per_epoch(self, batch_size: int) -> int:
        """SVI steps in an epoch: a last global batch too small for every rank is dropped."""
        n, size = len(self.data.train), batch_size * self.world.size
        return n // size + int(n % size >= self.world.size)

    def epoch(self, svi: SVI, batch_size: int, shown: Progress) -> bool:
        """Runs the rest of the current epoch; False if ``max_steps`` cut it short."""
        pos = self.pos
        if pos.epoch_rng is None:
            pos.epoch_rng = self.generator.get_state()
        else:  # a resumed epoch: re-create its bits and its shuffle
            self.generator.set_state(pos.epoch_rng)
        x = self.data.train_epoch(self.generator)
        perm = torch.randperm(len(x), generator=self.generator, device=x.device)
        world, size = self.world, batch_size * self.world.size
        starts = range(pos.seen, len(x), size)  # from the first data point not yet seen
        t0 = time.perf_counter() - pos.seconds
        shown.begin_epoch(pos.epoch)
        for i in starts:
            if self.schedule.out_of_steps(pos):
                return False
            batch = perm[i : i + size]
            if len(batch) < world.size:
                break  # a last global batch too small to give every rank a point
            idx = batch.tensor_split(world.size)[world.rank]
            loss = self.step(svi, x[idx], idx)
            pos.batch, pos.step = pos.batch + 1, pos.step + 1
            pos.total, pos.seen = pos.total + loss, pos.seen + len(batch)
            pos.seconds = time.perf_counter() - t0
            shown.stepped(pos)
            if self.schedule.save_after_step(pos) and i + size < len(x):
                self.save()  # at the epoch's last step, end_epoch saves instead
            self.check_interrupt()
        return True

    def end_epoch(self, row: Row, finished: bool) -> None:
        """Logs the epoch's row, saves when due and honours a pending Ctrl-C."""
        if finished:
            self.pos = self.pos.next_epoch(self.generator.get_state())
            self.history.append(row)
            best, self.stopped_early = self.selected()
            if best:  # before the checkpoint: a crash in between redoes this epoch exactly
                self.write(BEST)
        every = self.schedule.checkpoint_every
        due = self.done() or (finished and self.pos.epoch % every == 0)
        if due or self.schedule.save_after_step(self.pos):
            self.save()
        if not finished:
            self.history.append(row)  # shown, not saved: a resume finishes the epoch, redoes it
        if self.run_dir is not None and self.world.is_main:
            write_metrics(self.run_dir / METRICS, self.history)
        self.check_interrupt()

    def selected(self) -> tuple[bool, bool]:
        """(the epoch just ended is the best so far and is to be kept, patience has run out):
        decided on rank 0, which alone scores the validation split, and shared."""
        s = self.schedule
        flags = [
            float(s.keep_best and best_epoch(self.history) == len(self.history)),
            float(stalled(self.history, s.patience)),
        ]
        if self.world.active:
            mine = torch.tensor(flags, dtype=torch.float64) * float(self.world.is_main)
            flags = all_reduce_sum(mine, self.world).tolist()
        return flags[0] > 0, flags[1] > 0

    def step(self, svi: SVI, xb: torch.Tensor, idx: torch.Tensor) -> float:
        """One SVI step on this rank's share; returns the loss summed over all ranks."""
        try:
            checks = self.validate_next  # Pyro's validation, on the first step only
            check = pyro.validation_enabled(True) if checks else contextlib.nullcontext()
            with self.noise(idx, self.pos.epoch), check:
                loss = svi.step(xb, **self.batch_inputs(idx))
            self.validate_next = False
            if self.world.active:  # one collective for the loss and any pending Ctrl-C
                both = torch.tensor([loss, float(self.interrupt.pending)], dtype=torch.float64)
                loss, pending = all_reduce_sum(both, self.world).tolist()
                self.interrupt.pending = pending > 0
        except ValueError as e:  # a distribution refusing NaN parameters, after a NaN gradient
            if self._finite():
                raise
            self.diverged(self.pos.step + 1, "the parameters became NaN or Inf", e)
        if not math.isfinite(loss):
            self.diverged(self.pos.step + 1, f"the loss became {loss}")
        return loss

    def batch_inputs(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch's conditioning input ``cond`` (a label, a given part of the image), for
        data that carry one; nothing otherwise."""
        cond = self.data.cond.get("train")
        return {} if cond is None else {"cond": cond[idx]}

    def _finite(self) -> bool:
        params = [*self.model.parameters(), *self.guide.parameters()]
        return all(bool(torch.isfinite(p).all()) for p in params)

    def diverged(self, step: int, what: str, cause: BaseException | None = None) -> None:
        kept = (
            f"the last good checkpoint, {self.run_dir / CHECKPOINT} at step "
            f"{self.saved_step}, is kept"
            if self.saved_step is not None
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged at step {step} (epoch {self.pos.epoch + 1}): {what}; {kept}. "
            f"Lower train.lr, or check the data and the model."
        ) from cause

    def row(self, logged: Row | None) -> Row:
        p = self.pos
        row = {
            "epoch": p.epoch + 1,
            "step": p.step,
            "train_elbo": -p.total / max(p.seen, 1),
            "seconds": p.seconds,
        }
        row.update(logged or {})
        return row

    def save(self) -> None:
        """Writes a checkpoint, unless the parameters are NaN: the last good one stays."""
        at = (self.pos.epoch, self.pos.batch, self.pos.step)
        if self.run_dir is None or self.saved == at:
            return
        self.write(CHECKPOINT)
        self.saved = at

    def write(self, name: str) -> None:
        """Writes the training state to ``run_dir/name`` (every rank takes part)."""
        if self.run_dir is None:
            return
        if not self._finite():
            self.diverged(self.pos.step, "the parameters became NaN or Inf")
        device = self.generator.device
        rngs = all_gather(rng_state(device), self.world)  # every rank's stream, for a resume
        if self.world.is_main:
            save_training(
                self.run_dir / name,
                self.model,
                self.guide,
                self.optim,
                self.pos,
                self.history,
                device,
                rngs,
            )
        barrier(self.world)  # no rank goes on (or resumes) before the file is on disk

    def check_interrupt(self) -> None:
        """After a first Ctrl-C: saves the state after the last whole step and stops."""
        if not self.interrupt.pending:
            return
        if self.run_dir is None:
            raise KeyboardInterrupt(f"interrupted after step {self.pos.step}; nothing saved.")
        self.save()
        raise KeyboardInterrupt(
            f"interrupted after step {self.pos.step}; saved {self.run_dir / CHECKPOINT}. "
            f"Continue with: ppl-vae train --resume {self.run_dir}"
        )

    def stopped_at_once(self) -> str:
        """What a second Ctrl-C, which stops without saving, leaves on disk."""
        if self.run_dir is None:
            return f"stopped at once after step {self.pos.step}; nothing saved."
        kept = (
            f"{self.run_dir / CHECKPOINT} holds step {self.saved_step}. Continue with"
            if self.saved_step is not None
            else "no checkpoint was written yet. Start it again with"
        )
        return (
            f"stopped at once after step {self.pos.step}; {kept}: "
            f"ppl-vae train --resume {self.run_dir}"
        )
