"""``check_objective``: an SVI loss has Pyro's ELBO interface and behaves as ``SVI`` needs.

``loss`` and ``loss_and_grads`` return finite floats; ``loss_and_grads`` puts finite gradients
on every trainable parameter of the guide and of the model; the same ``pyro.set_rng_seed``
gives the same loss; and a loss built with ``vectorize_particles`` draws the guide under a
particle plate of ``num_particles``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import pyro
import pyro.poutine as poutine
import torch
from pyro.poutine.messenger import Messenger

from ..core.contract import Wraps, has
from ..core.tracing import DATA_PLATE, is_latent
from .report import Checks, ContractReport, first_line, isolated
from .sites import check_data, inputs

SEED = 20240607
CLAUSES = (
    "missing method",
    "does not run",
    "not a float",
    "not finite",
    "not deterministic",
    "no gradients",
    "fails with vectorized particles",
)


class _Plates(Messenger):
    """Records the plates each latent sample site was drawn under, every time it is drawn."""

    def __init__(self):
        super().__init__()
        self.seen: dict[str, list] = {}

    def _postprocess_message(self, msg) -> None:
        if msg["type"] == "sample" and not msg["is_observed"]:
            self.seen.setdefault(msg["name"], []).append(list(msg["cond_indep_stack"]))


def _value(chk: Checks, method: str, call: Callable[[], object]) -> float | None:
    """Runs ``call``; the float it returns, or None with the failure recorded."""
    try:
        value = call()
    except Exception as e:
        chk.fail("does not run", f"{method}(model, guide, x) raised {first_line(e)}.")
        return None
    chk.passed("does not run")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        chk.fail(
            "not a float",
            f"{method}() returned a {type(value).__name__}, not a float: return the negative "
            f"objective as a Python float (loss.item()), as Pyro's ELBO does.",
        )
        return None
    chk.passed("not a float")
    if not math.isfinite(value):
        chk.fail(
            "not finite",
            f"{method}() returned {value}: the loss must be finite at finite parameters; check "
            f"log_w for NaN or Inf (a log of 0, a scale of 0) before reducing it.",
        )
        return None
    chk.passed("not finite")
    return float(value)


def _trainable(obj: object, x, cond) -> list[tuple[str, torch.Tensor]]:
    """The parameters SVI would train: a module's, else those of its pyro.param sites."""
    if isinstance(obj, torch.nn.Module):
        return [(n, p) for n, p in obj.named_parameters() if p.requires_grad]
    with torch.no_grad():
        tr = poutine.trace(obj, param_only=True).get_trace(x, **inputs(cond))
    return [(n, s["value"].unconstrained()) for n, s in tr.nodes.items()]


def _gradients(chk: Checks, objective, model, guide, x, cond) -> None:
    given = inputs(cond)
    params = {"guide": _trainable(guide, x, cond), "model": _trainable(model, x, cond)}
    every = [p for ps in params.values() for _, p in ps]
    saved = [p.grad for p in every]
    for p in every:
        p.grad = None
    step = lambda: objective.loss_and_grads(model, guide, x, **given)
    try:
        if _value(chk, "loss_and_grads", step) is not None:
            for role, named in params.items():
                if not named:
                    chk.skip(f"no gradients ({role})", f"the {role} has no trainable parameters")
                    continue
                none = [n for n, p in named if p.grad is None]
                if none:
                    chk.fail(
                        "no gradients",
                        f"loss_and_grads() put no gradient on the {role}'s parameter(s) "
                        f"{', '.join(map(repr, none[:4]))}{' ...' if len(none) > 4 else ''}: it "
                        f"must backpropagate the loss into them (call .backward() on a "
                        f"surrogate that is not detached from the {role}).",
                    )
                bad = [n for n, p in named if p.grad is not None and not p.grad.isfinite().all()]
                if bad:
                    chk.fail(
                        "not finite",
                        f"loss_and_grads() put NaN or Inf gradients on the {role}'s "
                        f"{', '.join(map(repr, bad[:4]))}: guard the log weights against "
                        f"log 0 and overflow (use logsumexp).",
                    )
            chk.passed("no gradients")
    finally:
        for p, g in zip(every, saved, strict=True):
            p.grad = g


def _vectorized(chk: Checks, objective, model, guide, x, cond) -> None:
    inner = objective  # a wrapper (KLWarmup, FreeBits) vectorizes through its base
    while not getattr(inner, "vectorize_particles", False) and has(inner, Wraps):
        inner = inner.base
    k = getattr(inner, "num_particles", None)
    if not (getattr(inner, "vectorize_particles", False) and isinstance(k, int) and k > 1):
        chk.skip(
            "fails with vectorized particles",
            f"the objective does not vectorize particles (num_particles = {k}); build it with "
            f"num_particles > 1 to check it",
        )
        return
    given = inputs(cond)
    with torch.no_grad():
        guide_tr = poutine.trace(guide).get_trace(x, **given)
    names = [n for n, s in guide_tr.nodes.items() if is_latent(s)]
    with _Plates() as plates:
        objective.loss(model, guide, x, **given)
    for name in names:
        stacks = plates.seen.get(name, [])
        if not any(f.size == k and f.name != DATA_PLATE for st in stacks for f in st):
            chk.fail(
                "fails with vectorized particles",
                f"the objective has vectorize_particles = True and num_particles = {k}, but "
                f"it drew the guide's '{name}' under no plate of {k} particles: draw them all "
                f"at once under pyro.plate('num_particles_vectorized', {k}, "
                f"dim=-(max_plate_nesting + 1)), as ppl_vae.core.tracing.trace_particles does.",
            )
    chk.passed("fails with vectorized particles")


def check_objective(
    objective: object,
    model: Callable,
    guide: Callable,
    x: torch.Tensor,
    *,
    cond: torch.Tensor | None = None,
) -> ContractReport:
    """Checks an SVI loss (as ``build_objective`` makes) on ``model``, ``guide`` and the batch
    ``x``: it has ``loss`` and ``loss_and_grads``, both return finite floats, the same
    ``pyro.set_rng_seed`` gives the same loss, ``loss_and_grads`` puts finite gradients on every
    trainable parameter of the guide and of the model, and with ``vectorize_particles`` the
    guide is drawn under a plate of ``num_particles``. Pass a model and guide that pass
    ``check_pair``. Parameter values, their ``.grad``, the param store and the random streams
    are left as they were.

    Returns a ``ContractReport``; raises one ``ContractError`` that lists every clause broken.
    """
    check_data(x, cond)
    chk = Checks("check_objective", objective)
    missing = [m for m in ("loss", "loss_and_grads") if not callable(getattr(objective, m, None))]
    if missing:
        chk.fail(
            "missing method",
            f"the objective has no {' and no '.join(m + '()' for m in missing)}: an SVI loss "
            f"has loss(model, guide, *args, **kwargs) -> float and loss_and_grads(...) -> float "
            f"(Pyro's ELBO interface; subclass pyro.infer.ELBO or ParticleObjective).",
        )
        return chk.done(CLAUSES)
    chk.passed("missing method")
    given = inputs(cond)
    with isolated(x):
        # The first call may draw random numbers once (Pyro guesses max_plate_nesting).
        if _value(chk, "loss", lambda: objective.loss(model, guide, x, **given)) is not None:
            values = []
            for _ in range(2):
                pyro.set_rng_seed(SEED)
                values.append(objective.loss(model, guide, x, **given))
            if not math.isclose(values[0], values[1], rel_tol=1e-9, abs_tol=1e-9):
                chk.fail(
                    "not deterministic",
                    f"loss() gave {values[0]!r} and then {values[1]!r}, each after "
                    f"pyro.set_rng_seed({SEED}): draw every random number from torch's global "
                    f"stream (no private torch.Generator, numpy or random draws), so that a "
                    f"seeded run repeats.",
                )
            chk.passed("not deterministic")
            _gradients(chk, objective, model, guide, x, cond)
            if not chk.failed():
                _vectorized(chk, objective, model, guide, x, cond)
    return chk.done(CLAUSES)
