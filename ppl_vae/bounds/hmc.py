"""One HMC transition for every chain and data point at once, each accepted or rejected alone.

The target at inverse temperature b is the geometric bridge f_b(z) = s(z)^(1-b) p(x, z)^b, with
potential U(z) = -log f_b(z). A transition draws a momentum r ~ N(0, I), takes ``num_leapfrog``
leapfrog steps of size ``step_size[n]`` (one per data point) and accepts the end point with
probability min(1, exp(H_0 - H_L)), H = U + |r|^2 / 2, per chain and data point: Pyro's ``HMC``
accepts or rejects its whole state at once, which would couple the chains and points here.
A proposal whose energy is NaN or infinite is rejected and counted.

References: Neal (2011), MCMC Using Hamiltonian Dynamics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .target import State


def log_f(state: State, b: float) -> torch.Tensor:
    """log f_b(z) = (1 - b) log s(z) + b log p(x, z), ``[C, N]``."""
    return (1 - b) * state.log_s + b * state.log_p


def grad_log_f(state: State, b: float) -> torch.Tensor:
    """The gradient of log f_b in z, ``[C, N, D]``."""
    return (1 - b) * state.grad_s + b * state.grad_p


@dataclass
class Step:
    """What a transition did, per chain and data point ``[C, N]``: accepted, and whether the
    proposal's energy was not finite (then it was rejected)."""

    accepted: torch.Tensor
    nonfinite: torch.Tensor


def hmc_step(
    state: State,
    score: Callable[[torch.Tensor], State],
    b: float,
    step_size: torch.Tensor,
    num_leapfrog: int,
) -> tuple[State, Step]:
    """One HMC transition that leaves f_b invariant; ``step_size`` is ``[N]``, ``score`` maps
    ``z[C, N, D]`` to its ``State``. Returns the new state and what happened."""
    eps = step_size.to(state.z.dtype).view(1, -1, 1)
    r0 = torch.randn_like(state.z)
    r = r0 + 0.5 * eps * grad_log_f(state, b)
    new = state
    for i in range(num_leapfrog):
        new = score(state.z + eps * r if i == 0 else new.z + eps * r)
        r = r + (eps if i < num_leapfrog - 1 else 0.5 * eps) * grad_log_f(new, b)
    # Energies in float64: H_0 - H_L is a small difference of large numbers in float32.
    h0 = -log_f(state, b).double() + 0.5 * r0.double().square().sum(-1)
    h1 = -log_f(new, b).double() + 0.5 * r.double().square().sum(-1)
    log_accept = h0 - h1
    finite = torch.isfinite(h1) & torch.isfinite(new.grad_p).all(-1)
    finite &= torch.isfinite(new.grad_s).all(-1)
    u = torch.rand_like(log_accept)
    accepted = finite & (torch.log(u) < log_accept)
    return state.select(accepted, new), Step(accepted, ~finite)
