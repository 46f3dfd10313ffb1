"""Training state for exact resume, and Ctrl-C that waits for the end of the SVI step.

A checkpoint written here lets a run continue bit for bit as if it had never stopped: N steps,
a resume, then N more steps give the same parameters as 2N steps in one go. It holds

- the model and guide weights and Adam's state for every parameter;
- ``rng_ranks``: every random number generator Pyro and the loop draw from, one set per rank
  of a data-parallel run (one entry alone): torch (CPU, and CUDA on a GPU), Python's
  ``random`` and NumPy;
- ``position``: the epoch in progress, the steps done in all and how many of them in that epoch
  (with the epoch's partial loss sum for its metrics row), and the data generator's state at
  the start of that epoch, which re-creates the epoch's shuffle and its dynamically binarized
  bits;
- ``history``: the metrics rows of the epochs done.

Files written before this layout also hold ``rng`` (rank 0's states again) and ``epoch`` and
``step`` (the position's again); they load the same, those keys unread.

Everything is a tensor or a plain value, so the file loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..distributed import SINGLE, World
from ..storage import CheckpointError, load_checkpoint, save_checkpoint


@dataclass
class Position:
    """Where training stands: ``step`` SVI steps done in all, ``batch`` of them in the 0-based
    epoch ``epoch``, that epoch's loss sum over ``seen`` data points and its ``seconds``, and the
    data generator's state at the start of the epoch (``epoch_rng``)."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    total: float = 0.0
    seen: int = 0
    seconds: float = 0.0
    epoch_rng: torch.Tensor | None = None

    def next_epoch(self, rng: torch.Tensor) -> Position:
        """The position at the start of the following epoch, whose generator state is ``rng``."""
        return Position(epoch=self.epoch + 1, step=self.step, epoch_rng=rng)


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global RNG states (torch, CUDA on ``device``, random, NumPy) as tensors and tuples."""
    name, key, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "random": random.getstate(),
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restores what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_training(
    path: str | Path,
    model: nn.Module,
    guide: nn.Module,
    optim: Any,
    position: Position,
    history: list[dict[str, float]],
    device: torch.device,
    rngs: list[dict[str, Any]] | None = None,
) -> None:
    """Atomically writes everything a resume needs. Call it inside the param-store scope that
    training runs in: Pyro's optimizer names its states through the param store. ``rngs``
    holds every rank's RNG states in a data-parallel run (rank 0's by default)."""
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "guide": guide.state_dict(),
            "optim": optim.get_state(),
            "rng_ranks": rngs if rngs is not None else [rng_state(device)],
            "position": dataclasses.asdict(position),
            "history": history,
        },
    )


def load_weights(path: str | Path, model: nn.Module, guide: nn.Module) -> dict[str, Any]:
    """Loads a checkpoint's weights into ``model`` and ``guide``; returns the whole checkpoint.
    Raises CheckpointError when it is damaged or was written for other networks."""
    state = load_checkpoint(path)  # on the CPU; load_state_dict copies onto the device
    with _mismatch(path):
        model.load_state_dict(state["model"])
        guide.load_state_dict(state["guide"])
    return state


def load_training(
    path: str | Path,
    model: nn.Module,
    guide: nn.Module,
    optim: Any,
    device: torch.device,
    world: World = SINGLE,
) -> tuple[Position, list[dict[str, float]]]:
    """Loads a checkpoint into ``model``, ``guide``, ``optim`` and the global RNGs (this rank's
    in a data-parallel run); returns the position to continue from and the metrics history."""
    state = load_weights(path, model, guide)
    with _mismatch(path):
        rngs = list(state["rng_ranks"])
    if len(rngs) != world.size:
        raise CheckpointError(
            f"{path} was written by {len(rngs)} process(es) and this run has {world.size}; "
            f"resume with --nproc_per_node={len(rngs)} (one process per rank) to continue it "
            f"exactly."
        )
    with _mismatch(path):
        position = Position(**state["position"])
        history = [dict(row) for row in state["history"]]
        optim_state = dict(state["optim"])
        set_rng_state(rngs[world.rank], device)
    optim.set_state(optim_state)
    return position, history


@contextlib.contextmanager
def _mismatch(path: str | Path) -> Iterator[None]:
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        detail = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(
            f"{path} does not match this run ({detail[:300]}). It was written by another "
            f"ppl_vae version or for another recipe: use the recipe saved in the run dir, or "
            f"start a new run with --overwrite."
        ) from e


class DeferredInterrupt:
    """Inside the block, a first Ctrl-C (SIGINT) only sets ``pending``; the training loop checks
    it between SVI steps, writes a checkpoint and raises KeyboardInterrupt, so the checkpoint
    holds the state after a whole step. A second Ctrl-C interrupts at once, with the message
    that ``describe()`` returns (what is on disk, say). Outside the main thread, where Python
    delivers no signals, it does nothing."""

    def __init__(self, describe: Callable[[], str] | None = None) -> None:
        self.describe = describe
        self.pending = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> DeferredInterrupt:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # e.g. under nohup
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt(*([self.describe()] if self.describe else []))
        self.pending = True

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False
