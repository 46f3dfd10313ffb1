"""Figures of evaluated runs, drawn with matplotlib's object API on the Agg canvas.

Every function returns a ``matplotlib.figure.Figure`` (shown inline by Jupyter) and, given
``path``, also writes it as a PNG. Figures are made without ``pyplot``, so nothing here touches
the global backend or keeps figures alive; matplotlib is imported only when a figure is drawn.
The helpers they share, and the k-hat panels, are in ``figures``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..bounds.registry import ESTIMATORS, OPT_IN
from ..bounds.spec import Estimator
from ..layout import TRAINING_CURVES
from .figures import KHAT_OK, figure, finish, k_axis, legend_below, marker_size, plot_khat
from .tables import RunResult, gap

__all__ = ["KHAT_OK", "plot_bound_vs_k", "plot_gap", "plot_khat", "plot_latent", "plot_scores"]
__all__ += ["plot_training_curves", "write_figures"]

# How the bound-vs-K figure draws the registered estimators of log p(x): a per-K one as a line
# with markers, one at K_max as a horizontal line; the names go into the panel's title.
PER_K_STYLES = (("o", "solid"), ("s", "solid, squares"), ("^", "solid, triangles"))
AT_K_MAX_STYLES = (("--", "dashed"), ("-.", "dash-dot"), ((0, (5, 1, 1, 1, 1, 1)), "dash-dot-dot"))
FEW_POINTS = 10  # a training curve of at most this many points is drawn with markers


def _bounds_drawn(results: Sequence[RunResult] = ()) -> list[tuple[Estimator, Any, str]]:
    """The registered estimators of log p(x), per-K ones first, each with its style; an opt-in
    one (``registry.OPT_IN``: AIS) only where one of ``results`` has it."""
    have = {r["estimator"] for res in results for r in res.estimates}
    drawn = [e for e in ESTIMATORS.values() if e.bound and (e.name not in OPT_IN or e.name in have)]
    per_k = [e for e in drawn if e.per_k]
    flat = [e for e in drawn if not e.per_k]
    return [
        (e, style, name)
        for group, styles in ((per_k, PER_K_STYLES), (flat, AT_K_MAX_STYLES))
        for e, (style, name) in zip(group, itertools.cycle(styles))
    ]


def plot_bound_vs_k(
    results: Sequence[RunResult], path: str | Path | None = None, exact: float | None = None
):
    """Left: IWAE_K against K (log scale) with standard-error bars, one line per run, each run's
    ELBO dashed in its colour (and so every estimator of log p(x) in the registry: per-K ones
    as lines, those at K_max as horizontal lines) and, if given, the exact log p(x) dotted
    black. Right: the gap IWAE_K - ELBO, whose error bars are the standard error of the
    per-data-point difference: it cancels the spread of log p(x) across data points, which
    dominates the left bars."""
    fig, ((ax, gap_ax),) = figure(1, 2, width=5.0)
    drawn = _bounds_drawn(results)
    for i, res in enumerate(results):
        labelled = False
        for e, style, _ in drawn:
            rows = [r for r in res.estimates if r["estimator"] == e.name]
            if not rows:
                continue
            if not e.per_k:
                ax.axhline(rows[0]["mean"], color=f"C{i}", ls=style, lw=1)
                continue
            ax.errorbar(
                [r["k"] for r in rows],
                [r["mean"] for r in rows],
                yerr=[r["stderr"] for r in rows],
                marker=style,
                capsize=3,
                color=f"C{i}",
                label=None if labelled else res.label,
            )
            labelled = True
        ks = res.ks
        if ks:
            gaps = np.array([gap(res, k) for k in ks])
            se = None if np.isnan(gaps[:, 1]).any() else gaps[:, 1]
            gap_ax.errorbar(ks, gaps[:, 0], yerr=se, marker="o", capsize=3, color=f"C{i}")
        if exact is not None:
            gap_ax.axhline(exact - res.estimate("elbo")["mean"], color=f"C{i}", ls=":", lw=1)
    if exact is not None:
        ax.axhline(exact, color="black", ls=":", label="exact log p(x)")
    for a in (ax, gap_ax):
        k_axis(a, sorted({k for res in results for k in res.ks}))
    ax.set_ylabel("nats per data point")
    ax.set_title(", ".join(f"{e.title}{'_K' if e.per_k else ''} ({n})" for e, _, n in drawn))
    gap_ax.set_ylabel("nats per data point")
    gap_ax.set_title("IWAE_K - ELBO" + (" (dotted: log p(x) - ELBO)" if exact is not None else ""))
    legend_below(fig)
    return finish(fig, path)


def plot_gap(results: Sequence[RunResult], path: str | Path | None = None):
    """Scatter of the per-data-point gap IWAE_Kmax - ELBO against the data point's ELBO."""
    fig, ((ax,),) = figure()
    for i, res in enumerate(results):
        ds = res.per_datapoint
        if ds is None:
            continue
        k = max(res.ks)
        gap = ds["iwae"].sel(k=k).values - ds["elbo"].values
        ax.scatter(
            ds["elbo"].values, gap, s=6, alpha=0.5, color=f"C{i}", label=f"{res.label}, K={k}"
        )
    ax.set_xlabel("ELBO of the data point (nats)")
    ax.set_ylabel("IWAE_K - ELBO (nats)")
    ax.set_title("Per-data-point gap between IWAE and ELBO")
    legend_below(fig, markerscale=3)
    return finish(fig, path)


def plot_training_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path | None = None
):
    """Train (solid) and validation (dashed) ELBO per epoch, from rows of ``metrics.csv``
    keyed by run label: one colour per run, named below the axes when there are several. A
    line of at most ``FEW_POINTS`` points has markers (a short run would otherwise be a dot
    or a stub), and a run of one epoch says so in the title."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, ((ax,),) = figure()
    styles = (("train_elbo", "-", "o", "train"), ("valid_elbo", "--", "s", "validation"))
    marked = False
    for i, rows in enumerate(curves.values()):
        for key, style, marker, _ in styles:
            pts = [(r["epoch"], r[key]) for r in rows if key in r]
            if pts:
                few = len(pts) <= FEW_POINTS
                marked |= few
                ax.plot(
                    *zip(*pts, strict=True),
                    style,
                    marker=marker if few else "",
                    color=f"C{i}",
                    fillstyle="none" if marker == "s" else "full",
                )
    # One entry per line style and one per run, not one per line: 2 + n entries, not 2n.
    kinds = [
        Line2D([], [], color="0.3", ls=st, marker=m if marked else "", label=name)
        for _, st, m, name in styles
    ]
    for h in kinds[1:]:
        h.set_fillstyle("none")
    ax.legend(handles=kinds, fontsize="small")
    epochs = sorted({r["epoch"] for rows in curves.values() for r in rows})
    if len(epochs) <= 12:  # every epoch a tick, as a whole number (a lone epoch included)
        ax.set_xticks(epochs, [f"{e:g}" for e in epochs])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO (nats per data point)")
    note = " (one epoch)" if len(epochs) == 1 else ""
    if len(curves) == 1:
        ax.set_title(f"Training curves: {next(iter(curves))}{note}")
    else:
        ax.set_title(f"Training curves{note}")
        runs = [Line2D([], [], color=f"C{i}", lw=3, label=lab) for i, lab in enumerate(curves)]
        legend_below(fig, handles=runs)
    return finish(fig, path)


def plot_latent(
    z2: Any,
    labels: Any = None,
    path: str | Path | None = None,
    axis_names: Sequence[str] = ("z_1", "z_2"),
):
    """Scatter of 2-D latent codes ``[N, 2]``, coloured by class label when given."""
    z2 = np.asarray(z2)
    size = marker_size(len(z2))
    fig, ((ax,),) = figure(width=5.5, height=5.0)
    if labels is None:
        ax.scatter(z2[:, 0], z2[:, 1], s=size, alpha=0.6)
    else:
        labels = np.asarray(labels)
        for c in np.unique(labels):
            m = labels == c
            ax.scatter(z2[m, 0], z2[m, 1], s=size, alpha=0.6, label=str(c))
        # beside the axes: inside, ten classes cover a corner of the codes
        legend = fig.legend(title="label", fontsize="small", loc="outside right upper")
        for handle in legend.legend_handles:  # the legend's dots the same size at any n
            handle.set_sizes([20.0])
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("Latent codes of test images")
    return finish(fig, path)


def plot_scores(
    scores: Mapping[str, Any],
    path: str | Path | None = None,
    title: str = "Per-data-point scores",
    xlabel: str = "IWAE log p(x) (nats)",
):
    """Overlaid histograms of per-data-point scores (e.g. IWAE log p(x)) keyed by dataset."""
    fig, ((ax,),) = figure()
    values = {k: np.asarray(v, dtype=float) for k, v in scores.items()}
    lo = min(v.min() for v in values.values())
    hi = max(v.max() for v in values.values())
    bins = np.linspace(math.floor(lo), math.ceil(hi), 60)
    for i, (name, v) in enumerate(values.items()):
        ax.hist(v, bins=bins, alpha=0.5, color=f"C{i}", label=f"{name} (n={len(v)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("data points")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return finish(fig, path)


def write_figures(results: Sequence[RunResult], out: str | Path) -> dict[str, Path]:
    """Writes ``bound_vs_k.png``, ``khat.png`` (when a run has k-hat), ``gap.png`` and
    ``training_curves.png`` (when a run has metrics) into ``out``; returns their paths."""
    out = Path(out)
    paths = {"bound_vs_k": out / "bound_vs_k.png", "gap": out / "gap.png"}
    plot_bound_vs_k(results, paths["bound_vs_k"])
    plot_gap(results, paths["gap"])
    if any(r.per_datapoint is not None and "khat" in r.per_datapoint for r in results):
        paths["khat"] = out / "khat.png"
        plot_khat(results, paths["khat"])
    if any(r.metrics for r in results):
        paths["training_curves"] = out / TRAINING_CURVES
        plot_training_curves({r.label: r.metrics for r in results}, paths["training_curves"])
    return paths
