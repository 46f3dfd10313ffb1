"""Learning-rate schedules: the learning rate as a function of the epoch, set before each epoch.

A recipe names one with ``train.lr_schedule`` (a key of ``LR_SCHEDULES``) and its options with
``train.lr_schedule_options``; ``train.lr`` is the starting rate. The rate depends on the epoch
alone, so a run resumed from a checkpoint (even mid-epoch) sets the same rate as a run that
never stopped: there is no schedule state to save.

``burda`` is the schedule of Burda et al. (2016): stage i = 0, 1, ..., 7 lasts 3^i epochs at
rate lr * 10^(-i/7), 3,280 epochs in all. Its rates are rounded to two significant digits, as
the paper's code (``experiments.py``: ``1e-4 * round(10 ** (1 - i / 7), 1)``) rounds them:
1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4.

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, section 5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError
from ..core.options import checked_lookup


@dataclass(frozen=True)
class Constant:
    """The same rate every epoch."""

    lr: float

    def __call__(self, epoch: int) -> float:
        return self.lr

    def stage(self, epoch: int) -> int:
        return 0


@dataclass(frozen=True)
class Stages:
    """Stage i lasts ``growth ** i`` epochs at ``lr * 10 ** (-i / decade)`` (rounded to ``digits``
    significant digits; 0: not rounded), for ``stages`` stages; later epochs keep the last rate.

    The defaults are Burda et al.'s: 8 stages of 1, 3, 9, ..., 2187 epochs, a factor of 10 over
    7 stages, two digits.
    """

    lr: float
    stages: int = 8
    growth: int = 3
    decade: float = 7.0
    digits: int = 2

    def __post_init__(self) -> None:
        if self.stages < 1 or self.growth < 1 or self.decade <= 0 or self.digits < 0:
            raise InputError(
                f"train.lr_schedule_options: need stages >= 1, growth >= 1, decade > 0 and "
                f"digits >= 0, got stages={self.stages}, growth={self.growth}, "
                f"decade={self.decade}, digits={self.digits}."
            )

    def lengths(self) -> list[int]:
        """Epochs of each stage: ``[1, 3, 9, ...]``."""
        return [self.growth**i for i in range(self.stages)]

    @property
    def epochs(self) -> int:
        """Epochs of the whole schedule (3,280 for the paper's)."""
        return sum(self.lengths())

    def stage(self, epoch: int) -> int:
        """The 0-based stage that the 0-based ``epoch`` falls in (the last one after the end)."""
        end = 0
        for i, n in enumerate(self.lengths()):
            end += n
            if epoch < end:
                return i
        return self.stages - 1

    def rate(self, stage: int) -> float:
        """The learning rate of a stage."""
        factor = 10 ** (-stage / self.decade)
        if self.digits:
            factor = round(factor, self.digits - 1 - math.floor(math.log10(factor)))
        return self.lr * factor

    def __call__(self, epoch: int) -> float:
        return self.rate(self.stage(epoch))


LR_SCHEDULES: dict[str, Callable[..., Any]] = {"constant": Constant, "burda": Stages}
RESERVED = {"lr": "train.lr"}


def build_schedule(name: str, lr: float, **options: Any) -> Constant | Stages:
    """The schedule ``name`` starting at ``lr``, with its options checked (an unknown one is an
    error naming the closest)."""
    cls = checked_lookup(
        LR_SCHEDULES, name, "lr_schedule", options, "train.lr_schedule_options", reserved=RESERVED
    )
    return cls(lr, **options)


def set_lr(optim: Any, lr: float) -> None:
    """Sets the learning rate of a Pyro optimizer (``JointOptim`` or ``PyroOptim``): for the
    torch optimizers it holds now and those it builds later."""
    optim.pt_optim_args["lr"] = lr
    for opt in {id(o): o for o in getattr(optim, "optim_objs", {}).values()}.values():
        for group in opt.param_groups:
            group["lr"] = lr


def scheduled(
    schedule: Callable[[int], float],
    optim: Any,
    begin_epoch: Callable[[int], dict] | None = None,
) -> Callable[[int], dict]:
    """A ``begin_epoch(epoch)`` hook for the training loop: sets ``optim``'s rate for the epoch,
    then calls ``begin_epoch`` (a loss's, e.g. KL warm-up). Its metrics row holds ``lr`` unless
    the schedule is constant."""

    def begin(epoch: int) -> dict:
        lr = schedule(epoch)
        set_lr(optim, lr)
        row = {} if isinstance(schedule, Constant) else {"lr": lr}
        if begin_epoch is not None:
            row.update(begin_epoch(epoch))
        return row

    return begin
