"""How the decoder's output bias starts (a recipe's ``model.output_bias``).

``logit_mean`` sets the bias of the decoder's last linear layer to logit(mean of the training
images), each pixel's mean clipped to [0.001, 0.999] as in the IWAE paper's code, so that the
untrained model already puts every pixel at its average rate; reproductions of Burda et al.
report that this matters. It needs Bernoulli pixels (the decoder gives their logits).

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders; code:
yburda/iwae, ``datasets.py`` (``get_train_bias_np``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.contract import HasLikelihood, has
from ..core.errors import InputError
from ..core.registry import lookup
from .likelihoods import Bernoulli


def output_layer(model: Any) -> nn.Linear:
    """The decoder's last linear layer, which gives one output per pixel."""
    layers = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    if not layers or layers[-1].out_features != model.x_dim:
        raise InputError(
            f"model.output_bias needs a decoder whose last layer is linear with one output per "
            f"pixel ({model.x_dim}); this one's is not (use decoder.net = 'mlp')."
        )
    return layers[-1]


@torch.no_grad()
def logit_mean(model: Any, train: torch.Tensor, clip: float = 1e-3) -> None:
    """Sets the output bias to logit(clip(mean of ``train``, clip, 1 - clip)), per pixel."""
    if not (has(model, HasLikelihood) and isinstance(model.likelihood, Bernoulli)):
        raise InputError(
            "model.output_bias = 'logit_mean' sets the logits of Bernoulli pixels: it needs "
            "model.likelihood = 'bernoulli'."
        )
    layer = output_layer(model)
    mean = train.double().mean(0).clamp(clip, 1 - clip)
    layer.bias.copy_(torch.logit(mean).to(layer.bias))


OUTPUT_BIASES: dict[str, Callable[[Any, torch.Tensor], None]] = {
    "random": lambda model, train: None,  # the network's own initialization
    "logit_mean": logit_mean,
}


def init_output_bias(model: Any, train: torch.Tensor, how: str = "random") -> None:
    """Initializes the decoder's output bias as ``how`` (a key of ``OUTPUT_BIASES``) says,
    from the training data ``train`` ``[N, x_dim]`` (gray values under dynamic binarization)."""
    lookup(OUTPUT_BIASES, how, "model.output_bias")(model, train)
