"""The M2 objective: unlabelled ELBO with y summed out, labelled ELBO, and a classification loss.

For a batch whose conditioning input ``cond`` holds a label ``y >= 0`` for labelled points and
``-1`` for unlabelled ones, the loss is (Kingma et al. 2014, eq. 9)

    - sum_{x unlabelled} U(x) - sum_{(x, y) labelled} [L(x, y) + alpha log q(y|x)],

with L(x, y) = E_q(z|x,y)[log p(x, y, z) - log q(z|x,y)] (``Trace_ELBO``, y observed) and
U(x) = sum_y q(y|x) [L(x, y) - log q(y|x)], the sum over y exact: the guide marks ``"y"`` for
parallel enumeration and ``TraceEnum_ELBO`` sums over it. The three parts are also returned one
by one (``parts``), for tests and logging.

``labelled_scale`` multiplies both labelled terms. The run sets it to 1 / r when the training
split holds every labelled point r times (``data.labels``, ``model.options.labelled_fraction``),
so that each labelled point counts once per epoch, as in the objective above, however often the
batches show it; repeating then only spreads the labelled signal over more steps.

Objectives that do not apply to M2: every other registered one (``elbo``, ``iwae``,
``iwae_dreg``, ``elbo_stl``, ``miwae``, ``renyi``, ``elbo_analytic_kl``) would sample y instead of
summing it, and the reparameterized-gradient estimators (STL, DReG) have no reparameterization
for a discrete site; ``check_objective`` refuses them for M2.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
Generative Models; Pyro's semi-supervised VAE tutorial.
"""

from __future__ import annotations

import torch
from pyro.infer import ELBO, Trace_ELBO, TraceEnum_ELBO

from ..core.errors import ObjectiveError

NAME = "semi_supervised"


class SemiSupervisedELBO(ELBO):
    """M2's loss: enumerated unlabelled ELBO + labelled ELBO + ``alpha`` x classification loss.

    Args:
        num_particles: samples of z per data point (and per label, where y is summed).
        alpha: weight of the classification loss -log q(y|x) on labelled points (Pyro's
            tutorial: 46; Kingma et al.: 0.1 N).
        labelled_scale: weight of each labelled point's terms (the run's 1 / r, see above).
    """

    def __init__(self, num_particles: int = 1, alpha: float = 46.0, labelled_scale: float = 1.0):
        if alpha < 0:
            raise ObjectiveError(f"objective.options.alpha must be >= 0, got {alpha}.")
        if not labelled_scale > 0:
            raise ObjectiveError(f"labelled_scale must be > 0, got {labelled_scale}.")
        vec = num_particles > 1
        super().__init__(
            num_particles=num_particles, max_plate_nesting=1 + vec, vectorize_particles=vec
        )
        self.alpha = float(alpha)
        self.labelled_scale = float(labelled_scale)
        # a model without a discrete latent (a plain VAE) has nothing to enumerate: then this
        # is the ELBO, which is right, so Pyro's warning about it is off
        self.unlabelled = TraceEnum_ELBO(
            num_particles=num_particles,
            vectorize_particles=vec,
            max_plate_nesting=1 + vec,
            strict_enumeration_warning=False,
        )
        self.labelled = Trace_ELBO(
            num_particles=num_particles, vectorize_particles=vec, max_plate_nesting=1 + vec
        )

    def _get_trace(self, model, guide, args, kwargs):  # the parts use Pyro's own losses
        raise NotImplementedError

    def parts(self, model, guide, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict:
        """The three terms of the loss, each summed over its points (differentiable):
        ``unlabelled`` = -sum U(x), ``labelled`` = -sum L(x, y), ``classification`` =
        -sum log q(y|x)."""
        zero = x.new_zeros(())
        lab = (
            cond >= 0
            if cond is not None
            else torch.zeros(len(x), dtype=torch.bool, device=x.device)
        )
        out = {"unlabelled": zero, "labelled": zero, "classification": zero}
        if bool((~lab).any()):
            out["unlabelled"] = self.unlabelled.differentiable_loss(model, guide, x[~lab])
        if bool(lab.any()):
            xl, yl = x[lab], cond[lab]
            out["labelled"] = self.labelled.differentiable_loss(model, guide, xl, cond=yl)
            log_q = guide.classify(xl).log_softmax(-1)
            out["classification"] = -log_q.gather(-1, yl[:, None].long()).sum()
        return out

    def differentiable_loss(self, model, guide, x, cond=None) -> torch.Tensor:
        p = self.parts(model, guide, x, cond)
        labelled = p["labelled"] + self.alpha * p["classification"]
        return p["unlabelled"] + self.labelled_scale * labelled

    def loss(self, model, guide, x, cond=None) -> float:
        # not under torch.no_grad: Pyro's enumerated ELBO refuses to run there
        return float(self.differentiable_loss(model, guide, x, cond).detach())

    def loss_and_grads(self, model, guide, x, cond=None) -> float:
        loss = self.differentiable_loss(model, guide, x, cond)
        loss.backward()
        return float(loss.detach())


def check_objective(name: str, what: str = "M2") -> None:
    """Raises ObjectiveError unless ``name`` is the semi-supervised objective."""
    if name != NAME:
        raise ObjectiveError(
            f"objective {name!r} does not apply to {what}: it would sample the discrete label y "
            f"(and STL/DReG have no reparameterized gradient for it) instead of summing it out "
            f"by enumeration. Set objective.name = '{NAME}'."
        )
