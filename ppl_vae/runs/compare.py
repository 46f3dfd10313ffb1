"""Reading evaluated run dirs for the compare tables and figures (``ppl_vae.reports``
renders them)."""

from __future__ import annotations

import json
from pathlib import Path

from ..bounds import read_inference_data
from ..bounds.results import GROUP
from ..core.errors import RunDirError
from ..layout import CHECKPOINT, DIAGNOSTICS, EVAL_JSON, EVAL_NETCDF
from ..provenance import checkpoint_info
from ..reports.tables import RunResult, read_metrics
from .recipe import load_recipe
from .state import currency, refresh_command


def load_result(run_dir: str | Path) -> RunResult:
    """Reads an evaluated run dir: ``recipe.toml``, ``eval.json``, ``eval.nc``, ``metrics.csv``;
    ``current`` says whether ``eval.json`` scored the run's checkpoint as it is now."""
    path = Path(run_dir)
    recipe = load_recipe(path)
    if not (path / EVAL_JSON).is_file():
        raise RunDirError(
            f"run dir {path} has no {EVAL_JSON}; run `ppl-vae evaluate {path}` before comparing."
        )
    doc = json.loads((path / EVAL_JSON).read_text())
    estimates = doc["estimates"]
    current = currency(doc, checkpoint_info(path / CHECKPOINT))
    note = ""
    if not current:
        refresh = refresh_command(doc, path, "evaluate")
        scored = (doc.get("provenance") or {}).get("checkpoint")
        now = checkpoint_info(path / CHECKPOINT)
        if current is None:
            note = f"{EVAL_JSON} records no checkpoint (written by an older ppl_vae)"
        else:
            note = f"{EVAL_JSON} scored step {scored['step']} (epoch {scored['epoch']})"
            note += ", but the run's checkpoint is " + (
                f"now at step {now['step']} (epoch {now['epoch']})" if now else "gone"
            )
        note += f"; refresh it with: {refresh}"
    per_datapoint = None
    if (path / EVAL_NETCDF).is_file():
        per_datapoint = read_inference_data(path)[GROUP].load()
    m = recipe.model
    return RunResult(
        path.name,
        recipe.guide.name,
        recipe.objective.name,
        m.likelihood,
        estimates,
        per_datapoint,
        read_metrics(path),
        json.loads((path / DIAGNOSTICS).read_text()) if (path / DIAGNOSTICS).is_file() else None,
        current,
        note,
    )
