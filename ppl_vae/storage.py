"""Files that must survive crashes: atomic writes and checkpoints that hold only tensors.

Every write goes to a temporary file in the same folder, is fsynced, then renamed over the
target with ``os.replace``; a crash or a full disk leaves the previous file intact. The file
gets the permissions ``open`` would give it (0666 less the umask), not the temporary file's
0600. Checkpoints are read with ``torch.load(weights_only=True)``, so a file holding pickled
objects is refused.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .core.errors import CheckpointError, WriteError

FORMAT = "ppl_vae.checkpoint"
VERSION = 1
TMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Raises WriteError (an OSError with the same errno) when the disk refuses, after removing
    the temporary file; ``path`` then still holds what it held before.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            _write(f, data)
        commit(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(
                e.errno,
                f"could not write {path} ({e.strerror or e}); its previous version is "
                f"intact. Free disk space (or fix the folder's permissions) and run again.",
            ) from e
        raise


def commit(tmp: str | Path, path: str | Path) -> None:
    """Gives the finished file ``tmp`` the umask's permissions, makes it durable (fsync), renames
    it over ``path`` in one step (``os.replace``; same folder), then asks for the rename to be
    made durable too."""
    set_default_mode(tmp)  # mkstemp made it 0600: readable by its owner only
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:  # best effort: some file systems refuse fsync on a folder, and the new file is whole
        dir_fd = os.open(Path(path).parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def set_default_mode(path: str | Path) -> None:
    """Gives ``path`` the permissions a plain ``open(path, "w")`` would: 0666 less the umask."""
    try:
        os.chmod(path, 0o666 & ~umask())
    except OSError:  # a file system without POSIX modes: the write matters more than its mode
        pass


def umask() -> int:
    """The process's umask, read from /proc where it can be without setting it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # os.umask can only be read by setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write(f: io.BufferedWriter, data: bytes) -> None:
    f.write(data)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Removes what an atomic write killed half-way left in ``folder``; returns the paths."""
    stale = sorted(Path(folder).glob(f".*{TMP_SUFFIX}"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    """Atomically writes a text file."""
    atomic_write(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically writes ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically saves a dict of tensors and primitive values."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint``; anything else raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror}).") from e
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
    ) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} is damaged or holds more than tensors and plain values, so it "
            f"was not loaded ({first}). Use a checkpoint written by ppl_vae, or retrain."
        ) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ppl_vae checkpoint (no '{FORMAT}' header).")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')}; this ppl_vae reads {VERSION}."
        )
    return state
