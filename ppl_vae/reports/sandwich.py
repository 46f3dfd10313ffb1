"""The BDMC sandwich as a picture: per data point, lower (forward AIS) <= log p(x) <= upper
(reverse AIS), at each number of annealing steps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .figures import figure, finish, log_ticks


def plot_sandwich(rows: Sequence[dict], path: str | Path | None = None):
    """``rows``: one dict per step count with ``steps`` and per-point ``lower`` and ``upper``
    (lists), as in ``bdmc.json``. Left: per data point, each step count's lower (down
    triangles) and upper (up triangles) bound, less the midpoint of the sandwich at the largest
    step count; points sorted by that sandwich's width, a symmetric-log axis. Right: every
    point's gap upper - lower against the number of steps (symmetric-log: both bounds are
    stochastic, so a gap can come out below zero), the mean gap as a line, the 1-nat goal
    dotted."""
    rows = sorted(rows, key=lambda r: r["steps"])
    fig, ((ax, gap_ax),) = figure(1, 2, width=5.0, height=3.6)
    lows = [np.asarray(r["lower"]) for r in rows]
    ups = [np.asarray(r["upper"]) for r in rows]
    mid = (lows[-1] + ups[-1]) / 2
    order = np.argsort(ups[-1] - lows[-1])
    idx = np.arange(len(order))
    for i, r in enumerate(rows):
        kw = dict(color=f"C{i}", ms=3, ls="none")
        ax.plot(idx, (lows[i] - mid)[order], "v", label=f"T = {r['steps']}", **kw)
        ax.plot(idx, (ups[i] - mid)[order], "^", **kw)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_yscale("symlog", linthresh=0.1)
    t_max = rows[-1]["steps"]
    ax.set_xlabel(f"simulated data point (sorted by its gap at T = {t_max})")
    ax.set_ylabel(f"bound minus the midpoint of forward\nand reverse AIS at T = {t_max} (nats)")
    ax.set_title("lower (v) and upper (^) bounds")
    ax.legend(fontsize=8, loc="upper left")
    steps = [r["steps"] for r in rows]
    gaps = [u - lo for u, lo in zip(ups, lows, strict=True)]
    for s, g in zip(steps, gaps, strict=True):
        gap_ax.plot(np.full(len(g), s), g, ".", color="0.6", ms=3, alpha=0.6)
    gap_ax.plot(steps, [g.mean() for g in gaps], "o-", color="C0", label="mean gap")
    gap_ax.axhline(1.0, color="k", ls=":", lw=1, label="1 nat")
    log_ticks(gap_ax, steps)  # the step counts run, as plain numbers
    gap_ax.axhline(0, color="k", lw=0.6)
    gap_ax.set_yscale("symlog", linthresh=0.01)
    gap_ax.set_xlabel("annealing steps T")
    gap_ax.set_ylabel("upper - lower, nats")
    gap_ax.set_title("BDMC gap per data point")
    gap_ax.legend(loc="best", fontsize=8)
    return finish(fig, path)
