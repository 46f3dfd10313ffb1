"""Evaluation results on disk: ``eval.json`` for machines, an arviz netCDF for notebooks."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..layout import EVAL_JSON, EVAL_NETCDF
from ..storage import commit, write_json, write_text
from .per_point import Bounds

GROUP = "bounds"


def to_inference_data(bounds: Bounds, labels: torch.Tensor | None = None, attrs: dict = None):
    """An ``arviz.InferenceData`` with group ``bounds``: one variable per estimator, over
    (datapoint, k) for a per-K one (iwae) and over datapoint for one at K_max (elbo, ess,
    khat), plus ``label`` over datapoint when given; in nats per data point."""
    import arviz as az
    import xarray as xr

    data = {
        name: (("datapoint", "k") if bounds.estimators[name].per_k else "datapoint", v.numpy())
        for name, v in bounds.values.items()
    }
    if labels is not None:
        data["label"] = ("datapoint", labels[: bounds.n].cpu().numpy())
    coords = {"datapoint": np.arange(bounds.n), "k": np.asarray(bounds.ks)}
    attrs = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in (attrs or {}).items()}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "bounds" is our own group, outside arviz's scheme
        return az.InferenceData(**{GROUP: ds})


def write_results(
    run_dir: str | Path,
    bounds: Bounds,
    meta: dict[str, Any],
    labels: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Writes ``eval.json`` and ``eval.nc`` atomically into ``run_dir``; returns the JSON."""
    run_dir = Path(run_dir)
    result = {**meta, "estimates": bounds.estimates()}
    idata = to_inference_data(bounds, labels, meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{EVAL_NETCDF}.", suffix=".tmp", dir=run_dir)
    os.close(fd)
    try:
        idata.to_netcdf(tmp)
        commit(tmp, run_dir / EVAL_NETCDF)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_json(run_dir / EVAL_JSON, result)
    return result


def read_inference_data(run_dir: str | Path):
    """Reads ``eval.nc`` of a run back as an ``arviz.InferenceData``."""
    import arviz as az

    return az.from_netcdf(Path(run_dir) / EVAL_NETCDF)


def format_table(estimates: list[dict]) -> str:
    """A plain-text table of the estimates, in nats; where the records carry bits per
    dimension (a discrete likelihood), two more columns give them. An estimator that draws its
    own samples (AIS) has no K: its row says its steps and chains instead."""
    bits = any("bpd" in r for r in estimates)
    head = f"{'estimator':<16}{'K':>7}{'mean':>14}{'stderr':>10}{'n':>8}"
    lines = [head + (f"{'bits/dim':>12}{'stderr':>10}" if bits else "")]
    for r in estimates:
        k = "-" if "steps" in r else r["k"]
        line = f"{r['estimator']:<16}{k:>7}{r['mean']:>14.4f}{r['stderr']:>10.4f}{r['n']:>8}"
        if "bpd" in r:
            line += f"{r['bpd']:>12.4f}{r['bpd_stderr']:>10.4f}"
        if "steps" in r:
            line += f"  ({r['steps']} steps x {r['chains']} chains)"
        lines.append(line)
    return "\n".join(lines)


def write_scores(
    path: str | Path,
    bounds: Bounds,
    labels: torch.Tensor | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Writes one row per data point: ``datapoint``, ``label`` (when known), ``log_p`` (IWAE at
    the largest K, the best estimate of log p(x)), then the columns of every estimator with
    ``scores`` in registry order (``elbo``, ``iwae_K`` for every K, ...). A ``provenance``
    record goes first, as one comment line ``# provenance: {...}`` (JSON): read the file with
    ``pandas.read_csv(path, comment="#")`` or ``ppl_vae.reports.anomaly.read_scores``."""
    path = Path(path)
    columns: dict[str, torch.Tensor] = {}
    if "iwae" in bounds.values:
        columns["log_p"] = bounds.at_k_max("iwae")
    for name, v in bounds.values.items():
        e = bounds.estimators[name]
        if e.scores:
            columns.update(zip(e.columns(bounds.ks), v.T if e.per_k else [v], strict=True))
    head = ["datapoint"] + (["label"] if labels is not None else []) + list(columns)
    table = torch.stack([c.double() for c in columns.values()], 1).tolist()
    buf = io.StringIO()
    if provenance is not None:
        buf.write(f"# provenance: {json.dumps(provenance, sort_keys=True)}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for i, values in enumerate(table):
        w.writerow([i] + ([int(labels[i])] if labels is not None else []) + list(map(repr, values)))
    write_text(path, buf.getvalue())
    return path
