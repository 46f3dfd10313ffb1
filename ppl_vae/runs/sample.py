"""``sample_run``: the pictures of a trained run, as its model kind draws them (``ModelKind.
pictures``: prior samples and reconstructions, the analogies of a model with labels, the
completions of the CVAE), and its training curves."""

from __future__ import annotations

from pathlib import Path

import torch

from ..analysis.fidelity import label_fidelity, load_reference
from ..layout import TRAINING_CURVES, pictures_dir
from ..reports.label_pictures import check_label
from ..reports.plots import plot_training_curves
from ..reports.tables import read_metrics
from ..storage import write_json
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
    reference: str | Path | None = None,
) -> dict[str, Path]:
    """Draws the run's pictures into the folder ``out`` (default: ``RUN/pictures``) from the
    first ``subset`` points of ``split`` (0: all), with ``n`` prior samples and, for a model with
    labels, samples of class ``label``. With ``label`` and a ``reference`` classifier
    (``analysis.fidelity``), also scores ``FIDELITY_SAMPLES`` samples of that class and writes
    ``label_fidelity<y>.json``. Returns name -> path."""
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
    if label is not None and reference is not None:
        paths["label_fidelity"] = folder / f"label_fidelity{label}.json"
        write_json(paths["label_fidelity"], sample_fidelity(run.model, label, reference, seed))
    paths["training_curves"] = folder / TRAINING_CURVES
    plot_training_curves({run.path.name: read_metrics(run.path)}, paths["training_curves"])
    return paths


FIDELITY_SAMPLES = 1000


def sample_fidelity(model, label: int, reference: str | Path, seed: int = 0) -> dict:
    """The label fidelity of ``FIDELITY_SAMPLES`` samples E[x | y = label, z], z ~ p(z), under
    the reference classifier saved at ``reference``, with its own test accuracy."""
    net, accuracy = load_reference(reference)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        images = model.sample(FIDELITY_SAMPLES, label=label)
    return {
        **label_fidelity(net, images, label),
        "reference": str(reference),
        "reference_test_accuracy": accuracy,
    }
