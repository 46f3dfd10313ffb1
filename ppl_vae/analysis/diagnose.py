"""``diagnose``: every measure of the latent space for a model and guide, as one JSON document.

For each latent site: active units (count and Var_x E_q[z_u|x] per unit), KL per unit and in
total; for a one-site model: the information split of the KL term (ELBO surgery); with labels:
k-means clusters of the posterior means and their agreement with the labels. Where a part
cannot be computed the document says why in ``notes`` and leaves that part out (``null``).
A computation only: ``ppl_vae.runs.diagnose`` writes ``diagnostics.json`` and the pictures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..core.errors import SiteError
from .clusters import cluster_codes
from .information import information_split
from .kl import kl_per_unit
from .units import NUM_SAMPLES, THRESHOLD, posterior_means, unit_variance


def _floats(t: torch.Tensor | None) -> list[float] | None:
    return None if t is None else [float(v) for v in t]


def _site(au_var, how, kl, threshold: float) -> dict[str, Any]:
    active = au_var > threshold
    return {
        "units": len(au_var),
        "active_units": int(active.sum()),
        "active": [int(i) for i in torch.nonzero(active).flatten()],
        "variance": _floats(au_var),
        "mean_estimate": how,
        "kl": kl.total,
        "kl_se": kl.total_se,
        "kl_per_unit": _floats(kl.per_unit),
        "kl_per_unit_se": _floats(kl.per_unit_se),
        "kl_method": kl.method,
    }


def _notes_for(doc: dict[str, Any], n: int) -> list[str]:
    notes = []
    units = sum(s["units"] for s in doc["sites"].values())
    if n < units:
        notes.append(
            f"fewer data points ({n}) than latent units ({units}): the variances of the "
            f"posterior means span at most {n - 1} directions, so at most {n - 1} units can be "
            f"independently active; evaluate more points for a trustworthy count."
        )
    for name, s in doc["sites"].items():
        if not s["kl_method"].startswith("closed form"):
            notes.append(
                f"site '{name}': no closed-form KL for this guide (it is not Gaussian), so the "
                f"KL is a Monte Carlo estimate: {s['kl_method']}."
            )
    return notes


def diagnose(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    threshold: float = THRESHOLD,
    num_samples: int = NUM_SAMPLES,
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Diagnoses the latent space of ``model`` and ``guide`` over the data ``x`` ``[N, ...]``.

    Returns a JSON-ready dict: ``sites`` (per latent site: units, active units and variances,
    KL per unit and total), the totals ``active_units``, ``units`` and ``kl``, ``information``
    (the ELBO-surgery split, one-site models), ``clusters`` (with ``labels``) and ``notes``
    (what was skipped or estimated, and why). Monte Carlo parts draw from a forked RNG seeded
    with ``seed``, so the caller's random stream is left as it was. ``ppl_vae.runs.diagnose``
    writes it, with the pictures, into a folder.

    References: Burda et al. (2016) for active units; Hoffman & Johnson (2016) for the split.
    """
    return diagnose_parts(model, guide, x, labels, threshold, num_samples, batch_size, seed)[0]


def diagnose_parts(
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    threshold: float,
    num_samples: int,
    batch_size: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``diagnose``'s document, and what its pictures need: the codes E_q[z|x] ``[N, D]`` (all
    sites side by side), the labels and the k-means assignment (or None)."""
    from ..core.rng import forked_rng

    notes: list[str] = []
    with forked_rng(x.device, seed):
        means = posterior_means(guide, x, batch_size=batch_size, num_samples=num_samples)
        kls = kl_per_unit(model, guide, x, batch_size=batch_size, num_samples=num_samples)
    sites = {
        name: _site(unit_variance(means, name), means.how[name], kls[name], threshold)
        for name in means.mean
    }
    doc: dict[str, Any] = {"n": len(x), "threshold": threshold, "sites": sites}
    doc["units"] = sum(s["units"] for s in sites.values())
    doc["active_units"] = sum(s["active_units"] for s in sites.values())
    doc["kl"] = sum(s["kl"] for s in sites.values())
    notes += _notes_for(doc, len(x))
    try:
        split = information_split(model, guide, x, batch_size=batch_size, seed=seed)
        doc["information"] = vars(split)
        doc["mutual_information"] = split.mutual_information
        if split.mutual_information > split.log_n - 0.5:
            notes.append(
                f"the mutual information ({split.mutual_information:.2f} nats) is near its "
                f"bound log N = {split.log_n:.2f} on {len(x)} points: evaluate more points."
            )
    except SiteError as e:
        doc["information"], doc["mutual_information"] = None, None
        notes.append(f"information split skipped: {e}")
    doc["clusters"] = None
    codes = torch.cat([means.mean[name] for name in means.mean], dim=1)
    extras: dict[str, Any] = {"codes": codes, "labels": labels, "assignment": None}
    if labels is None:
        notes.append("no labels for these data: clustering skipped.")
    else:
        k = len(torch.unique(labels))
        if len(x) < k:
            notes.append(f"clustering skipped: k-means with k = {k} needs >= {k} points.")
        else:
            c = cluster_codes(codes, labels, seed=seed)
            doc["clusters"] = {"k": c.k, "nmi": c.nmi, "accuracy": c.accuracy}
            doc["clusters"]["mapping"] = {str(a): b for a, b in c.mapping.items()}
            extras["assignment"] = c.assignment
    doc["notes"] = notes
    return doc, extras


def summary_line(doc: dict[str, Any]) -> str:
    """One line for a terminal: active units, KL, mutual information, clusters."""
    mi = doc.get("mutual_information")
    parts = [
        f"active units {doc['active_units']}/{doc['units']}",
        f"KL {doc['kl']:.2f} nats",
        "MI " + ("-" if mi is None else f"{mi:.2f} nats (log N = {math.log(doc['n']):.2f})"),
    ]
    if doc.get("clusters"):
        c = doc["clusters"]
        parts.append(f"k-means NMI {c['nmi']:.3f}, accuracy {c['accuracy']:.3f}")
    return "; ".join(parts)
