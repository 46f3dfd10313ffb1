"""KL annealing (warm-up): the latent terms of any objective weighted by beta, rising to 1.

A messenger, active while the base loss runs, multiplies the scale of every latent sample site,
in the model and the guide, by beta, so each log weight becomes

    log w = log p(x|z) + beta (log p(z) - log q(z|x)),

which for the ELBO is E_q[log p(x|z)] - beta KL(q || p). The weight follows a linear warm-up,

    beta(epoch) = start + (end - start) min(1, epoch / warmup_epochs)   (epoch 0-based),

so it is ``start`` in the first epoch and ``end`` (1 by default) from epoch ``warmup_epochs``
on; with ``warmup_epochs = 0`` it is ``end`` throughout: a fixed beta, e.g. beta > 1 (the
beta-VAE of Higgins et al. 2017, which pushes units into posterior collapse). ``fit()`` calls
``begin_epoch(epoch)`` before each epoch and logs the returned ``kl_weight``; in your own loop,
call it yourself.

References: Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio (2016), Generating Sentences from
a Continuous Space; Sonderby, Raiko, Maaloe, Sonderby & Winther (2016), Ladder Variational
Autoencoders.
"""

from __future__ import annotations

from collections.abc import Callable

from pyro.infer import ELBO
from pyro.poutine.messenger import Messenger

from ..core.contract import BeginsEpoch, has
from ..core.errors import ObjectiveError
from ..core.tracing import is_latent


def warmup_weight(epoch: int, warmup_epochs: int, start: float = 0.0, end: float = 1.0) -> float:
    """beta(epoch) = start + (end - start) * min(1, epoch / warmup_epochs), epoch 0-based;
    ``end`` throughout when ``warmup_epochs`` is 0."""
    if warmup_epochs == 0:
        return end
    return start + (end - start) * min(1.0, epoch / warmup_epochs)


class LatentScale(Messenger):
    """Multiplies the scale of every latent (not observed) sample site by ``weight``."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def _process_message(self, msg) -> None:
        if is_latent(msg):
            msg["scale"] = self.weight * msg["scale"]


class KLWarmup(ELBO):
    """Wraps an SVI loss: its latent sites are weighted by ``kl_weight``, set per epoch.

    Args:
        base: the objective to anneal (any Pyro ``ELBO`` here, e.g. ``Trace_ELBO()``, or one
            with free bits, ``FreeBits(elbo, free_bits)``).
        warmup_epochs: epochs until the weight reaches ``end`` (0: ``end`` from the start).
        start: the weight in the first epoch, in [0, 1].
        end: the weight after the warm-up, beta > 0 (1: the objective itself); the recipe's
            ``objective.options.kl_weight``.
    """

    def __init__(self, base: ELBO, warmup_epochs: int, start: float = 0.0, end: float = 1.0):
        if not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ObjectiveError(
                f"kl_warmup_epochs must be an integer >= 0, got {warmup_epochs!r}."
            )
        if not 0.0 <= start <= 1.0:
            raise ObjectiveError(f"kl_start must be in [0, 1], got {start!r}.")
        if not isinstance(end, int | float) or not end > 0:
            raise ObjectiveError(f"kl_weight (beta) must be a number > 0, got {end!r}.")
        super().__init__(num_particles=base.num_particles)
        self.base, self.warmup_epochs, self.start = base, warmup_epochs, float(start)
        self.end = float(end)
        self.kl_weight = warmup_weight(0, warmup_epochs, self.start, self.end)

    def begin_epoch(self, epoch: int) -> dict[str, float]:
        """Sets the weight for this epoch; returns it (and the base loss's values) for logging."""
        self.kl_weight = warmup_weight(epoch, self.warmup_epochs, self.start, self.end)
        base = self.base.begin_epoch(epoch) if has(self.base, BeginsEpoch) else None
        return {"kl_weight": self.kl_weight, **(base or {})}

    def _run(self, method: Callable, *args, **kwargs):
        # As a context rather than a wrapper, so the guide stays a module (STL and DReG detach
        # its parameters) and every trace the base loss makes sees the scaled sites.
        if self.kl_weight == 1.0:
            return method(*args, **kwargs)
        with LatentScale(self.kl_weight):
            return method(*args, **kwargs)

    def _get_trace(self, model, guide, args, kwargs):
        return self._run(self.base._get_trace, model, guide, args, kwargs)

    def loss(self, model, guide, *args, **kwargs):
        return self._run(self.base.loss, model, guide, *args, **kwargs)

    def loss_and_grads(self, model, guide, *args, **kwargs):
        return self._run(self.base.loss_and_grads, model, guide, *args, **kwargs)

    def differentiable_loss(self, model, guide, *args, **kwargs):
        return self._run(self.base.differentiable_loss, model, guide, *args, **kwargs)
