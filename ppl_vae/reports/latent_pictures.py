"""Pictures of the latent space: traversals of the active units, latent codes coloured by
k-means cluster and by label, and the KL per unit as bars with the active units marked.

Traversals: for each active unit u (the ``MAX_TRAVERSALS`` with the largest KL), z = E_q[z | x]
of one test image, with z_u replaced by t sigma_u for ``steps`` values of t from -3 to 3
(sigma_u: the prior's standard deviation of that unit, 1 for N(0, I)); each row shows
E[x | z] along the sweep. Grids go through ``reports.pictures.show_grid``; the two figures
through ``reports.figures`` at its DPI, so their pixel sizes are their inches times 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.contract import HasPrior, has
from ..core.errors import InputError
from ..layout import CLUSTERS_PNG, KL_UNITS_PNG, TRAVERSALS_PNG
from .figures import figure, finish, marker_size
from .pictures import decode, show_grid

MAX_TRAVERSALS = 12  # rows of the traversal picture
MAX_POINTS = 2000  # points drawn in the cluster picture (the first ones; clustering uses all)
STEPS = 11  # columns: t = -3, -2.4, ..., 3
CLUSTER_SIZE = (5.0, 4.0)  # inches per panel of the cluster figure
KL_SIZE = (8.0, 3.0)  # inches per site of the KL bar chart
ACTIVE, INACTIVE = "C0", "0.7"  # bar colours of the KL chart


def traversal_grid(
    model: Any, code: torch.Tensor, units: Sequence[int], sd: torch.Tensor, steps: int = STEPS
) -> torch.Tensor:
    """A grid ``[3, H, W]``: one row per unit u, E[x | z] with z = ``code`` but z_u = t sd_u,
    t from -3 to 3 in ``steps`` columns."""
    from torchvision.utils import make_grid

    if not units:
        raise InputError("a traversal needs at least one unit to sweep.")
    t = torch.linspace(-3, 3, steps, dtype=code.dtype)
    z = code.reshape(1, 1, -1).repeat(len(units), steps, 1)
    for row, u in enumerate(units):
        z[row, :, u] = t * sd[u]
    dtype = next(model.parameters()).dtype
    images = decode(model, z.reshape(-1, z.shape[-1]).to(dtype))
    return make_grid(images, nrow=steps, padding=2, pad_value=1.0)


def plot_traversals(
    model: Any, code: torch.Tensor, units: Sequence[int], kl: Sequence[float], sd, path=None
):
    """The traversal grid as a figure, rows labelled with the unit and its KL."""
    grid = traversal_grid(model, code, units, sd)
    rows = [f"z_{u} ({kl[u]:.2f} nats)" for u in units]
    cols = [f"{round(t, 1) + 0.0:+.1f}" for t in torch.linspace(-3, 3, STEPS).tolist()]
    title = "Traversals of the active units: E[x | z], z_u = t sd_u, others at E_q[z | x]"
    return show_grid(grid, title, path, rows=rows, cols=cols)


def project_2d(codes: torch.Tensor) -> tuple[np.ndarray, tuple[str, str]]:
    """Codes ``[N, D]`` in 2-D: themselves when D <= 2, else their first two principal
    components (scikit-learn's PCA); and the axis names."""
    z = codes.double().cpu().numpy()
    if z.shape[1] == 2:
        return z, ("z_1", "z_2")
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], 1), ("z_1", "")
    from sklearn.decomposition import PCA

    return PCA(2, random_state=0).fit_transform(z), ("PC 1 of E_q[z|x]", "PC 2 of E_q[z|x]")


def _palette(n: int) -> list | None:
    """``n`` distinct colours (tab10, or tab20 past 10), or None past 20: too many to name."""
    from matplotlib import colormaps

    if n > 20:
        return None
    return list(colormaps["tab10" if n <= 10 else "tab20"].colors[:n])


def _scatter_groups(ax, points, groups, colours, names, title, size):
    """One scatter per group with its colour and legend entry; past 20 groups, one scatter
    on a continuous colour map with a colour bar instead of a legend."""
    if colours is None:
        art = ax.scatter(*points.T, c=groups, cmap="viridis", s=size, alpha=0.7, lw=0)
        ax.figure.colorbar(art, ax=ax, label=title)
        return
    for g, colour, name in zip(np.unique(groups), colours, names, strict=True):
        at = groups == g
        ax.scatter(*points[at].T, color=colour, s=size, alpha=0.7, lw=0, label=name)
    legend = ax.legend(fontsize="x-small", loc="best", title=title, ncols=2)
    legend.get_title().set_fontsize("x-small")
    for handle in legend.legend_handles:  # the legend's dots the same size at any n
        handle.set_sizes([20.0])
        handle.set_alpha(1.0)


def plot_clusters(
    codes: torch.Tensor,
    assignment: np.ndarray,
    labels: torch.Tensor,
    scores: dict[str, Any],
    path: str | Path | None = None,
):
    """Two panels of the codes in 2-D, coloured by label and by k-means cluster, each with a
    legend; a cluster has the colour of the label it is matched to (``scores["mapping"]``,
    as in ``diagnostics.json``), so that the two panels agree where the clustering does. The
    first ``MAX_POINTS`` points are drawn (the projection and the scores use them all), their
    markers sized for their number (``figures.marker_size``)."""
    points, names = project_2d(codes)
    labels = np.asarray(labels.cpu().numpy() if torch.is_tensor(labels) else labels)
    points, assignment, labels = (a[:MAX_POINTS] for a in (points, assignment, labels))
    size = marker_size(len(points))
    classes = np.unique(labels)
    palette = _palette(len(classes))
    fig, axes = figure(1, 2, *CLUSTER_SIZE)
    by_label = (labels, palette, [str(v) for v in classes], "label")
    clusters = np.unique(assignment)
    mapping = {int(a): b for a, b in (scores.get("mapping") or {}).items()}
    colour_of = dict(zip(classes.tolist(), palette or [], strict=False))
    cluster_palette = _palette(len(clusters))
    if cluster_palette is not None and all(mapping.get(int(a)) in colour_of for a in clusters):
        cluster_palette = [colour_of[mapping[int(a)]] for a in clusters]
        cluster_names = [f"{a} \u2192 {mapping[int(a)]}" for a in clusters]
        cluster_title = "cluster \u2192 matched label"
    else:
        cluster_names, cluster_title = [str(a) for a in clusters], "cluster"
    by_cluster = (assignment, cluster_palette, cluster_names, cluster_title)
    for ax, (groups, colours, entries, what) in zip(axes[0], (by_cluster, by_label), strict=True):
        _scatter_groups(ax, points, groups, colours, entries, what, size)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    axes[0, 0].set_title("coloured by k-means cluster", fontsize="medium")
    axes[0, 1].set_title("coloured by label", fontsize="medium")
    fig.suptitle(
        f"Posterior means, k-means with k = {scores['k']}: NMI {scores['nmi']:.3f}, "
        f"accuracy under the best matching {scores['accuracy']:.3f}",
        fontsize="medium",
    )
    return finish(fig, path)


def plot_kl_units(doc: dict[str, Any], path: str | Path | None = None):
    """Per latent site, KL_u per unit as bars (with error bars where estimated), the active
    units in colour and the inactive ones grey."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    sites = {k: s for k, s in doc["sites"].items() if s["kl_per_unit"] is not None}
    if not sites:
        raise InputError("no latent site has a KL per unit to draw.")
    fig, axes = figure(len(sites), 1, *KL_SIZE)
    for ax, (name, s) in zip(axes[:, 0], sites.items(), strict=True):
        kl, active = np.array(s["kl_per_unit"]), np.zeros(s["units"], bool)
        active[s["active"]] = True
        x = np.arange(len(kl))
        err = np.array(s["kl_per_unit_se"]) if any(s["kl_per_unit_se"]) else None
        ax.bar(x, kl, color=np.where(active, ACTIVE, INACTIVE).tolist())
        if err is not None:
            ax.errorbar(x, kl, yerr=err, fmt="none", ecolor="k", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # units are whole numbers
        ax.set_xlabel(f"unit of site '{name}'")
        ax.set_ylabel("KL(q(z_u|x) || p(z_u)), nats")
        ax.set_title(
            f"site '{name}': KL {s['kl']:.2f} nats, {s['active_units']} of {s['units']} units "
            f"active (Var_x E_q[z_u|x] > {doc['threshold']})",
            fontsize="medium",
        )
        # Drawn handles, not the bars': an empty group of bars would lend its entry the
        # default colour, so "inactive (0)" came out in the active colour.
        handles = [
            Patch(color=ACTIVE, label=f"active ({active.sum()})"),
            Patch(color=INACTIVE, label=f"inactive ({(~active).sum()})"),
        ]
        ax.legend(handles=handles, fontsize="small")
    return finish(fig, path)


def _prior_sd(model: Any, code: torch.Tensor) -> torch.Tensor:
    from ..analysis.kl import marginals

    p = marginals(model.prior(code)) if has(model, HasPrior) else None
    return torch.ones(code.shape[-1]) if p is None else p.stddev.expand(code.shape[-1:]).cpu()


def write_diagnostic_pictures(
    model: Any,
    guide: Any,
    x: torch.Tensor,
    doc: dict[str, Any],
    extras: dict[str, Any],
    out: str | Path,
) -> tuple[dict[str, Path], list[str]]:
    """Writes ``traversals.png``, ``clusters.png`` and ``kl_units.png`` into ``out`` where
    they can be drawn; returns their paths and a note for each picture skipped."""
    out, paths, notes = Path(out), {}, []
    paths["kl_units"] = out / KL_UNITS_PNG
    try:
        plot_kl_units(doc, paths["kl_units"])
    except InputError as e:
        notes.append(f"KL bar chart skipped: {e}")
        paths.pop("kl_units")
    if extras["assignment"] is not None:
        paths["clusters"] = out / CLUSTERS_PNG
        plot_clusters(
            extras["codes"],
            extras["assignment"],
            extras["labels"],
            doc["clusters"],
            paths["clusters"],
        )
    (name, site), *others = doc["sites"].items()
    units = sorted(site["active"], key=lambda u: -(site["kl_per_unit"] or site["variance"])[u])
    if others:
        notes.append("traversals skipped: they sweep the units of a model with one latent site.")
    elif not units:
        notes.append("traversals skipped: no unit is active, so no sweep changes the image.")
    else:
        code = extras["codes"][0]
        kl = site["kl_per_unit"] or [float("nan")] * site["units"]
        try:
            sd = _prior_sd(model, code.float())
            paths["traversals"] = out / TRAVERSALS_PNG
            plot_traversals(model, code, units[:MAX_TRAVERSALS], kl, sd, paths["traversals"])
        except InputError as e:
            paths.pop("traversals", None)
            notes.append(f"traversals skipped: {e}")
    return paths, notes
