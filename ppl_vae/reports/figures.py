"""What the figures of ``plots`` share: a figure on the Agg canvas, how it is written, a K axis,
a legend below the axes, and the k-hat panels.

Figures are made without ``pyplot``, so nothing here touches the global backend or keeps figures
alive; matplotlib (and arviz, for k-hat) is imported only when a figure is drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..bounds.estimators import KHAT_BAD
from ..core.errors import InputError
from .tables import RunResult

KHAT_OK = 0.5  # Vehtari et al. (2024): below 0.5 the importance-sampling estimate is reliable
DPI = 100


def figure(nrows: int = 1, ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A constrained-layout figure of ``nrows`` x ``ncols`` panels, each ``width`` x ``height``
    inches, and its axes as a 2-D array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def finish(fig, path: str | Path | None):
    """Writes ``fig`` to ``path`` as a PNG when a path is given; returns ``fig``."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    return fig


def k_axis(ax, ks: Sequence[int]) -> None:
    """A log-scale K axis whose ticks are the evaluated K, written as plain numbers."""
    log_ticks(ax, ks)
    ax.set_xlabel("K (importance samples)")


def log_ticks(ax, values: Sequence[float]) -> None:
    """A log-scale x axis whose only ticks are ``values``, written as plain numbers: no
    minor ticks, so no ``2x10^0`` labels between them."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    if values:
        ax.set_xticks(values, [str(int(v)) if float(v).is_integer() else f"{v:g}" for v in values])
        ax.xaxis.set_minor_locator(NullLocator())


def marker_size(n: int) -> float:
    """The area (points^2) of a scatter marker for ``n`` points: about 21 at 200 points, 7 at
    2,000 and 3 at 10,000 (300 / sqrt(n), within 2 and 25), so that a few points stay visible
    and many do not merge into one blob."""
    return float(np.clip(300.0 / np.sqrt(max(n, 1)), 2.0, 25.0))


def legend_below(fig, **kwargs: Any) -> None:
    """The figure's legend under its axes, where it cannot cover a curve: in up to 3 columns,
    as many as fit across the figure."""
    handles = kwargs.pop("handles", None)
    if handles is None:
        handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
    if not handles:
        return
    kwargs.setdefault("fontsize", "small")
    renderer = fig.canvas.get_renderer()
    for ncols in range(min(3, len(handles)), 0, -1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=ncols, **kwargs)
        if ncols == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return
        legend.remove()  # wider than the figure: the outer columns would be cut off


def plot_khat(results: Sequence[RunResult], path: str | Path | None = None):
    """Per run, a histogram of PSIS k-hat over data points, with the thresholds 0.5 and 0.7 and
    the share of data points beyond each, beside arviz's k-hat plot by data point."""
    import arviz as az
    from matplotlib.ticker import MaxNLocator

    runs = [r for r in results if r.per_datapoint is not None and "khat" in r.per_datapoint]
    if not runs:
        raise InputError("no run has per-data-point k-hat; evaluate with a K >= 21 and k-hat on.")
    fig, axes = figure(len(runs), 2, width=5.0, height=3.4)
    for (hist, scatter), res in zip(axes, runs, strict=True):
        khat = res.per_datapoint["khat"]
        values = np.asarray(khat.values)
        hist.hist(values, bins=40, color="C0")
        marks = (KHAT_OK, "--", (values < KHAT_OK).mean(), "below")
        marks = marks, (KHAT_BAD, "-", (values > KHAT_BAD).mean(), "above")
        for line, style, share, side in marks:
            label = f"k-hat = {line}: {share:.1%} {side}"
            hist.axvline(line, color="C3", ls=style, label=label)
        hist.set_xlabel("PSIS k-hat")
        hist.set_ylabel("data points")
        hist.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 data points
        hist.set_title(res.label, fontsize="medium")
        hist.legend(fontsize="small")
        elpd = az.ELPDData(data=[khat, KHAT_BAD], index=["pareto_k", "good_k"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib deprecations raised inside arviz
            # No show_bins: arviz writes its percentages on the threshold lines; the shares
            # are in the histogram's legend instead.
            az.plot_khat(
                elpd,
                ax=scatter,
                show_hlines=True,
                markersize=12,
                textsize=10,
                hlines_kwargs={
                    "hlines": [KHAT_OK, KHAT_BAD],
                    "linestyle": ["--", "-"],
                    "color": "C3",
                    "zorder": 1,
                },
            )
        scatter.set_xlabel("data point")
        scatter.set_ylabel("PSIS k-hat")
        scatter.set_title(f"k-hat by data point (K={res.estimate('elbo')['k']})", fontsize="medium")
    return finish(fig, path)
