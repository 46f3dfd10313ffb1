"""The site-level clauses of the model and guide contracts, read from Pyro traces.

Each site of ``poutine.trace(fn).get_trace(x)`` is read for its plates (``cond_indep_stack``),
its distribution (``has_rsample``, batch and event shapes) and its log density, which must be
one number per data point; the same again under a vectorized particle plate and on a batch of
another size.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.poutine.trace_struct import Trace

from ..core.errors import InputError
from ..core.tracing import DATA_PLATE, is_latent, is_scored, particle_plate, per_point
from .report import MISMATCH, Checks, explain, first_line

K = 3  # particles drawn under the vectorized plate, and log weights asked for
_WRAPPERS = (dist.Independent, dist.ExpandedDistribution, dist.MaskedDistribution)


def inputs(cond: torch.Tensor | None) -> dict:
    return {} if cond is None else {"cond": cond}


def check_data(x: object, cond: object) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 1:
        got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"x must be a batch of data, a tensor [N, ...] with N >= 1; got {got}.")
    if cond is not None and (not isinstance(cond, torch.Tensor) or len(cond) != len(x)):
        raise InputError("cond must be a tensor with one row per data point of x, or None.")


def trace_or_fail(chk: Checks, role: str, fn: Callable, x, cond, plate=None) -> Trace | None:
    """The trace of ``fn(x, cond=)`` (under ``plate``), or None with the failure recorded."""
    try:
        return poutine.trace(fn if plate is None else plate(fn)).get_trace(x, **inputs(cond))
    except Exception as e:
        failure = explain(role, e, x)
        if failure is not None:
            chk.passed("does not run")  # it ran up to a site that breaks another clause
            chk.fail(failure.clause, failure.message)
        elif plate is not None:
            chk.fail(
                "wrong shapes",
                f"under a vectorized particle plate ({K} particles) the {role} raised "
                f"{first_line(e)}; let the plates broadcast distributions of batch shape [N] "
                f"instead of reshaping with x.shape or z.shape.",
            )
        else:
            chk.fail(
                "does not run",
                f"{role}(x{', cond=cond' if cond is not None else ''}) raised {first_line(e)}; "
                f"it must run on a batch x of shape {list(x.shape)}.",
            )
        return None


def data_frame(site: dict):
    return next((f for f in site["cond_indep_stack"] if f.name == DATA_PLATE), None)


def plate_nesting(tr: Trace) -> int:
    stacks = [s["cond_indep_stack"] for s in tr.nodes.values() if is_scored(s)]
    dims = [-f.dim for stack in stacks for f in stack if f.vectorized]
    return max(dims, default=0)


def dist_name(fn) -> str:
    while isinstance(fn, _WRAPPERS):
        fn = fn.base_dist
    return type(fn).__name__


def site_clauses(chk: Checks, role: str, tr: Trace, x: torch.Tensor, latent_only: bool) -> None:
    """Plates, per-point log densities and finiteness of every (latent) site of one trace."""
    n = x.shape[0]
    for name, site in tr.nodes.items():
        if not (is_latent(site) if latent_only else is_scored(site)):
            continue
        kind = "observed" if site["is_observed"] else "latent"
        frame = data_frame(site)
        if frame is None:
            verb = "observe" if site["is_observed"] else "sample"
            chk.fail(
                "site outside the data plate",
                f"{role} {kind} site '{name}' is not inside pyro.plate('{DATA_PLATE}', N); "
                f"{verb} it under the plate (the bounds need one log weight per data point).",
            )
            continue
        chk.passed("site outside the data plate")
        if frame.size != n:
            chk.fail(
                "wrong shapes",
                f"{role} has pyro.plate('{DATA_PLATE}', {frame.size}) but the batch holds {n} "
                f"data points: size the plate from the data, pyro.plate('{DATA_PLATE}', "
                f"x.shape[0]).",
            )
            continue
        fn = site["fn"]
        lp = fn.log_prob(site["value"])
        plates = {f.dim: f.size for f in site["cond_indep_stack"] if f.vectorized}
        extra = [d for d in range(-lp.dim(), 0) if lp.shape[d] not in (1, plates.get(d))]
        if extra and not fn.event_shape and extra == list(range(-len(extra), 0)):
            what = "the pixels" if name == "x" else "its dimensions"
            chk.fail(
                "log density not per data point",
                f"{role} site '{name}' has log_prob of shape {list(lp.shape)}: declare {what} "
                f"as one event with .to_event({len(extra)}).",
            )
        elif extra:
            want = [n] + [1] * (-frame.dim - 1)
            chk.fail(
                "wrong shapes",
                f"{role} site '{name}' has batch shape {list(fn.batch_shape)}, not one "
                f"distribution per data point ({want} at pyro.plate('{DATA_PLATE}', {n}, "
                f"dim={frame.dim})); dims {extra} match no plate: check the plate's dim "
                f"against the distribution's batch shape.",
            )
        else:
            chk.passed("log density not per data point")
            chk.passed("wrong shapes")
            bad = int((~torch.isfinite(lp)).sum())
            if bad:
                chk.fail(
                    "not finite",
                    f"{role} site '{name}' has log density NaN or +-inf in {bad} of "
                    f"{lp.numel()} entries: its value must lie in {dist_name(fn)}'s support "
                    f"({fn.support}) and its parameters must be finite.",
                )
            chk.passed("not finite")


def particle_clause(chk: Checks, role: str, fn: Callable, tr: Trace, x, cond, latent_only: bool):
    """Under a vectorized particle plate, every site's log density is ``[K, N]``."""
    plates = plate_nesting(tr)
    tr_k = trace_or_fail(chk, role, fn, x, cond, plate=particle_plate(K, plates))
    if tr_k is None:
        return
    for name, site in tr_k.nodes.items():
        if not (is_latent(site) if latent_only else is_scored(site)) or not data_frame(site):
            continue
        try:
            shape = tuple(per_point(site["fn"].log_prob(site["value"]), site, plates).shape)
        except Exception as e:
            shape = first_line(e)
        if shape != (K, x.shape[0]):
            chk.fail(
                "wrong shapes",
                f"under a vectorized particle plate of {K} particles (dim {-(plates + 1)}), "
                f"{role} site '{name}' has log density {shape} per particle and data point, "
                f"not ({K}, {x.shape[0]}): let the plates broadcast distributions of batch "
                f"shape [N] instead of reshaping with x.shape or z.shape.",
            )
    chk.passed("wrong shapes")


def batch_size_clause(chk: Checks, role: str, fn: Callable, x, cond) -> None:
    """The same runs on a batch of another size."""
    m = x.shape[0] - 1 if x.shape[0] > 1 else 2
    x2 = x[:m] if m < x.shape[0] else torch.cat([x, x])
    c2 = None if cond is None else (cond[:m] if m < len(cond) else torch.cat([cond, cond]))
    sub = Checks("", None)
    try:
        tr = poutine.trace(fn).get_trace(x2, **inputs(c2))
    except Exception as e:
        hit = MISMATCH.search(str(e))
        if hit is None or hit["plate"] != DATA_PLATE or int(hit["got"]) != x.shape[0]:
            tr = trace_or_fail(sub, role, fn, x2, c2)  # the same error, explained
        else:
            tr = None
            sub.fail(
                "wrong shapes",
                f"{role} site '{hit['site']}' keeps the size of the first batch, "
                f"{x.shape[0]}, at the data plate's dim {hit['dim']}: compute its parameters "
                f"from x (an encoder), not as tensors of a fixed batch size.",
            )
    if tr is not None:
        site_clauses(sub, role, tr, x2, latent_only=role == "guide")
    for f in sub.failures:
        chk.fail("wrong shapes", f"on a batch of {m} data points (not {x.shape[0]}): {f.message}")
    chk.passed("wrong shapes")


def observation_clause(chk: Checks, tr: Trace, x: torch.Tensor) -> None:
    site = tr.nodes.get("x")
    if site is None or site["type"] != "sample":
        chk.fail(
            "observed site",
            "the model has no sample site 'x': observe the data as pyro.sample('x', p(x|z), "
            "obs=x) inside pyro.plate('data', N).",
        )
    elif not site["is_observed"]:
        chk.fail("observed site", "the model samples 'x' without observing it: pass obs=x.")
    elif not (site["value"] is x or torch.equal(site["value"].broadcast_to(x.shape), x)):
        chk.fail(
            "observed site",
            "the model's site 'x' observes a tensor other than the data passed to it: pass the "
            "data itself, obs=x.",
        )
    chk.passed("observed site")
