"""The annealing loop, its schedules, and the per-data-point step sizes of its HMC transitions.

Given inverse temperatures b_0, ..., b_T and chains started at a draw from f_{b_0}, the loop
adds to each chain's log weight (float64)

    log f_{b_k}(z_{k-1}) - log f_{b_{k-1}}(z_{k-1}) = (b_k - b_{k-1}) (log p(x, z) - log s(z))

and then moves z by one HMC transition that leaves f_{b_k} invariant (the last is skipped: it
does not change the weight). Forward AIS runs b from 0 to 1, reverse AIS (BDMC) from 1 to 0.

Step sizes are found per data point by a pilot run (``Tuner``): a short annealing run on its own
draws that nudges log(step) towards the target acceptance after every transition and records
it against b. The estimating run then reads the step at each b from that record
(``StepSizes``) and never changes it, so its transitions are fixed kernels and the weights stay
unbiased.

References: Neal (2001), Annealed Importance Sampling; Wu, Burda, Salakhutdinov & Grosse
(2017), On the Quantitative Analysis of Decoder-Based Generative Models (sigmoid schedule,
HMC with an adapted step per data point).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .hmc import hmc_step
from .target import State

SIGMOID_DELTA = 4.0


def sigmoid_schedule(num_steps: int) -> torch.Tensor:
    """b_k = (s(k) - s(0)) / (s(T) - s(0)), s(k) = sigmoid(delta (2k/T - 1)), delta = 4: small
    steps near both ends, where the bridges change fastest (Wu et al. 2017)."""
    s = torch.sigmoid(torch.linspace(-SIGMOID_DELTA, SIGMOID_DELTA, num_steps + 1).double())
    return (s - s[0]) / (s[-1] - s[0])


def linear_schedule(num_steps: int) -> torch.Tensor:
    """b_k = k / T."""
    return torch.linspace(0, 1, num_steps + 1, dtype=torch.float64)


SCHEDULES: dict[str, Callable[[int], torch.Tensor]] = {
    "sigmoid": sigmoid_schedule,
    "linear": linear_schedule,
}


@dataclass
class StepSizes:
    """Fixed step sizes ``[P, N]`` recorded at inverse temperatures ``betas[P]``; ``at(b)``
    reads the one recorded at the first b' >= b."""

    betas: torch.Tensor
    log_step: torch.Tensor

    def at(self, b: float) -> torch.Tensor:
        i = int(torch.searchsorted(self.betas, torch.tensor(b, dtype=self.betas.dtype)))
        return self.log_step[min(i, len(self.betas) - 1)].exp()

    def update(self, b: float, accepted: torch.Tensor) -> None:
        """Fixed: nothing to learn."""

    @classmethod
    def constant(cls, step: float, n: int, device) -> StepSizes:
        return cls(
            torch.ones(1, dtype=torch.float64), torch.full((1, n), math.log(step), device=device)
        )


class Tuner:
    """Adapts log(step) per data point towards ``target`` acceptance (the pilot run)."""

    def __init__(self, n: int, device, init: float = 0.1, target: float = 0.65, rate: float = 1.0):
        self.log_step = torch.full((n,), math.log(init), device=device)
        self.target, self.rate = target, rate
        self.betas: list[float] = []
        self.record: list[torch.Tensor] = []

    def at(self, b: float) -> torch.Tensor:
        return self.log_step.exp()

    def update(self, b: float, accepted: torch.Tensor) -> None:
        rate = accepted.float().mean(0)
        self.log_step = (self.log_step + self.rate * (rate - self.target)).clamp(-12.0, 3.0)
        self.betas.append(b)
        self.record.append(self.log_step)

    def result(self, window: int = 5) -> StepSizes:
        """The recorded steps, smoothed over ``window`` neighbouring temperatures (in log)."""
        if not self.record:
            return StepSizes(torch.ones(1, dtype=torch.float64), self.log_step[None])
        rec = torch.stack(self.record)  # [P, N]
        kernel = torch.ones(1, 1, window, dtype=rec.dtype, device=rec.device) / window
        pad = torch.nn.functional.pad(rec.T[:, None], (window // 2, window // 2), mode="replicate")
        smooth = torch.nn.functional.conv1d(pad, kernel)[:, 0].T
        betas = torch.tensor(self.betas, dtype=torch.float64)
        return StepSizes(betas, smooth)


@dataclass
class Annealed:
    """One annealing run over a chunk: float64 log weights ``[C, N]``, and per data point the
    number of accepted and of non-finite (rejected) proposals over all chains."""

    log_w: torch.Tensor
    accepted: torch.Tensor
    nonfinite: torch.Tensor
    transitions: int


def anneal(
    state: State,
    score: Callable[[torch.Tensor], State],
    betas: torch.Tensor,
    steps: StepSizes | Tuner,
    num_leapfrog: int,
    tick: Callable[[], None] = lambda: None,
) -> Annealed:
    """Runs the chains in ``state`` through the temperatures ``betas`` (see the module doc)."""
    c, n = state.log_p.shape
    log_w = torch.zeros(c, n, dtype=torch.float64, device=state.z.device)
    accepted = torch.zeros(n, dtype=torch.long, device=state.z.device)
    nonfinite = torch.zeros_like(accepted)
    b = betas.tolist()
    for k in range(1, len(b)):
        log_w += (b[k] - b[k - 1]) * (state.log_p.double() - state.log_s.double())
        if k < len(b) - 1:
            state, step = hmc_step(state, score, b[k], steps.at(b[k]), num_leapfrog)
            steps.update(b[k], step.accepted)
            accepted += step.accepted.sum(0)
            nonfinite += step.nonfinite.sum(0)
        tick()
    return Annealed(log_w, accepted, nonfinite, len(b) - 2)
