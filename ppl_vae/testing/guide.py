"""The guide-only clauses: no observed sites, reparameterized latents, a module SVI can train,
and a gradient from the guide's samples or log q(z|x) to every parameter."""

from __future__ import annotations

import pyro.poutine as poutine
import torch
from pyro.nn import PyroModule
from pyro.poutine.trace_struct import Trace

from ..core.tracing import is_latent
from .report import Checks
from .sites import dist_name, inputs


def site_clauses(chk: Checks, tr: Trace) -> None:
    """No observed site; every latent reparameterized, or discrete and enumerated."""
    for name, site in tr.nodes.items():
        if site["type"] == "sample" and site["is_observed"]:
            chk.fail(
                "observed site",
                f"guide site '{name}' is observed (obs=...): a guide only samples the latents; "
                f"drop obs (the model observes the data).",
            )
        if not is_latent(site) or site["fn"].has_rsample:
            continue
        fn = site["fn"]
        if fn.support.is_discrete and site["infer"].get("enumerate"):
            continue  # summed out exactly (M2's label), not sampled
        fix = "use a reparameterizable distribution (has_rsample = True): a Normal, a flow, "
        fix += "or Pyro's MixtureOfDiagNormals for a mixture"
        if fn.support.is_discrete:
            fix = "mark a discrete site for enumeration, infer={'enumerate': 'parallel'}, and "
            fix += "train with an objective that sums it out ('semi_supervised')"
        chk.fail(
            "not reparameterized",
            f"guide site '{name}' draws from {dist_name(fn)}, which has no rsample: its samples "
            f"carry no gradient to the guide's parameters, and the ELBO, IWAE, STL and DReG "
            f"gradients need one; {fix}.",
        )
    chk.passed("observed site")
    chk.passed("not reparameterized")


def _kind(obj: object) -> str:
    return "function" if callable(obj) and not isinstance(obj, type) else type(obj).__name__


def module_clause(chk: Checks, guide, tr: Trace | None) -> None:
    """A PyroModule, or a module that registers its parameters with ``pyro.module``."""
    if not isinstance(guide, torch.nn.Module):
        chk.fail(
            "not a module",
            f"the guide is a {_kind(guide)}, not a PyroModule: fit(), checkpoints and "
            f"the STL and DReG objectives need a module; subclass pyro.nn.PyroModule and sample "
            f"in forward().",
        )
    elif not isinstance(guide, PyroModule) and tr is not None:
        seen = {s["value"].data_ptr() for s in tr.nodes.values() if s["type"] == "param"}
        if any(p.data_ptr() not in seen for p in guide.parameters()):
            chk.fail(
                "not a module",
                "the guide is a torch.nn.Module but not a PyroModule, and it does not register "
                "its parameters with pyro.module: SVI would not train them; subclass "
                "pyro.nn.PyroModule (or call pyro.module('guide', self) in forward()).",
            )
    chk.passed("not a module")


def gradient_clause(chk: Checks, guide, x, cond) -> None:
    """Each trainable parameter shapes q(z|x): the samples and log q have a gradient."""
    params = [(n, p) for n, p in getattr(guide, "named_parameters", list)() if p.requires_grad]
    if not params:
        chk.skip("no gradients", "the guide has no trainable parameters")
        return
    with torch.enable_grad():
        tr = poutine.trace(guide).get_trace(x, **inputs(cond))
        if not any(is_latent(s) for s in tr.nodes.values()):
            chk.skip("no gradients", "the guide samples no latents")
            return
        total = sum(
            (s["value"].sum() if s["value"].is_floating_point() else 0)
            + s["fn"].log_prob(s["value"]).sum()
            for s in tr.nodes.values()
            if is_latent(s)
        )
        if not torch.is_tensor(total) or not total.requires_grad:
            grads = [None] * len(params)
        else:
            grads = torch.autograd.grad(total, [p for _, p in params], allow_unused=True)
    none = [n for (n, _), g in zip(params, grads, strict=True) if g is None]
    if cond is not None and len(none) < len(params):
        none = []  # given cond, a part of the guide may rest (M2's classifier, with y given)
    if none:
        chk.fail(
            "no gradients",
            f"guide parameter(s) {', '.join(map(repr, none))} get no gradient from the guide's "
            f"samples or log q(z|x): a parameter that does not shape q is never trained; use it "
            f"in the distribution (and draw with rsample, not sample or .detach()) or drop it.",
        )
    pairs = zip(params, grads, strict=True)
    nonfinite = [n for (n, _), g in pairs if g is not None and not g.isfinite().all()]
    if nonfinite:
        chk.fail(
            "not finite",
            f"the gradient of log q(z|x) holds NaN or Inf for {', '.join(map(repr, nonfinite))}: "
            f"keep scales away from 0 (softplus(raw) + a minimum) and parameters finite.",
        )
    chk.passed("no gradients")
