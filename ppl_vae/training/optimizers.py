"""The optimizers a recipe can name (``train.optimizer``, options in ``train.optimizer_options``).

- ``adam``: ``torch.optim.Adam`` (fused where torch has it); options ``betas``, ``eps``,
  ``weight_decay``, ``amsgrad``.
- ``adam_iwae``: Adam as the IWAE paper's code applies it (yburda/iwae, ``optimizers.py``),
  which differs from torch's in three ways:

  1. epsilon is added to sqrt(v), the *uncorrected* second moment, and the bias correction goes
     into the step size: step = lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), so the
     effective epsilon of torch's form is eps / sqrt(1 - b2^t), large in the first steps;
  2. the second moment starts at 1 (``v_init``), not 0;
  3. each update uses the moments and t from before the current gradient (the code's Theano
     updates all read the old values), with t starting at 1: the first step moves nothing.

  The paper's settings are ``betas = [0.99, 0.999]``, ``eps = 1e-4``.

References: Kingma & Ba (2015), Adam, section 2; Burda, Grosse & Salakhutdinov (2016).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..core.options import checked_lookup
from ..distributed import SINGLE, World
from .optim import JointOptim, adam


class IWAEAdam(torch.optim.Optimizer):
    """Adam exactly as in yburda/iwae's ``optimizers.py`` (see the module docstring).

    Args:
        params: the parameters.
        lr: the learning rate.
        betas: (beta1, beta2) of the moving averages.
        eps: added to sqrt(v) before the bias correction.
        v_init: the second moment's starting value (the paper's code: 1).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.99, 0.999),
        eps: float = 1e-4,
        v_init: float = 1.0,
    ):
        b1, b2 = betas
        if lr <= 0 or eps < 0 or v_init < 0 or not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"IWAEAdam: bad settings lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": (b1, b2), "eps": eps, "v_init": v_init})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (b1, b2), eps, lr = group["betas"], group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(1.0, dtype=torch.float64)  # the code's t
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.full_like(p, group["v_init"])
                m, v, t = state["exp_avg"], state["exp_avg_sq"], float(state["step"])
                alpha = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
                p.addcdiv_(m, v.sqrt().add_(eps), value=-alpha)  # the old m, v and t
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                state["step"] += 1
        return loss


# train.optimizer -> a torch optimizer class taking (params, lr=..., **train.optimizer_options)
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adam_iwae": IWAEAdam,
}


# Parameters of the optimizer classes that fit() fills in itself, and where a recipe sets them.
RESERVED = {"params": "the model and guide", "lr": "train.lr", "fused": "the device"}


def build_optimizer(name: str, lr: float, world: World = SINGLE, **options: Any) -> JointOptim:
    """The optimizer ``name`` at rate ``lr`` over all parameters, in Pyro's interface (one
    ``JointOptim``; gradients summed over the ranks of a data-parallel ``world``), with
    ``options`` checked against the class (an unknown one names the closest)."""
    cls = checked_lookup(
        OPTIMIZERS, name, "optimizer", options, "train.optimizer_options", reserved=RESERVED
    )
    if "betas" in options:  # TOML has lists, torch wants a pair
        options["betas"] = tuple(options["betas"])
    return adam(lr, world, cls, **options)
