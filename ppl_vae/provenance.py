"""Where a result came from, and whether a run is being trained right now.

Every result file of a run dir (``eval.json``, ``eval.nc``'s attributes, ``scores.csv``'s header,
``bdmc.json``, ``diagnostics.json``, ``summary.json``) carries a ``provenance`` record (``record``):

- ``checkpoint``: the checkpoint it scored: its ``step``, ``epoch`` (epochs done) and the
  SHA-256 of the file, so that a later checkpoint is told apart even at the same step;
- ``recipe_sha256``: the SHA-256 of the run's resolved ``recipe.toml``;
- ``versions`` of ppl_vae, torch, pyro and arviz; the ``device``, torch's ``threads`` and the
  ``seed``; the ``command`` line; the ``started`` and ``ended`` times (UTC, ISO 8601).

``ppl_vae.runs.state`` says whether such a record still names the run's checkpoint.

A training process holds ``training.lock`` in its run dir (``TrainingLock``): its pid, host and
the pid's start time (so that a recycled pid is not taken for it). A second training of the
same dir is refused while the lock is held by a live process; a lock whose process is gone was
left by a killed run, and is stale. On release the lock leaves ``state.json`` saying how the
training ended: ``finished``, ``interrupted`` (Ctrl-C) or ``failed`` (with the error).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .core.errors import CheckpointError, RunDirError
from .layout import CHECKPOINT, LOCK, RECIPE, STATE
from .storage import load_checkpoint, write_json

__all__ = [
    "TrainingLock",
    "checkpoint_info",
    "lock_holder",
    "record",
    "refuse_if_locked",
    "utc_now",
]


def utc_now() -> str:
    """The time now, UTC, to the second: ``2026-12-02T18:50:41Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_info(path: str | Path) -> dict[str, Any] | None:
    """``step``, ``epoch`` (epochs done) and ``sha256`` of the checkpoint at ``path``; None if
    there is none. The hash is of the bytes read for the position, so the three agree."""
    path = Path(path)
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        buffer = io.BytesIO(data)
        state = torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file: load_checkpoint says what is wrong with it
        load_checkpoint(path)
        raise CheckpointError(f"checkpoint {path} cannot be read ({e}).") from e
    if not isinstance(state, dict):
        load_checkpoint(path)  # raises: not a ppl_vae checkpoint
    pos = state.get("position") or {}
    return {
        "step": int(pos.get("step", state.get("step", 0))),
        "epoch": int(pos.get("epoch", state.get("epoch", 0))),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def versions() -> dict[str, str | None]:
    found = {}
    for dist in ("ppl_vae", "torch", "pyro-ppl", "arviz"):
        try:
            found[dist.replace("-ppl", "")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist.replace("-ppl", "")] = None
    return found


def record(
    run_dir: str | Path | None,
    *,
    started: str,
    seed: int | None = None,
    device: str | torch.device | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance of a result computed from the run in ``run_dir`` between ``started``
    (``utc_now()`` before the work) and now. ``checkpoint`` is the ``checkpoint_info`` of what
    was scored, read before the work began (default: the run dir's checkpoint now)."""
    run = Path(run_dir) if run_dir is not None else None
    if checkpoint is None and run is not None:
        checkpoint = checkpoint_info(run / CHECKPOINT)
    recipe = run / RECIPE if run is not None else None
    return {
        "checkpoint": checkpoint,
        "recipe_sha256": file_sha256(recipe) if recipe is not None and recipe.is_file() else None,
        "versions": versions(),
        "device": str(device) if device is not None else None,
        "threads": torch.get_num_threads(),
        "seed": seed,
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None,
        "started": started,
        "ended": utc_now(),
    }


# --- the training lock ---------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run dir's lock, and whether that process still runs."""

    pid: int
    host: str
    started: str
    command: str | None
    alive: bool

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}, since {self.started}"


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell a recycled pid from
    the one that wrote a lock; None where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


def lock_holder(run_dir: str | Path) -> Holder | None:
    """The holder of ``run_dir``'s training lock, or None if nobody holds it. A holder on this
    host whose process is gone has ``alive = False`` (a stale lock); one on another host is
    taken to be alive."""
    path = Path(run_dir) / LOCK
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # half-written: its writer is starting right now
        return Holder(-1, "?", "?", None, True)
    here = doc.get("host") == socket.gethostname()
    alive = _alive(int(doc["pid"]), doc.get("pid_start")) if here else True
    return Holder(
        int(doc["pid"]), doc.get("host", "?"), doc.get("started", "?"), doc.get("command"), alive
    )


def refuse_if_locked(run_dir: str | Path) -> Holder | None:
    """Raises RunDirError if a live process trains in ``run_dir``; returns a stale holder."""
    holder = lock_holder(run_dir)
    if holder is not None and holder.alive:
        raise RunDirError(
            f"run dir {run_dir} is being trained by {holder.describe()}; wait for it to finish "
            f"(`ppl-vae info {run_dir}` shows how far it is), stop that process, or pass --out "
            f"to train elsewhere."
        )
    return holder


class TrainingLock(contextlib.AbstractContextManager):
    """Holds ``run_dir/training.lock`` while training, and writes ``state.json`` on release.

    Entering refuses a dir that a live process trains (RunDirError) and takes over a stale lock.
    Leaving, by any exit, removes the lock (if it is still this process's) and records how the
    training ended: ``finished``, ``interrupted`` (KeyboardInterrupt) or ``failed``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.stale: Holder | None = None

    def __enter__(self) -> TrainingLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stale = refuse_if_locked(self.run_dir)
        if self.stale is not None:
            self.path.unlink(missing_ok=True)
        doc = {
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "host": socket.gethostname(),
            "started": utc_now(),
            "command": shlex.join(sys.argv) if sys.argv else None,
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another process took it between the check and now
            refuse_if_locked(self.run_dir)
            raise
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        (self.run_dir / STATE).unlink(missing_ok=True)
        return self

    def __exit__(self, kind, error, tb) -> None:
        state: dict[str, Any] = {"state": "finished", "ended": utc_now()}
        if kind is not None:
            interrupted = issubclass(kind, KeyboardInterrupt)
            state["state"] = "interrupted" if interrupted else "failed"
            if not interrupted:
                state["error"] = f"{kind.__name__}: {error}"
        with contextlib.suppress(OSError):
            write_json(self.run_dir / STATE, state)
        holder = lock_holder(self.run_dir)
        if holder is not None and holder.pid == os.getpid():
            self.path.unlink(missing_ok=True)
