"""``check_model``, ``check_guide`` and ``check_pair``: the model and guide contracts.

The pair is run through ``bounds.log_weights``, the code path that every bound and comparison
uses: the guide traced under a vectorized particle plate, the model replayed on its samples. Its
log weights must be finite and ``[K, N]``.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro.poutine as poutine
import torch
from torch.distributions import constraints

from ..bounds.log_weights import log_weights
from ..core.errors import SiteError
from ..core.tracing import is_latent
from . import guide as guides
from . import sites
from .report import Checks, ContractReport, Failure, describe, explain, first_line, isolated

MODEL = (
    "does not run",
    "observed site",
    "site outside the data plate",
    "log density not per data point",
    "not finite",
    "wrong shapes",
)
GUIDE = ("not a module", *MODEL[:5], "not reparameterized", "wrong shapes", "no gradients")
PAIR = ("sites do not match", "wrong shapes", "not finite")


def _model_clauses(chk: Checks, model: Callable, x, cond) -> bool:
    own = Checks("", model)
    tr = sites.trace_or_fail(own, "model", model, x, cond)
    if tr is not None:
        own.passed("does not run")
        sites.observation_clause(own, tr, x)
        sites.site_clauses(own, "model", tr, x, latent_only=False)
        if not own.failed():
            sites.particle_clause(own, "model", model, tr, x, cond, latent_only=False)
            sites.batch_size_clause(own, "model", model, x, cond)
    return chk.merge(own) and tr is not None


def _guide_clauses(chk: Checks, guide: Callable, x, cond) -> bool:
    own = Checks("", guide)
    tr = sites.trace_or_fail(own, "guide", guide, x, cond)
    guides.module_clause(own, guide, tr)
    if tr is not None:
        own.passed("does not run")
        guides.site_clauses(own, tr)
        sites.site_clauses(own, "guide", tr, x, latent_only=True)
        broken = ("site outside the data plate", "log density not per data point", "wrong shapes")
        if not own.failed(*broken):
            sites.particle_clause(own, "guide", guide, tr, x, cond, latent_only=True)
            sites.batch_size_clause(own, "guide", guide, x, cond)
        guides.gradient_clause(own, guide, x, cond)
    return chk.merge(own) and tr is not None


def _base(c: constraints.Constraint) -> constraints.Constraint:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return c


def _is_real(c: constraints.Constraint) -> bool:
    return isinstance(_base(c), type(constraints.real))


def _support_hint(p: dict, q: dict, before: str, after: str = "") -> str:
    """Where the guide's support differs from the model's, site by site, or ""."""
    differ = [
        f"the guide's '{n}' has support {_base(q[n]['fn'].support)}, the model's "
        f"{_base(p[n]['fn'].support)}"
        for n in sorted(p.keys() & q.keys())
        if str(q[n]["fn"].support) != str(p[n]["fn"].support)
    ]
    return before + "; ".join(differ) + after if differ else ""


def _pair_clauses(chk: Checks, model: Callable, guide: Callable, x, cond, weights: bool) -> None:
    """Same latent sites, shapes and supports; then, with ``weights``, finite log weights
    ``[K, N]`` from ``log_weights``."""
    given = sites.inputs(cond)
    try:
        guide_tr = poutine.trace(guide).get_trace(x, **given)
        model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(x, **given)
    except Exception:
        chk.skip("sites do not match", "the model or the guide does not run")
        return
    q = {n: s for n, s in guide_tr.nodes.items() if is_latent(s)}
    p = {n: s for n, s in model_tr.nodes.items() if is_latent(s)}
    observed = {n for n, s in model_tr.nodes.items() if s["type"] == "sample" and s["is_observed"]}
    for name in p.keys() - q.keys():
        chk.fail(
            "sites do not match",
            f"the model samples '{name}' but the guide does not: sample '{name}' in the guide "
            f"too (every latent of the model needs the guide's proposal).",
        )
    for name in q.keys() - p.keys():
        has = "observes" if name in observed else "does not have"
        chk.fail(
            "sites do not match",
            f"the guide samples '{name}' which the model {has}: the guide must sample exactly "
            f"the model's latent sites; drop '{name}' from the guide or add it to the model.",
        )
    chk.passed("sites do not match")
    for name in p.keys() & q.keys():
        ev_p, ev_q = list(p[name]["fn"].event_shape), list(q[name]["fn"].event_shape)
        dims = [sites.data_frame(s).dim for s in (p[name], q[name]) if sites.data_frame(s)]
        if ev_p != ev_q:
            chk.fail(
                "wrong shapes",
                f"the guide's '{name}' has event shape {ev_q} and the model's {ev_p}: give them "
                f"the same latent size (and the same .to_event).",
            )
        elif len(dims) == 2 and dims[0] != dims[1]:
            chk.fail(
                "wrong shapes",
                f"at site '{name}' the guide's pyro.plate('data') is at dim {dims[1]} and the "
                f"model's at dim {dims[0]}: put both at the same dim.",
            )
    for name in sorted(p.keys() & q.keys()):
        sp, sq = p[name]["fn"].support, q[name]["fn"].support
        if str(sp) != str(sq) and not _is_real(sp):
            chk.fail(
                "not finite",
                f"the guide's '{name}' has support {_base(sq)} but the model's only {_base(sp)}: "
                f"log p(z) is -inf (or NaN) where the guide proposes outside it; give the "
                f"guide's site the model's support (e.g. a LogNormal, or a transformed Normal).",
            )
    if not weights or chk.failed():
        chk.skip("not finite", "the log weights need a model and a guide that pass")
        return
    try:
        log_w = log_weights(model, guide, x, num_particles=sites.K, cond=cond)
    except Exception as e:
        failure = explain("model or guide", e, x)
        if failure is None:
            clause = "not finite" if "support" in str(e) else "wrong shapes"
            if isinstance(e, SiteError):
                clause = "site outside the data plate" if "plate(" in str(e) else clause
                clause = "log density not per data point" if "to_event" in str(e) else clause
            failure = Failure(
                clause,
                f"log_weights(model, guide, x, {sites.K}) raised {first_line(e)}"
                + _support_hint(p, q, "; "),
            )
        chk.fail(failure.clause, failure.message)
        return
    if tuple(log_w.shape) != (sites.K, x.shape[0]):
        chk.fail(
            "wrong shapes",
            f"log_weights(model, guide, x, {sites.K}) has shape {list(log_w.shape)}, not "
            f"[{sites.K}, {x.shape[0]}]: every site's log density must be one number per data "
            f"point under the data plate.",
        )
    bad = int((~torch.isfinite(log_w)).sum())
    if bad:
        chk.fail(
            "not finite",
            f"{bad} of the {log_w.numel()} log weights log p(x, z) - log q(z|x) are NaN or "
            f"+-inf: the guide must propose z where the model's density is positive and finite"
            + _support_hint(p, q, " (", ")")
            + ".",
        )
    chk.passed("wrong shapes")
    chk.passed("not finite")


def _check(check: str, model: Callable | None, guide: Callable | None, x, cond) -> ContractReport:
    sites.check_data(x, cond)
    chk = Checks(check, model if guide is None else guide)
    if model is not None and guide is not None:
        m, g = describe(model), describe(guide)
        titles = {"check_model": f"{m}, guide={g}", "check_guide": f"{g}, model={m}"}
        chk.title = f"{check}({titles.get(check, f'{m}, {g}')})"
    with isolated(x), torch.no_grad():
        model_ok = model is None or _model_clauses(chk, model, x, cond)
        guide_ok = guide is None or _guide_clauses(chk, guide, x, cond)
        if model is not None and guide is not None:
            _pair_clauses(chk, model, guide, x, cond, weights=model_ok and guide_ok)
    clauses = (MODEL if model is not None else ()) + (GUIDE if guide is not None else ())
    if model is not None and guide is not None:
        clauses += PAIR
    return chk.done(tuple(dict.fromkeys(clauses)))


def check_model(
    model: Callable,
    x: torch.Tensor,
    *,
    guide: Callable | None = None,
    cond: torch.Tensor | None = None,
) -> ContractReport:
    """Checks the model contract on the batch ``x`` (and ``cond=``): the model runs, observes
    ``x`` at site ``"x"``, samples and observes inside ``pyro.plate("data", N)``, and each
    site's log density is finite and one number per data point, also under a vectorized
    particle plate and on a batch of another size. With ``guide``: ``check_pair``.

    Returns a ``ContractReport`` of the clauses run; raises one ``ContractError`` that lists
    every clause broken. The caller's random streams and Pyro's param store are left as they
    were.
    """
    return _check("check_model", model, guide, x, cond)


def check_guide(
    guide: Callable,
    x: torch.Tensor,
    *,
    model: Callable | None = None,
    cond: torch.Tensor | None = None,
) -> ContractReport:
    """Checks the guide contract on the batch ``x`` (and ``cond=``): the guide is a PyroModule,
    runs, observes nothing, and samples its latents inside ``pyro.plate("data", N)`` from
    reparameterizable distributions (``has_rsample``; a discrete site only if enumerated) whose
    log density is finite and one number per data point, also under a vectorized particle plate
    and on a batch of another size; every trainable parameter gets a gradient from its samples
    or log q. With ``model``: ``check_pair``.

    Returns a ``ContractReport``; raises one ``ContractError`` that lists every clause broken.
    """
    return _check("check_guide", model, guide, x, cond)


def check_pair(
    model: Callable, guide: Callable, x: torch.Tensor, *, cond: torch.Tensor | None = None
) -> ContractReport:
    """Checks the model and the guide, each on its own contract, and that they fit: the same
    latent sites, with the same event shapes and data-plate dim, and finite log weights
    ``[K, N]`` from ``bounds.log_weights``. Returns a ``ContractReport``; raises one
    ``ContractError`` that lists every clause broken."""
    return _check("check_pair", model, guide, x, cond)
