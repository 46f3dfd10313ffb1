"""What training reports: on stderr while it runs, one bar over the whole run ("epoch 3/10"),
a line per epoch above it and where a resume picks up; on disk, ``metrics.csv``.

Everything here only reads the loop's state (no RNG, no tensors), so showing progress or not
leaves a run bit for bit the same. With ``show`` False nothing is printed at all: scripts get
the CLI's JSON line alone.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm  # the text bar: in notebooks too, without ipywidgets

from ..layout import CHECKPOINT
from ..storage import write_text
from .checkpoint import Position

# Row keys that the epoch line shows in its own words; any other key (a KL weight, a free-bits
# floor) is an extra that a loss logged, shown by name.
_STANDARD = ("epoch", "step", "train_elbo", "valid_elbo", "seconds")


def say(line: str, show: bool = True) -> None:
    """Prints ``line`` on stderr above any progress bar, if ``show``."""
    if show:
        tqdm.write(line, file=sys.stderr)


def epoch_line(row: dict[str, float], epochs: int, finished: bool = True) -> str:
    """One epoch's metrics row as a line, e.g.
    ``epoch 3/10  train ELBO -110.23  valid ELBO -108.45  5.9 s``."""
    head = f"epoch {int(row['epoch'])}/{epochs}"
    if not finished:
        head += f" (stopped at step {int(row['step'])})"
    parts = [head, f"train ELBO {row['train_elbo']:.2f}"]
    if "valid_elbo" in row:
        parts.append(f"valid ELBO {row['valid_elbo']:.2f}")
    parts += [f"{k} {v:.3g}" for k, v in row.items() if k not in _STANDARD]
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)


def resume_line(run_dir: Path | None, pos: Position, epochs: int, batches: int) -> str:
    """Where a resumed run picks up, e.g.
    ``resumed runs/x from checkpoint.pt: epoch 4/10, batch 12/100 (step 1170)``."""
    head = f"resumed {run_dir} from {CHECKPOINT}"
    if pos.epoch >= epochs:
        return f"{head}: all {epochs} epochs done (step {pos.step}); nothing left to train"
    if pos.batch == 0:
        return f"{head}: start of epoch {pos.epoch + 1}/{epochs} (step {pos.step})"
    return f"{head}: epoch {pos.epoch + 1}/{epochs}, batch {pos.batch}/{batches} (step {pos.step})"


class Progress:
    """The feedback of one training loop: a bar counting SVI steps over the whole run (so its
    time estimate is the run's), described "epoch k/N", with the epoch lines written above it.

    Args:
        show: print anything at all (rank 0 with progress on).
        epochs: the run's number of epochs, the N of "epoch k/N".
        batches: SVI steps per epoch.
        max_steps: the run's step limit (0: none), which may end it before ``epochs``.
    """

    def __init__(self, show: bool, epochs: int, batches: int, max_steps: int = 0) -> None:
        self.show, self.epochs, self.batches = show, epochs, batches
        total = epochs * batches
        self.total = min(total, max_steps) if max_steps else total
        self.bar: Any = None

    def open(self, pos: Position) -> Progress:
        """Shows the bar, at ``pos`` (a resumed run starts part-way)."""
        if self.show:
            self.bar = tqdm(
                total=self.total,
                initial=min(pos.step, self.total),
                desc=self._desc(pos.epoch),
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        return self

    def close(self) -> None:
        """Leaves the bar, complete, on the screen."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def say(self, line: str) -> None:
        say(line, self.show)

    def begin_epoch(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.set_description(self._desc(epoch), refresh=False)

    def stepped(self, pos: Position) -> None:
        """Counts one SVI step; shows the epoch's running ELBO (every 20 steps: it costs)."""
        if self.bar is None:
            return
        if pos.batch == 1 or pos.step % 20 == 0:
            self.bar.set_postfix(elbo=f"{-pos.total / max(pos.seen, 1):.2f}", refresh=False)
        self.bar.update(1)

    def end_epoch(self, row: dict[str, float], finished: bool) -> None:
        self.say(epoch_line(row, self.epochs, finished))

    def _desc(self, epoch: int) -> str:
        return f"epoch {min(epoch + 1, self.epochs)}/{self.epochs}"


def write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    """Atomically writes the metrics history as CSV, one row per epoch."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    write_text(path, buf.getvalue())
