"""``sample_run``: the pictures of a trained run, as its model kind draws them (``ModelKind.
pictures``: prior samples and reconstructions, the analogies of a model with labels, the
completions of the CVAE), and its training curves."""

from __future__ import annotations

from pathlib import Path

from ..layout import TRAINING_CURVES, pictures_dir
from ..reports.label_pictures import check_label
from ..reports.plots import plot_training_curves
from ..reports.tables import read_metrics
from .build import model_kind
from .kinds import Pictures
from .run import load_run


def sample_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    split: str = "test",
    subset: int = 2000,
    n: int = 64,
    label: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    data_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Draws the run's pictures into the folder ``out`` (default: ``RUN/pictures``) from the
    first ``subset`` points of ``split`` (0: all), with ``n`` prior samples and, for a model with
    labels, samples of class ``label``. Returns picture name -> path."""
    run = load_run(run_dir, data_dir, device)
    folder = Path(out) if out is not None else pictures_dir(run.path)
    x = run.data.split(split)[: subset or None]
    check_label(run.model, label)  # --label on a run without labels: a clear error
    cond = run.data.cond.get(split)
    p = Pictures(
        run.model,
        run.guide,
        x,
        folder,
        labels=run.data.labels.get(split),
        cond=None if cond is None else cond[: len(x)],
        label=label,
        n=n,
        seed=seed,
    )
    paths = model_kind(run.recipe).pictures(p)
    paths["training_curves"] = folder / TRAINING_CURVES
    plot_training_curves({run.path.name: read_metrics(run.path)}, paths["training_curves"])
    return paths
