"""Comparison tables of evaluated runs: one row per run, written as markdown and CSV.

A ``RunResult`` gathers what one run's evaluation left behind: its label (guide, objective,
likelihood, from ``recipe.toml``), the dataset means of ``eval.json``, the per-data-point values
of ``eval.nc`` and the training curve of ``metrics.csv``. ``comparison_table`` turns a list of
them into rows with, for every K that was evaluated,

    IWAE_K (with its standard error), gap_K = IWAE_K - ELBO (with the standard error of the
    per-data-point difference), and the ELBO, mean ESS and share of k-hat above 0.7 at K_max.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..bounds import Bounds, mean_and_stderr, read_inference_data, to_inference_data
from ..bounds.results import GROUP
from ..errors import InputError
from ..layout import COMPARE_CSV, COMPARE_MD, EVAL_JSON, EVAL_NETCDF, METRICS
from ..runs.run import RunDirError, load_recipe
from ..storage import write_text

KHAT_BAD = 0.7  # Vehtari et al. (2024): above 0.7 importance sampling is unreliable


@dataclass
class RunResult:
    """One evaluated run: its label parts, ``eval.json`` estimates, per-data-point values
    (the ``bounds`` group of ``eval.nc``: iwae over (datapoint, k), elbo, ess, khat, label over
    datapoint) and training metrics (rows of ``metrics.csv``)."""

    name: str
    guide: str
    objective: str
    likelihood: str
    estimates: list[dict]
    per_datapoint: Any = None  # xarray.Dataset
    metrics: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.guide}, {self.objective}, {self.likelihood})"

    @property
    def ks(self) -> list[int]:
        return sorted(r["k"] for r in self.estimates if r["estimator"] == "iwae")

    def estimate(self, estimator: str, k: int | None = None) -> dict | None:
        """The ``eval.json`` record of ``estimator`` (at ``k``, if given), or None."""
        for r in self.estimates:
            if r["estimator"] == estimator and (k is None or r["k"] == k):
                return r
        return None


def load_result(run_dir: str | Path) -> RunResult:
    """Reads an evaluated run dir: ``recipe.toml``, ``eval.json``, ``eval.nc``, ``metrics.csv``."""
    path = Path(run_dir)
    recipe = load_recipe(path)
    if not (path / EVAL_JSON).is_file():
        raise RunDirError(
            f"run dir {path} has no {EVAL_JSON}; run `ppl-vae evaluate {path}` before comparing."
        )
    estimates = json.loads((path / EVAL_JSON).read_text())["estimates"]
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
    )


def read_metrics(run_dir: str | Path) -> list[dict[str, float | str]]:
    """The rows of a run's ``metrics.csv`` (one per epoch), numbers as floats; [] if absent."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def from_bounds(
    name: str,
    bounds: Bounds,
    guide: str = "?",
    objective: str = "?",
    likelihood: str = "?",
    labels: torch.Tensor | None = None,
    metrics: Sequence[dict] = (),
) -> RunResult:
    """A RunResult from an in-memory ``evaluate()`` result, for notebooks."""
    ds = to_inference_data(bounds, labels)[GROUP]
    return RunResult(name, guide, objective, likelihood, bounds.estimates(), ds, list(metrics))


def gap(result: RunResult, k: int) -> tuple[float, float]:
    """Mean and standard error of the per-data-point gap IWAE_K - ELBO (the error is NaN
    without per-data-point values)."""
    ds = result.per_datapoint
    if ds is not None:
        diff = torch.as_tensor(ds["iwae"].sel(k=k).values - ds["elbo"].values)
        return mean_and_stderr(diff)
    return result.estimate("iwae", k)["mean"] - result.estimate("elbo")["mean"], math.nan


def comparison_table(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run, in nats per data point; a K a run was not evaluated at is NaN.

    Columns: run, guide, objective, likelihood, n, k_max, elbo, elbo_se, iwae_K, iwae_K_se,
    gap_K, gap_K_se (for every K of any run), ess (mean ESS at k_max), khat_above_0.7.
    """
    if not results:
        raise InputError("comparison_table needs at least one run.")
    ks = sorted({k for r in results for k in r.ks})
    rows = []
    for res in results:
        elbo = res.estimate("elbo")
        row: dict[str, Any] = {
            "run": res.name,
            "guide": res.guide,
            "objective": res.objective,
            "likelihood": res.likelihood,
            "n": elbo["n"],
            "k_max": elbo["k"],
            "elbo": elbo["mean"],
            "elbo_se": elbo["stderr"],
        }
        for k in ks:
            iw = res.estimate("iwae", k)
            row[f"iwae_{k}"] = iw["mean"] if iw else math.nan
            row[f"iwae_{k}_se"] = iw["stderr"] if iw else math.nan
        for k in ks:
            row[f"gap_{k}"], row[f"gap_{k}_se"] = gap(res, k) if k in res.ks else (math.nan,) * 2
        ess, khat = res.estimate("ess"), res.estimate(f"khat_above_{KHAT_BAD}")
        row["ess"] = ess["mean"] if ess else math.nan
        row[f"khat_above_{KHAT_BAD}"] = khat["mean"] if khat else math.nan
        rows.append(row)
    return rows


def _pm(row: dict, key: str) -> str:
    mean, se = row[key], row[f"{key}_se"]
    if math.isnan(mean):
        return ""
    return f"{mean:.2f}" if math.isnan(se) else f"{mean:.2f} ± {se:.2f}"


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table: mean ± standard error in one cell, K_max in the ESS header."""
    ks = [int(c[5:]) for c in rows[0] if c.startswith("iwae_") and not c.endswith("_se")]
    k_max = {r["k_max"] for r in rows}
    at = f" (K={k_max.pop()})" if len(k_max) == 1 else " (K_max)"
    head = ["run", "guide", "objective", "likelihood", "N", f"ELBO{at}"]
    head += [f"IWAE_{k}" for k in ks] + [f"gap_{k}" for k in ks if k > 1]
    head += [f"ESS{at}", f"k-hat > {KHAT_BAD}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    for r in rows:
        khat = r[f"khat_above_{KHAT_BAD}"]
        cells = [r["run"], r["guide"], r["objective"], r["likelihood"], str(r["n"]), _pm(r, "elbo")]
        cells += [_pm(r, f"iwae_{k}") for k in ks] + [_pm(r, f"gap_{k}") for k in ks if k > 1]
        cells += [
            "" if math.isnan(r["ess"]) else f"{r['ess']:.1f}",
            "" if math.isnan(khat) else f"{100 * khat:.1f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, floats written exactly (``repr``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows({k: repr(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def write_comparison(results: Sequence[RunResult], out_dir: str | Path) -> dict[str, Path]:
    """Writes ``compare.md`` and ``compare.csv`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_table(results)
    paths = {"markdown": out / COMPARE_MD, "csv": out / COMPARE_CSV}
    write_text(paths["markdown"], to_markdown(rows))
    write_text(paths["csv"], to_csv(rows))
    return paths
