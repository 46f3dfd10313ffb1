"""The linear-Gaussian model of ``ppl_vae.data.LinearGaussian`` as a ``VAE``: a frozen linear
decoder and a fixed Gaussian scale, so that its log p(x) and posterior are known exactly."""

from __future__ import annotations

import torch

from ..data.linear_gaussian import LinearGaussian
from .likelihoods import softplus_inverse
from .vae import VAE, build_model


def linear_vae(truth: LinearGaussian, *, prior: str = "standard", prior_options=None) -> VAE:
    """``truth`` as a ``VAE`` with a frozen linear decoder (W, b) and the fixed scale s, in W's
    dtype. With another ``prior`` (``PRIORS``) the decoder is the same and the prior learned:
    ``truth``'s p(x) and posterior are then those of the ``standard`` prior only (a ``mog``
    prior's marginal is the mixture of N(W mu_k + b, W S_k W^T + s^2 I))."""
    model = build_model(
        truth.x_dim,
        truth.z_dim,
        likelihood="gaussian",
        likelihood_options={"scale": truth.s},
        hidden=[],
        prior=prior,
        prior_options=prior_options,
    )
    model = model.to(truth.W.dtype)
    with torch.no_grad():
        model.decoder[0].weight.copy_(truth.W)
        model.decoder[0].bias.copy_(truth.b)
        model.likelihood.raw_scale.fill_(softplus_inverse(truth.s))  # exact in W's dtype
    model.decoder.requires_grad_(False).train(False)
    return model
