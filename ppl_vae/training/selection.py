"""Epoch selection on the validation split: which epoch is best, and when to stop early.

An epoch's row in the metrics history carries ``valid_elbo`` when the data have a validation
split. With ``train.keep_best`` the loop writes the weights of the best epoch so far to
``best.pt`` (a checkpoint like ``checkpoint.pt``, which keeps the last epoch for an exact
resume); with ``train.patience = P`` it stops after P epochs without a better validation ELBO,
as Pyro's CVAE example does (its patience is 3). ``ppl-vae evaluate RUN --best`` scores the
selected epoch. Selection reads the validation split only, never the test set.
"""

from __future__ import annotations

from collections.abc import Sequence


def best_epoch(history: Sequence[dict[str, float]]) -> int | None:
    """The 1-based epoch with the highest validation ELBO (the first of ties); None if no row
    has one."""
    scored = [(row["valid_elbo"], -i) for i, row in enumerate(history) if "valid_elbo" in row]
    if not scored:
        return None
    return -max(scored)[1] + 1


def stalled(history: Sequence[dict[str, float]], patience: int) -> bool:
    """True once ``patience`` (> 0) epochs have passed without a better validation ELBO."""
    best = best_epoch(history)
    return bool(patience) and best is not None and len(history) - best >= patience
