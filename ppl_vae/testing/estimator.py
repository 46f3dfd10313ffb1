"""``check_estimator``: an estimator is a pure function of the log weights ``log_w[K, N]``.

On float64 log weights drawn here (at every K it accepts, from ``min_particles`` on, and K = 1
for a per-K estimator): the estimate is a tensor ``[N]``, finite on finite input, unchanged by
a second call, by the random streams and by permuting the particles, and ``log_w`` is left as it
was. A bound (``bound=True``: an estimate of log p(x) in nats) equals c where every log weight
is c, and moves by c with ``log_w + c``. A fold, streamed over parts of the particles, equals
``compute`` on all of them; each summary maps the estimates ``[N]`` to ``[N]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..bounds.registry import ESTIMATORS
from ..bounds.spec import Estimator
from ..core.errors import InputError
from ..core.registry import lookup
from .report import Checks, ContractReport, first_line

N = 5
CLAUSES = (
    "does not run",
    "wrong shapes",
    "not finite",
    "not pure",
    "depends on particle order",
    "not exact at equal weights",
    "not shift-equivariant",
    "fold disagrees",
)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-9, equal_nan=True)


def _resolve(estimator: Estimator | str | Callable) -> Estimator:
    if isinstance(estimator, Estimator):
        return estimator
    if isinstance(estimator, str):
        return lookup(ESTIMATORS, estimator, "estimator")
    if callable(estimator):
        return Estimator(getattr(estimator, "__name__", "estimator").strip("<>"), estimator)
    raise InputError(
        f"check_estimator takes an Estimator entry, a registered name or a function "
        f"log_w[K, N] -> [N]; got {type(estimator).__name__}."
    )


def _apply(chk: Checks, est: Estimator, log_w: torch.Tensor, what: str) -> torch.Tensor | None:
    """``compute(log_w)`` checked for shape ``[N]``, finiteness and an untouched input."""
    before = log_w.clone()
    try:
        out = est.compute(log_w)
    except Exception as e:
        chk.fail("does not run", f"compute(log_w) on {what} raised {first_line(e)}.")
        return None
    chk.passed("does not run")
    if not torch.equal(log_w, before):
        chk.fail_once(
            "not pure",
            "compute(log_w) changed log_w in place: work on a copy (log_w - c, not log_w -= c), "
            "since the same log weights feed every estimator.",
        )
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (log_w.shape[1],):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        chk.fail_once(
            "wrong shapes",
            f"compute(log_w) on {what} returned {shape}, not a tensor [{log_w.shape[1]}]: "
            f"reduce over the particles (dim 0) only, one value per data point.",
        )
        return None
    chk.passed("wrong shapes")
    if not torch.isfinite(out).all():
        chk.fail_once(
            "not finite",
            f"compute(log_w) on {what} gave NaN or Inf ({out.tolist()}): reduce in log space "
            f"(logsumexp, not log(sum(exp)))",
        )
        return None
    chk.passed("not finite")
    return out


def check_estimator(
    estimator: Estimator | str | Callable, *, order_invariant: bool = True
) -> ContractReport:
    """Checks an estimator (an ``Estimator`` entry, a registered name, or a function
    ``log_w[K, N] -> [N]``) as a pure function of the log weights; ``order_invariant=False``
    drops the particle-order clause, for an estimator over an ordered stream.

    Returns a ``ContractReport``; raises one ``ContractError`` that lists every clause broken.
    """
    est = _resolve(estimator)
    chk = Checks("check_estimator", est.name)
    g = torch.Generator().manual_seed(0)
    ks = sorted({est.min_particles, est.min_particles + 6} | ({1} if est.per_k else set()))
    with torch.random.fork_rng(devices=[]):
        for k in ks:
            log_w = torch.randn(k, N, generator=g, dtype=torch.float64) * 3 - 20
            wide = torch.rand(k, N, generator=g, dtype=torch.float64) * 2e3 - 1e3
            out = _apply(chk, est, log_w, f"K = {k} particles")
            _apply(chk, est, wide, f"K = {k} log weights in [-1000, 1000]")
            if out is None:
                continue
            torch.manual_seed(1)
            again = _apply(chk, est, log_w, f"K = {k} particles, again")
            if again is not None and not _close(out, again):
                chk.fail_once(
                    "not pure",
                    "compute(log_w) gave other values for the same log_w: an estimator must "
                    "not draw random numbers or keep state; it is a function of log_w alone.",
                )
            chk.passed("not pure")
            if order_invariant and k > 1 and not chk.failed("not pure"):
                shuffled = _apply(chk, est, log_w.roll(1, 0), f"K = {k} particles, permuted")
            else:
                shuffled = None
            if shuffled is not None and not _close(out, shuffled):
                chk.fail_once(
                    "depends on particle order",
                    f"compute(log_w) changed when the {k} particles were permuted: the "
                    f"particles are exchangeable draws, so reduce over them symmetrically (or "
                    f"pass order_invariant=False for an ordered stream).",
                )
            if shuffled is not None:
                chk.passed("depends on particle order")
            if est.bound:
                _bound_clauses(chk, est, log_w, out)
            for summary in est.summaries:
                v = summary.of(out)
                if not isinstance(v, torch.Tensor) or tuple(v.shape) != (N,):
                    chk.fail_once(
                        "wrong shapes",
                        f"summary '{summary.name}' maps the estimates [{N}] to "
                        f"{list(getattr(v, 'shape', [])) or type(v).__name__}: it must "
                        f"return one value per data point, [{N}].",
                    )
            if est.fold is not None:
                _fold_clause(chk, est, log_w, out)
    if not est.bound:
        chk.skip("not exact at equal weights", "not a bound (bound=False)")
        chk.skip("not shift-equivariant", "not a bound (bound=False)")
    if est.fold is None:
        chk.skip("fold disagrees", "no fold")
    if est.source is not None:
        chk.skip("source", "draws its own log weights from a model and guide: not checked here")
    if not order_invariant:
        chk.skip("depends on particle order", "order_invariant=False")
    return chk.done(CLAUSES)


def _bound_clauses(chk: Checks, est: Estimator, log_w: torch.Tensor, out: torch.Tensor) -> None:
    c = torch.tensor([-3.5, 0.0, 12.25, -700.0, 88.0], dtype=torch.float64)[: log_w.shape[1]]
    flat = _apply(chk, est, c.expand(log_w.shape[0], -1).clone(), "equal log weights")
    if flat is not None and not _close(flat, c):
        chk.fail_once(
            "not exact at equal weights",
            f"with K = {log_w.shape[0]} log weights all equal to log p(x) = {c.tolist()}, "
            f"compute gave {flat.tolist()}: a bound on log p(x) must be exact when the weights "
            f"are (IWAE_K is logsumexp_k log w_k - log K; the - log K makes it exact).",
        )
    chk.passed("not exact at equal weights")
    shifted = _apply(chk, est, log_w + 7.5, "log_w + 7.5")
    if shifted is not None and not _close(shifted, out + 7.5):
        chk.fail_once(
            "not shift-equivariant",
            "compute(log_w + 7.5) is not compute(log_w) + 7.5: scaling every weight by e^c "
            "scales the estimate of p(x) by e^c, so a bound in nats must move by c.",
        )
    chk.passed("not shift-equivariant")


def _fold_clause(chk: Checks, est: Estimator, log_w: torch.Tensor, out: torch.Tensor) -> None:
    fold = est.fold(log_w.shape[1], log_w.device)
    for part in log_w.split(2):
        fold.add(part)
    value = fold.value()
    if not isinstance(value, torch.Tensor) or not _close(value, out):
        chk.fail_once(
            "fold disagrees",
            f"the fold over parts of 2 particles gave {getattr(value, 'tolist', lambda: value)()} "
            f"where compute on all {log_w.shape[0]} gives {out.tolist()}: the fold must equal "
            f"the estimator on the concatenated parts (keep float64 running sums, logaddexp).",
        )
    chk.passed("fold disagrees")
