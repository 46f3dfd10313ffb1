"""Bidirectional Monte Carlo: a sandwich lower <= log p(x) <= upper on simulated data.

On data x simulated from the model with known latents z (``simulate``), forward AIS from the
start density s gives a stochastic lower bound on log p(x). Reverse AIS runs the same bridges
from b = 1 to b = 0, started at the exact posterior draw z (the latent that generated x); the
mean of its weights is unbiased for 1/p(x), so minus the log of that mean is a stochastic upper
bound. Their difference bounds the error of forward AIS on such data.

References: Grosse, Ghahramani & Adams (2015), Sandwiching the marginal likelihood using
bidirectional Monte Carlo; Wu, Burda, Salakhutdinov & Grosse (2017).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..core.errors import InputError
from .ais import AISResult, chunks, collect, plan, prepared
from .anneal import anneal
from .target import Target


@dataclass
class BDMCResult:
    """Per data point: ``lower`` (forward AIS) and ``upper`` (reverse AIS) ``[N]``, and both
    runs (``forward.log_w`` are log weights on p(x), ``reverse.log_w`` on 1/p(x))."""

    forward: AISResult
    reverse: AISResult

    @property
    def lower(self) -> torch.Tensor:
        return self.forward.log_p

    @property
    def upper(self) -> torch.Tensor:
        return -self.reverse.log_p

    @property
    def gap(self) -> torch.Tensor:
        return self.upper - self.lower


def _check_z(z: dict, target: Target, n: int) -> None:
    missing = [k for k in target.shapes if k not in z]
    if missing:
        raise InputError(
            f"z has no values for latent site(s) {missing}; pass every latent that generated x "
            f"(simulate(model, n) returns them), got sites {sorted(z)}."
        )
    for k, shape in target.shapes.items():
        if tuple(z[k].shape) != (n, *shape):
            raise InputError(f"z['{k}'] has shape {list(z[k].shape)}, expected {[n, *shape]}.")


def bdmc(
    model: Callable,
    guide: Callable | None,
    x: torch.Tensor,
    z: dict[str, torch.Tensor],
    num_steps: int = 1000,
    num_chains: int = 16,
    *,
    num_leapfrog: int = 2,
    start: str = "q",
    schedule: str = "sigmoid",
    step_size: float | None = None,
    pilot_steps: int | None = None,
    target_accept: float = 0.65,
    chunk_size: int | None = None,
    progress: bool = False,
) -> BDMCResult:
    """Forward and reverse AIS on simulated ``x`` with generating latents ``z`` (a dict from
    site names to ``[N, ...]``); the settings are those of ``ais``, and both directions use the
    same step sizes (one pilot run, on its own draws).

    References: Grosse et al. (2015); Wu et al. (2017).
    """
    if not isinstance(z, dict):
        raise InputError(f"z must be a dict from latent site names to tensors, got {type(z)}.")
    p = plan(
        num_steps, num_chains, num_leapfrog, start, schedule, step_size, pilot_steps, target_accept
    )
    fwd, rev = [], []
    pilot = 0 if step_size is not None else p.pilot_steps
    with prepared(model, guide, x, start) as plates:
        slices = list(chunks(x, num_chains, chunk_size))
        with tqdm(
            total=len(slices) * (2 * num_steps + pilot), desc="bdmc", disable=not progress
        ) as bar:
            for sl in slices:
                target = Target(model, guide, x[sl], num_chains, plates, start)
                steps = p.steps_for(target, x[sl].shape[0], bar.update)
                fwd.append(
                    anneal(target.initial(), target.score, p.betas, steps, num_leapfrog, bar.update)
                )
                _check_z(z, target, x.shape[0])
                exact = {
                    k: z[k][sl].to(x.device, target.dtype).expand(num_chains, *z[k][sl].shape)
                    for k in target.shapes
                }
                rev.append(
                    anneal(
                        target.score(target.pack(exact)),
                        target.score,
                        p.betas.flip(0),
                        steps,
                        num_leapfrog,
                        bar.update,
                    )
                )
    return BDMCResult(collect(fwd, num_chains), collect(rev, num_chains))
