"""``diagnose_run``: the latent-space diagnostics of a trained run, written into a folder as
``diagnostics.json`` and pictures; ``write_diagnostics`` does the same for any model and
guide (``ppl_vae.analysis.diagnose`` computes the document)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..analysis.diagnose import diagnose_parts
from ..analysis.units import NUM_SAMPLES, THRESHOLD
from ..layout import DIAGNOSTICS, pictures_dir
from ..provenance import record, utc_now
from ..reports.latent_pictures import write_diagnostic_pictures
from ..storage import write_json
from .state import load_scored


def write_diagnostics(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    out: str | Path,
    labels: torch.Tensor | None = None,
    *,
    pictures: bool = True,
    threshold: float = THRESHOLD,
    num_samples: int = NUM_SAMPLES,
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """``ppl_vae.analysis.diagnose``'s document for ``model`` and ``guide`` on ``x``, written
    into the folder ``out`` as ``diagnostics.json``, with the pictures in ``out/pictures`` for
    image data (``pictures`` in the returned dict names them)."""
    doc, extras = diagnose_parts(model, guide, x, labels, threshold, num_samples, batch_size, seed)
    _write(model, guide, x, doc, extras, Path(out), pictures)
    return doc


def _write(model, guide, x, doc: dict, extras: dict, out: Path, pictures: bool) -> None:
    if pictures:
        paths, skipped = write_diagnostic_pictures(model, guide, x, doc, extras, pictures_dir(out))
        doc["pictures"] = {k: str(v) for k, v in paths.items()}
        doc["notes"] += skipped
    write_json(out / DIAGNOSTICS, doc)


def diagnose_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    subset: int = 0,
    num_samples: int = NUM_SAMPLES,
    pictures: bool = True,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Diagnoses a trained run on its ``split`` (the first ``subset`` points if > 0) and writes
    ``diagnostics.json`` into the folder ``out`` (default: the run dir) and, for image data, the
    pictures into ``out/pictures``. Returns the document (with ``pictures``: name -> path)."""
    started = utc_now()
    run, scored, _ = load_scored(run_dir, data_dir, device, what="diagnose")
    x = run.data.split(split)[: subset or None]
    labels = run.data.labels.get(split)
    labels = None if labels is None else labels[: len(x)]
    run.model.eval()
    run.guide.eval()
    doc, extras = diagnose_parts(
        run.model, run.guide, x, labels, THRESHOLD, num_samples, 1000, seed
    )
    doc.update(run=str(run_dir), split=split)
    doc["provenance"] = record(
        run.path, started=started, seed=seed, device=run.device, checkpoint=scored
    )
    _write(run.model, run.guide, x, doc, extras, Path(out or run_dir), pictures)
    return doc
