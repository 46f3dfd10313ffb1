"""The ELBO with the KL term in closed form: Pyro's ``TraceMeanField_ELBO``, made strict.

    ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)),

with the KL computed by ``torch.distributions.kl_divergence``. Pyro silently falls back to a
Monte Carlo KL where no closed form is registered; here that is an error naming the site and
both distributions, so that "analytic" always means analytic.

References: Kingma & Welling (2014), Auto-Encoding Variational Bayes, Section 2.4.
"""

from __future__ import annotations

import torch
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import Distribution, Independent, kl_divergence

from ..core.errors import ObjectiveError
from ..core.tracing import is_latent


def describe(d: Distribution) -> str:
    """A distribution's type, with the base of ``Independent`` wrappers: ``Independent(Normal)``."""
    if isinstance(d, Independent):
        return f"Independent({describe(d.base_dist)})"
    return type(d).__name__


def closed_form_kl(q: Distribution, p: Distribution, site: str) -> torch.Tensor:
    """KL(q || p) in closed form, or an ObjectiveError that says what to use instead."""
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        raise ObjectiveError(
            f"no closed-form KL(q || p) at latent site '{site}': the guide draws from "
            f"{describe(q)} and the prior is {describe(p)}. Use objective.name = 'elbo' (a Monte "
            f"Carlo KL), or a guide with the prior's family, e.g. guide.name = 'diagonal'."
        ) from None


class AnalyticKL_ELBO(TraceMeanField_ELBO):
    """``TraceMeanField_ELBO`` that refuses guides without a closed-form KL to the prior."""

    kl_estimate = "analytic"
    _checked = False

    def _get_trace(self, model, guide, args, kwargs):
        model_trace, guide_trace = super()._get_trace(model, guide, args, kwargs)
        if not self._checked:  # the structure is static: one check at the first step suffices
            for name, site in model_trace.nodes.items():
                if is_latent(site):
                    closed_form_kl(guide_trace.nodes[name]["fn"], site["fn"], name)
            self._checked = True
        return model_trace, guide_trace
