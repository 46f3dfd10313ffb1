"""An optional TensorBoard log of a training run: the metrics, the KL per latent unit and a grid
of samples, once per epoch, through ``torch.utils.tensorboard``.

``fit(tensorboard=True)`` (recipe: ``train.tensorboard = true``) writes the event files into
``RUN/tensorboard/``; view them with ``tensorboard --logdir RUN/tensorboard``. The ``tensorboard``
package is an optional extra (``pip install 'ppl_vae[tensorboard]'``); asking for the log
without it is an InputError that says so, raised before training starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError

FOLDER = "tensorboard"  # inside the run dir
GRID = 64  # prior samples in the per-epoch picture


def summary_writer_class() -> type:
    """``torch.utils.tensorboard.SummaryWriter``; InputError if the extra is not installed."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it, and says so late)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise InputError(
            "train.tensorboard = true needs the optional tensorboard package, which is not "
            "installed: pip install 'ppl_vae[tensorboard]' (or set train.tensorboard = false)."
        ) from e
    return SummaryWriter


class TensorBoardLog:
    """Writes one epoch at a time: every number of the metrics row as a scalar, the KL per unit
    of each latent site as a histogram and a bar-like scalar group, and prior samples."""

    def __init__(self, run_dir: str | Path | None):
        if run_dir is None:
            raise InputError("a TensorBoard log needs a run dir to write into; pass run_dir.")
        self.writer = summary_writer_class()(log_dir=str(Path(run_dir) / FOLDER))

    def write(
        self,
        row: dict[str, Any],
        kl_per_unit: dict[str, torch.Tensor],
        samples: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        """Logs the epoch ``row["epoch"]``: its numbers, the per-unit KL and ``samples()``, a
        picture ``[3, H, W]`` (skipped when None)."""
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(f"metrics/{key}", value, epoch)
        for site, kl in kl_per_unit.items():
            self.writer.add_histogram(f"kl_per_unit/{site}", kl.float().cpu(), epoch)
            for u, v in enumerate(kl.tolist()):
                self.writer.add_scalar(f"kl_per_unit_{site}/{u:03d}", v, epoch)
        if samples is not None:
            self.writer.add_image("samples", samples(), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
