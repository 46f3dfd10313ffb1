"""Comparison tables of evaluated runs: one row per run, written as markdown and CSV.

A ``RunResult`` gathers what one run's evaluation left behind: its label (guide, objective,
likelihood, from ``recipe.toml``), the dataset means of ``eval.json``, the per-data-point values
of ``eval.nc`` and the training curve of ``metrics.csv``. ``comparison_table`` turns a list of
them into rows with the columns of every registered estimator (``bounds.registry``), in
registry order: for every K that was evaluated,

    IWAE_K (with its standard error), gap_K = IWAE_K - ELBO (with the standard error of the
    per-data-point difference), and the ELBO, mean ESS and share of k-hat above 0.7 at K_max,

then those of any estimator registered after them. A run without an estimator gets NaN there;
an opt-in estimator (``registry.OPT_IN``: AIS) gets columns only where some run computed it.
Where some run's likelihood is discrete (its records carry bits per dimension, ``bounds.bits``),
the table gains ``bpd`` (IWAE at K_max in bits/dim, with its standard error), and ``ais_bpd``
where AIS was run too (``BPD_COLUMNS``; NaN for the other runs).
Where a run has ``diagnostics.json`` (``ppl-vae diagnose``), the table gains its latent space:
active units, KL and mutual information (``LATENT_COLUMNS``; NaN for runs without one).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..bounds import Bounds, mean_and_stderr, to_inference_data
from ..bounds.estimators import KHAT_BAD
from ..bounds.registry import ESTIMATORS, OPT_IN
from ..bounds.results import GROUP
from ..core.errors import InputError
from ..layout import COMPARE_CSV, COMPARE_MD, METRICS
from ..storage import write_text

__all__ = ["KHAT_BAD", "RunResult", "comparison_table", "from_bounds", "gap"]
__all__ += ["read_metrics", "to_csv", "to_markdown", "write_comparison"]


@dataclass
class RunResult:
    """One evaluated run: its label parts, ``eval.json`` estimates, per-data-point values
    (the ``bounds`` group of ``eval.nc``: one variable per estimator, iwae over (datapoint, k),
    elbo, ess, khat, label over datapoint) and training metrics (rows of ``metrics.csv``)."""

    name: str
    guide: str
    objective: str
    likelihood: str
    estimates: list[dict]
    per_datapoint: Any = None  # xarray.Dataset
    metrics: list[dict] = field(default_factory=list)
    latent: dict | None = None  # diagnostics.json, where ppl-vae diagnose wrote one
    # whether eval.json scored the run's checkpoint as it is now (None: cannot be told), and
    # for a stale or unverified one what happened and the command that refreshes it
    current: bool | None = True
    note: str = ""

    @property
    def label(self) -> str:
        """The run's name, then in brackets its guide, objective and likelihood, less those
        the name already says and those unknown ("?", "-"): "diagonal (elbo, bernoulli)"."""
        words = set(self.name.replace("_", " ").replace("-", " ").split()) | {self.name}
        parts = [p for p in (self.guide, self.objective, self.likelihood) if p not in words]
        parts = [p for p in parts if p not in ("?", "-", "")]
        return f"{self.name} ({', '.join(parts)})" if parts else self.name

    @property
    def n(self) -> int:
        return self.estimates[0]["n"]

    @property
    def k_max(self) -> int:
        return max(r["k"] for r in self.estimates)

    @property
    def ks(self) -> list[int]:
        """The K that IWAE_K was evaluated at."""
        return self.ks_of("iwae")

    def ks_of(self, estimator: str) -> list[int]:
        """The K of the ``eval.json`` records of ``estimator``."""
        return sorted(r["k"] for r in self.estimates if r["estimator"] == estimator)

    def estimate(self, estimator: str, k: int | None = None) -> dict | None:
        """The ``eval.json`` record of ``estimator`` (at ``k``, if given), or None."""
        for r in self.estimates:
            if r["estimator"] == estimator and (k is None or r["k"] == k):
                return r
        return None


# key in diagnostics.json -> (column key, markdown header, format)
LATENT_COLUMNS = {
    "active_units": ("active_units", "active units", "{:.0f}"),
    "kl": ("kl", "KL", "{:.2f}"),
    "mutual_information": ("mi", "MI", "{:.2f}"),
}


def _latent(res: RunResult) -> dict[str, float]:
    doc = res.latent or {}
    return {col: _nan_if_none(doc.get(key)) for key, (col, _, _) in LATENT_COLUMNS.items()}


def _nan_if_none(v: Any) -> float:
    return math.nan if v is None else float(v)


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


@dataclass(frozen=True)
class _Column:
    """One column of the comparison: its CSV key (and ``key_se`` if ``with_se``), its markdown
    header (none: CSV only), how a mean without error is written there, and its value."""

    key: str
    header: str | None
    with_se: bool
    fmt: str
    value: Callable[[RunResult], tuple[float, float]]


def _record(name: str, k: int | None, res: RunResult) -> tuple[float, float]:
    r = res.estimate(name, k)
    return (r["mean"], r["stderr"]) if r else (math.nan, math.nan)


def _gap(k: int, res: RunResult) -> tuple[float, float]:
    return gap(res, k) if k in res.ks else (math.nan, math.nan)


# estimator -> (column key, markdown header): its bits/dim at its largest K
BPD_COLUMNS = {"iwae": ("bpd", "bits/dim"), "ais": ("ais_bpd", "bits/dim (AIS)")}


def _bpd(name: str, res: RunResult) -> tuple[float, float]:
    ks = res.ks_of(name)
    r = res.estimate(name, max(ks)) if ks else None
    return (r["bpd"], r["bpd_stderr"]) if r and "bpd" in r else (math.nan, math.nan)


def _bpd_columns(have: Collection[str], at: str = "") -> list[_Column]:
    """The bits/dim columns of the estimators in ``have``; ``at`` follows IWAE's header."""
    return [
        _Column(key, head + (at if name == "iwae" else ""), True, "", partial(_bpd, name))
        for name, (key, head) in BPD_COLUMNS.items()
        if name in have
    ]


def _columns(
    ks: Mapping[str, Sequence[int]], at: str = "", skip: Collection[str] = ()
) -> list[_Column]:
    """The estimator columns, in registry order, for the K of each per-K estimator in ``ks``;
    ``at`` follows the header of an estimator at K_max; the estimators in ``skip`` have none."""
    cols = []
    for e in ESTIMATORS.values():
        if e.name in skip:
            continue
        e_ks = ks.get(e.name, [])
        if e.table is not None:
            for k, key in zip(e_ks if e.per_k else [None], e.columns(e_ks), strict=True):
                # an opt-in estimator (AIS) has settings of its own, not K_max
                head = f"{e.title}_{k}" if e.per_k else f"{e.title}{'' if e.name in OPT_IN else at}"
                value = partial(_record, e.name, k)
                cols.append(_Column(key, head, e.table == "mean_se", e.fmt, value))
        if e.name == "iwae":  # the gap compares two bounds, so it is the table's, not theirs
            # gap_1 is in the CSV only: IWAE_1 is a one-particle ELBO, so it is noise around 0.
            for k in e_ks:
                cols.append(
                    _Column(f"gap_{k}", f"gap_{k}" if k > 1 else None, True, "", partial(_gap, k))
                )
        for s in e.summaries:
            cols.append(_Column(s.name, s.title, False, s.fmt, partial(_record, s.name, None)))
    return cols


def comparison_table(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run, in nats per data point; a K a run was not evaluated at is NaN.

    Columns: run, guide, objective, likelihood, n, k_max, elbo, elbo_se, iwae_K, iwae_K_se,
    gap_K, gap_K_se (for every K of any run), ess (mean ESS at k_max), khat_above_0.7, then the
    columns of estimators registered after these, then bpd, bpd_se (and ais_bpd, ais_bpd_se)
    where some run has bits per dimension, the latent columns where some run has them, and
    last ``current`` (whether the evaluation scored the run's checkpoint as it is now; None
    where it cannot be told) and ``note`` (why not, and the command that refreshes it).
    """
    if not results:
        raise InputError("comparison_table needs at least one run.")
    per_k = [e.name for e in ESTIMATORS.values() if e.per_k]
    ks = {name: sorted({k for res in results for k in res.ks_of(name)}) for name in per_k}
    # an opt-in estimator (AIS) gets columns only when some run has it
    absent = {n for n in OPT_IN if all(res.estimate(n) is None for res in results)}
    # bits/dim columns only where some run has them (a discrete likelihood)
    bits = {r["estimator"] for res in results for r in res.estimates if "bpd" in r}
    columns = _columns(ks, skip=absent) + _bpd_columns(bits)
    rows = []
    for res in results:
        row: dict[str, Any] = {
            "run": res.name,
            "guide": res.guide,
            "objective": res.objective,
            "likelihood": res.likelihood,
            "n": res.n,
            "k_max": res.k_max,
        }
        for c in columns:
            row[c.key], se = c.value(res)
            if c.with_se:
                row[f"{c.key}_se"] = se
        if any(r.latent for r in results):
            row.update(_latent(res))
        row["current"], row["note"] = res.current, res.note
        rows.append(row)
    return rows


def _pm(row: dict, key: str) -> str:
    mean, se = row.get(key, math.nan), row.get(f"{key}_se", math.nan)
    if math.isnan(mean):
        return ""
    return f"{mean:.2f}" if math.isnan(se) else f"{mean:.2f} ± {se:.2f}"


def _ks_in(row: Mapping[str, Any], name: str) -> list[int]:
    """The K of the ``name_K`` columns of a comparison row."""
    tails = [c[len(name) + 1 :] for c in row if c.startswith(f"{name}_")]
    return [int(t) for t in tails if t.isdigit()]


# RunResult.current -> the mark after the run's name in the markdown table
STALE_MARKS = {False: " (stale)", None: " (unverified)"}


def _md_row(cells: Sequence[str]) -> str:
    """One markdown table row; a ``|`` inside a cell (``log p(x | y)``) is escaped."""
    return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table: mean ± standard error in one cell, K_max in the ELBO and ESS headers."""
    k_max = {r["k_max"] for r in rows}
    at = f" (K={k_max.pop()})" if len(k_max) == 1 else " (K_max)"
    ks = {e.name: _ks_in(rows[0], e.name) for e in ESTIMATORS.values() if e.per_k}
    absent = {n for n in OPT_IN if n not in rows[0]}
    bits = {name for name, (key, _) in BPD_COLUMNS.items() if key in rows[0]}
    columns = _columns(ks, at, absent) + _bpd_columns(bits, at)
    columns = [c for c in columns if c.header is not None]
    head = ["run", "guide", "objective", "likelihood", "N"] + [c.header for c in columns]
    latent = [v for v in LATENT_COLUMNS.values() if v[0] in rows[0]]
    head += [header for _, header, _ in latent]
    lines = [_md_row(head), "|" + "---|" * 4 + "---:|" * (len(head) - 4)]
    notes = []
    for r in rows:
        mark = STALE_MARKS.get(r.get("current", True), "")
        if mark:
            notes.append(f"- {r['run']}{mark}: {r['note']}")
        cells = [r["run"] + mark, r["guide"], r["objective"], r["likelihood"], str(r["n"])]
        for c in columns:
            mean = r.get(c.key, math.nan)
            plain = "" if math.isnan(mean) else c.fmt.format(mean)
            cells.append(_pm(r, c.key) if c.with_se else plain)
        cells += ["" if math.isnan(r[k]) else fmt.format(r[k]) for k, _, fmt in latent]
        lines.append(_md_row(cells))
    if notes:  # stale rows are marked and explained, never silently mixed in
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, floats written exactly (``repr``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows({k: repr(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def write_comparison(results: Sequence[RunResult], out: str | Path) -> dict[str, Path]:
    """Writes ``compare.md`` and ``compare.csv`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_table(results)
    paths = {"markdown": out / COMPARE_MD, "csv": out / COMPARE_CSV}
    write_text(paths["markdown"], to_markdown(rows))
    write_text(paths["csv"], to_csv(rows))
    return paths
