"""Each epoch's metrics row, built in one place: the validation ELBO, the guide's own
figures (``core.contract.EpochMetrics``), the latent measures (``train.log_latent``) and the
TensorBoard log; and ``estimate_elbo``, the ELBO over a split in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pyro.infer import Trace_ELBO

from ..core.contract import EpochMetrics, HasImages, Samples, has
from ..core.rng import forked_rng
from .tensorboard import GRID, TensorBoardLog


@torch.no_grad()
def estimate_elbo(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    batch_size: int = 1000,
    seed: int = 0,
    cond: torch.Tensor | None = None,
) -> float:
    """Mean single-sample ELBO per data point over ``x``, in nats, evaluated in batches.

    It draws from its own RNG stream seeded with ``seed`` and leaves the global one as it was,
    so evaluating during training changes nothing in the training run (and resume stays exact).
    ``cond``, one row per point of ``x``, is the conditioning input of a conditional model.
    """
    loss = Trace_ELBO()
    total = 0.0
    with forked_rng(x.device, seed):
        for i in range(0, len(x), batch_size):
            kw = {} if cond is None else {"cond": cond[i : i + batch_size]}
            total += loss.loss(model, guide, x[i : i + batch_size], **kw)
    return -total / len(x)


def epoch_row(
    model: Any,
    guide: Any,
    data: Any,
    eval_batch_size: int,
    *,
    log_latent: bool,
    board: TensorBoardLog | None,
    row_of: Callable[[dict[str, float]], dict[str, Any]],
    extra: Callable[[Any, Any, Any], dict[str, float]] | None = None,
) -> Callable[[], dict[str, float]] | None:
    """``fit``'s per-epoch ``evaluate`` hook, or None when an epoch logs nothing beyond the
    training ELBO. Its row holds, in this order: ``valid_elbo`` (with a validation split), the
    guide's ``epoch_metrics(data)`` (M2: ``test_accuracy``), ``extra(model, guide, data)``
    (a model kind's own figures, M1's classifier on the codes), and with ``log_latent`` the active
    units and the KL (``analysis.watch``). With a ``board``, the full row (``row_of(row)``:
    epoch, step, train ELBO, ...), the KL per unit and prior samples go to TensorBoard."""
    valid = len(data.valid) > 0
    if not valid and not log_latent and board is None and extra is None:
        return None
    # imported here: only train.log_latent and train.tensorboard need them
    from ..analysis.watch import epoch_latent, watch_points
    from ..reports.pictures import prior_samples

    x = watch_points(data) if log_latent or board is not None else None
    images = has(model, HasImages) and model.image_shape and has(model, Samples)

    def hook() -> dict[str, float]:
        row: dict[str, float] = {}
        if valid:
            cond = data.cond.get("valid")
            row["valid_elbo"] = estimate_elbo(model, guide, data.valid, eval_batch_size, 0, cond)
            if has(guide, EpochMetrics):
                row.update(guide.epoch_metrics(data))
        if extra is not None:
            row.update(extra(model, guide, data))
        if x is None:
            return row
        latent, per_unit = epoch_latent(model, guide, x)
        if log_latent:
            row.update(latent)
        if board is not None:
            samples = (lambda: prior_samples(model, GRID)) if images else None
            board.write(row_of({**row, **latent}), per_unit, samples)
        return row

    return hook
