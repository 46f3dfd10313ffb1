"""Annealed importance sampling: a stochastic lower bound on log p(x), unbiased in p(x).

For each data point, ``num_chains`` chains start at a draw from s(z) (the guide q(z|x), or the
prior), move through the bridges f_b(z) = s(z)^(1-b) p(x, z)^b by HMC transitions, and
collect log weights whose exponent has expectation p(x) (``anneal.py``); ``log_p`` is the log of
their mean over chains. With the exact posterior as s, every weight is log p(x).

    >>> res = ais(model, guide, x, num_steps=1000, num_chains=16)
    >>> res.log_p, res.stderr, res.acceptance        # each [N]

References: Neal (2001), Annealed Importance Sampling; Wu, Burda, Salakhutdinov & Grosse
(2017), On the Quantitative Analysis of Decoder-Based Generative Models.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..core.errors import DataError, InputError
from ..core.registry import lookup
from ..core.tracing import max_plate_nesting
from ..model.checks import checked_once
from .anneal import SCHEDULES, Annealed, StepSizes, Tuner, anneal
from .target import START, Target

# Chains x data points per chunk: on the CPU the activations stay in cache; a GPU wants more.
ROWS = {"cpu": 4096, "cuda": 2**18}


@dataclass
class AISResult:
    """Per data point: ``log_w[C, N]`` (float64), ``log_p`` = log mean_c exp(log_w), its
    standard error (delta method over chains), the mean HMC acceptance rate, and the number of
    proposals rejected because their energy was NaN or infinite."""

    log_w: torch.Tensor
    acceptance: torch.Tensor
    nonfinite: torch.Tensor

    @property
    def log_p(self) -> torch.Tensor:
        return torch.logsumexp(self.log_w, 0) - math.log(len(self.log_w))

    @property
    def stderr(self) -> torch.Tensor:
        """sd(w) / (sqrt(C) mean(w)) per point: the delta-method error of log mean w."""
        w = torch.exp(self.log_w - self.log_w.max(0).values)
        c = w.shape[0]
        sd = w.std(0, correction=1) if c > 1 else torch.full_like(w[0], float("nan"))
        return sd / (c**0.5 * w.mean(0))


def check_counts(**counts: int) -> None:
    """Raises InputError unless every count is an integer >= 1."""
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be an integer >= 1, got {v!r}.")


@dataclass
class Plan:
    """The checked settings of one AIS call."""

    num_steps: int
    num_chains: int
    num_leapfrog: int
    start: str
    schedule: str
    betas: torch.Tensor
    step_size: float | None
    pilot_steps: int
    target_accept: float

    def steps_for(self, target: Target, n: int, tick) -> StepSizes:
        """The fixed step sizes: ``step_size`` for all, or those of a pilot run on own draws."""
        if self.step_size is not None:
            return StepSizes.constant(self.step_size, n, target.x.device)
        tuner = Tuner(n, target.x.device, target=self.target_accept)
        pilot = lookup(SCHEDULES, self.schedule, "schedule")(self.pilot_steps)
        anneal(target.initial(), target.score, pilot, tuner, self.num_leapfrog, tick)
        return tuner.result()


def plan(
    num_steps, num_chains, num_leapfrog, start, schedule, step_size, pilot_steps, target_accept
) -> Plan:
    """Checks the settings; the error says what would do."""
    check_counts(num_steps=num_steps, num_chains=num_chains, num_leapfrog=num_leapfrog)
    if start not in START:
        raise InputError(f"start must be one of {START}, got {start!r}.")
    betas = lookup(SCHEDULES, schedule, "schedule")(num_steps)
    if step_size is not None and not (isinstance(step_size, int | float) and step_size > 0):
        raise InputError(f"step_size must be a number > 0 or None (tuned), got {step_size!r}.")
    pilot = pilot_steps if pilot_steps is not None else min(num_steps, max(20, num_steps // 10))
    check_counts(pilot_steps=pilot)
    if not 0 < target_accept < 1:
        raise InputError(f"target_accept must be in (0, 1), got {target_accept!r}.")
    return Plan(
        num_steps, num_chains, num_leapfrog, start, schedule, betas, step_size, pilot, target_accept
    )


def chunks(x: torch.Tensor, num_chains: int, chunk_size: int | None) -> Iterator[slice]:
    """Slices of at most ``chunk_size`` data points (default: about ``ROWS`` chains x points)."""
    if chunk_size is None:
        chunk_size = max(1, ROWS.get(x.device.type, 4096) // num_chains)
    check_counts(chunk_size=chunk_size)
    for start in range(0, x.shape[0], chunk_size):
        yield slice(start, start + chunk_size)


@contextlib.contextmanager
def prepared(model: Callable, guide: Callable | None, x: torch.Tensor, start: str) -> Iterator[int]:
    """Checks ``x`` once (the model's per-call checks off inside) and yields the number of
    plate dimensions."""
    if not torch.is_tensor(x) or x.dim() < 1 or x.shape[0] < 1:
        raise InputError("x must be a tensor of at least one data point, [N, ...].")
    if guide is None and start != "prior":
        raise InputError(f"start={start!r} needs a guide; pass one, or start='prior'.")
    with checked_once(model, x):
        # The prior start needs no guide: the model's own trace then stands in for it.
        yield max_plate_nesting(model, model if guide is None else guide, x[:1])


def check_weights(log_w: torch.Tensor) -> None:
    """Raises DataError on a NaN or +inf weight (a -inf weight is a weight of zero)."""
    bad = torch.isnan(log_w) | (log_w == float("inf"))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} AIS log weights are NaN or +inf: log p(x, z) or log s(z) is not "
            f"finite at a start point. Check the model's and guide's outputs on these data."
        )


def ais(
    model: Callable,
    guide: Callable | None,
    x: torch.Tensor,
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
) -> AISResult:
    """AIS estimates of log p(x) for every row of ``x``, from ``num_chains`` chains annealed in
    ``num_steps`` steps (``schedule``: "sigmoid" or "linear") from ``start`` ("q": the guide,
    "prior": the model's prior) to p(z|x), each step an HMC transition of ``num_leapfrog``
    leapfrog steps. ``step_size``: one fixed step for all, or None (default): per data point,
    from a pilot run of ``pilot_steps`` (default: T/10, at least 20, at most T) aiming at
    ``target_accept``. Data points go ``chunk_size`` at a time (default: sized for the device).

    References: Neal (2001); Wu et al. (2017).
    """
    p = plan(
        num_steps, num_chains, num_leapfrog, start, schedule, step_size, pilot_steps, target_accept
    )
    parts: list[Annealed] = []
    pilot = 0 if step_size is not None else p.pilot_steps
    with prepared(model, guide, x, start) as plates:
        slices = list(chunks(x, num_chains, chunk_size))
        total = len(slices) * (num_steps + pilot)
        with tqdm(total=total, desc="ais", disable=not progress) as bar:
            for sl in slices:
                target = Target(model, guide, x[sl], num_chains, plates, start)
                steps = p.steps_for(target, x[sl].shape[0], bar.update)
                run = anneal(
                    target.initial(), target.score, p.betas, steps, num_leapfrog, bar.update
                )
                parts.append(run)
    return collect(parts, num_chains)


def collect(parts: list[Annealed], num_chains: int) -> AISResult:
    """One ``AISResult`` from the runs of consecutive chunks."""
    log_w = torch.cat([r.log_w for r in parts], 1)
    check_weights(log_w)
    moves = max(parts[0].transitions, 0) * num_chains
    accepted = torch.cat([r.accepted for r in parts]).double()
    acceptance = accepted / moves if moves else torch.full_like(accepted, float("nan"))
    return AISResult(log_w, acceptance.cpu(), torch.cat([r.nonfinite for r in parts]).cpu())
