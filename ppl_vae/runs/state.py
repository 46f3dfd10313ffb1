"""What a run dir is doing, and which of its results are current.

``run_status`` reads a run's state from its files: ``training`` while a live process holds its
lock (``provenance.TrainingLock``), else how the last training ended (``state.json``):
``finished``, ``interrupted`` or ``failed``; ``killed`` for a lock left by a process that is
gone; ``not started`` for a dir with a recipe and no checkpoint. ``load_scored`` loads a run for
``evaluate``, ``bdmc`` and ``diagnose``, refusing one that is still training unless asked, and
returns the checkpoint it loaded. ``result_files`` lists a run's results with whether each
scored the run's checkpoint as it is now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import RunDirError
from ..distributed import SINGLE, World
from ..layout import (
    BDMC_JSON,
    CHECKPOINT,
    DIAGNOSTICS,
    EVAL_JSON,
    RECIPE,
    STATE,
    SUMMARY,
)
from ..provenance import Holder, checkpoint_info, lock_holder

STATES = ("training", "finished", "interrupted", "failed", "killed", "not started")


@dataclass
class RunStatus:
    """A run dir's state (one of ``STATES``), its last checkpoint (``checkpoint_info``), the
    epochs its recipe asks for, who trains it (or held the lock of a killed run) and, for a
    failed run, the error."""

    path: Path
    state: str
    checkpoint: dict[str, Any] | None
    epochs: int | None
    holder: Holder | None = None
    error: str | None = None
    ended: str | None = None

    @property
    def progress(self) -> str:
        """ "epoch k of N": the epoch in progress (or done, when finished) of the recipe's N."""
        done = self.checkpoint["epoch"] if self.checkpoint else 0
        k = done if self.state == "finished" else min(done + 1, self.epochs or done + 1)
        return f"epoch {k} of {self.epochs}" if self.epochs else f"epoch {k}"

    def describe(self) -> str:
        """One line: the state, how far, and by whom or why."""
        where = self.progress
        if self.state == "training":
            return f"still training ({where}), by {self.holder.describe()}"
        if self.state == "killed":
            return (
                f"interrupted ({where}): {self.holder.describe()} ended without releasing its "
                f"lock (killed?); continue it with: ppl-vae train --resume {self.path}"
            )
        if self.state == "failed":
            return f"failed ({where}): {self.error}"
        if self.state == "interrupted":
            return f"interrupted ({where}); continue it with: ppl-vae train --resume {self.path}"
        if self.state == "not started":
            return (
                f"not started: no checkpoint yet; start it with: ppl-vae train --resume {self.path}"
            )
        return f"finished ({where})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.path),
            "state": self.state,
            "description": self.describe(),
            "epochs": self.epochs,
            "checkpoint": self.checkpoint,
            "holder": None if self.holder is None else self.holder.__dict__,
            "error": self.error,
            "ended": self.ended,
        }


def run_status(run_dir: str | Path) -> RunStatus:
    """The state of the run in ``run_dir`` (RunDirError if it holds no run)."""
    path = Path(run_dir)
    if not (path / RECIPE).is_file():
        raise RunDirError(
            f"{path} is not a run dir (it has no {RECIPE}); train one with: "
            f"ppl-vae train RECIPE --out {path}"
        )
    from .recipe import load_recipe

    epochs = load_recipe(path).train.epochs
    ckpt = checkpoint_info(path / CHECKPOINT)
    holder = lock_holder(path)
    if holder is not None:
        return RunStatus(path, "training" if holder.alive else "killed", ckpt, epochs, holder)
    if (path / STATE).is_file():
        doc = json.loads((path / STATE).read_text())
        return RunStatus(path, doc["state"], ckpt, epochs, None, doc.get("error"), doc.get("ended"))
    if (path / SUMMARY).is_file():  # trained before state.json was written
        return RunStatus(path, "finished", ckpt, epochs)
    return RunStatus(path, "interrupted" if ckpt else "not started", ckpt, epochs)


def load_scored(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    world: World = SINGLE,
    *,
    while_training: bool = False,
    what: str = "evaluate",
    weights: str = CHECKPOINT,
):
    """``load_run`` for a command that scores a run (``what``: evaluate, bdmc, diagnose), and
    the ``checkpoint_info`` of the checkpoint it loaded. A run still training is refused with
    its progress, unless ``while_training``: then its checkpoint as of now is loaded (read
    twice around the load, so a checkpoint replaced meanwhile is caught and loaded again).
    ``weights``: the file whose weights are scored (``best.pt``: the epoch selected on the
    validation split)."""
    from .run import load_run

    status = run_status(run_dir)
    path = status.path
    if status.checkpoint is None:
        if status.state == "training":
            raise RunDirError(
                f"run {path} is {status.describe()}, and has no {CHECKPOINT} yet (the first "
                f"is written after its first epoch); {what} it when it has one."
            )
        raise RunDirError(f"run {path} has no {CHECKPOINT} to {what}: {status.describe()}.")
    if status.state == "training" and not while_training:
        flag = " --while-training" if what == "evaluate" else ""
        raise RunDirError(
            f"run {path} is {status.describe()}: what {what} writes now would be stale when it "
            f"finishes. Wait for it (`ppl-vae info {path}` says how far it is)"
            + (
                f", or pass{flag} to score its checkpoint as of now (step "
                f"{status.checkpoint['step']}), written under a name with that step."
                if flag
                else "."
            )
        )
    if not (path / weights).is_file():  # best.pt: checkpoint.pt was found above
        if status.checkpoint["epoch"] == 0 and _keeps_best(path):
            raise RunDirError(
                f"run {path} has no {weights} yet: it keeps its best epoch by validation ELBO, "
                f"and no epoch has finished; train it on (ppl-vae train --resume {path}), or "
                f"{what} the steps it took ({CHECKPOINT})."
            )
        raise RunDirError(
            f"run {path} has no {weights} to {what}: only a run trained with train.keep_best = "
            f"true keeps one (its best epoch by validation ELBO). Train with --set "
            f"train.keep_best=true, or {what} its last epoch ({CHECKPOINT})."
        )
    for _ in range(3):
        before = checkpoint_info(path / weights)
        run = load_run(path, data_dir, device, world, weights)
        if checkpoint_info(path / weights) == before:
            return run, before, status.state == "training"
    raise RunDirError(f"the checkpoint of {path} changed during every load; try again.")


def _keeps_best(path: Path) -> bool:
    from .recipe import load_recipe

    return load_recipe(path).train.keep_best


# result file (relative to the run dir, or a glob) -> what wrote it
RESULTS = {
    SUMMARY: "train",
    EVAL_JSON: "evaluate",
    f"eval_*/{EVAL_JSON}": "evaluate",
    BDMC_JSON: "bdmc",
    DIAGNOSTICS: "diagnose",
}


def currency(doc: dict[str, Any], checkpoint: dict[str, Any] | None) -> bool | None:
    """Whether the result ``doc`` scored ``checkpoint`` (the run's now): None if ``doc`` has no
    provenance (written by ppl_vae before 0.3)."""
    scored = (doc.get("provenance") or {}).get("checkpoint")
    if not scored:
        return None
    return checkpoint is not None and scored["sha256"] == checkpoint["sha256"]


def refresh_command(doc: dict[str, Any], run_dir: Path, what: str) -> str:
    """The command that wrote ``doc`` (its provenance), else the plain one for ``what``."""
    command = (doc.get("provenance") or {}).get("command")
    if command and command.split()[:2] in (["ppl-vae", what], ["__main__.py", what]):
        return "ppl-vae " + command.split(None, 1)[1]
    return f"ppl-vae {what} {run_dir}"


def result_files(run_dir: str | Path) -> list[dict[str, Any]]:
    """Each result file in ``run_dir``: its path, the command that writes it, the checkpoint it
    scored (step, epoch) and ``current`` (True, False, or None where it cannot be told)."""
    path = Path(run_dir)
    now = checkpoint_info(path / CHECKPOINT)
    found = []
    for pattern, what in RESULTS.items():
        for f in sorted(path.glob(pattern)):
            doc = json.loads(f.read_text())
            scored = (doc.get("provenance") or {}).get("checkpoint") or {}
            current = currency(doc, now)
            found.append(
                {
                    "file": str(f.relative_to(path)),
                    "command": what,
                    "step": scored.get("step"),
                    "epoch": scored.get("epoch"),
                    "current": current,
                    "refresh": None if current else refresh_command(doc, path, what),
                }
            )
    return found
