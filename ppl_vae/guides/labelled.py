"""Guides for models with a label: a classifier q(y|x) and an amortized q(z | x, y).

q(z | x, y) is any registered guide (``GUIDES``) whose encoder reads ``[x, onehot(y)]``, so
every guide family that accepts a leading batch dimension works here too. Without a label
(``cond=None``), the guide samples y from the classifier at site ``"y"``, marked for parallel
enumeration: ``TraceEnum_ELBO`` then sums over y exactly instead of sampling it.

References: Kingma, Rezende, Mohamed & Welling (2014), Semi-Supervised Learning with Deep
Generative Models (the M2 inference model q(y|x) q(z|x,y)).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn.functional import linear

from ..core.errors import InputError
from ..model.labelled import as_onehot, joined
from ..model.nets import build_net
from .base import AmortizedGuide


class LabelledLinear(nn.Linear):
    """The first layer of q(z|x,y)'s encoder, W [x, onehot(y)] + b computed as W_x x + b + W_y[y].

    With y enumerated over C classes, the layer costs one product with x instead of C: set
    ``label`` to y (any shape that broadcasts with x's batch) before calling it on x alone."""

    label: torch.Tensor | None = None

    @classmethod
    def replacing(cls, layer: nn.Linear, x_dim: int) -> LabelledLinear:
        new = cls(layer.in_features, layer.out_features, device=layer.weight.device)
        new.load_state_dict(layer.state_dict())
        new.x_dim = x_dim
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.label is None or x.shape[-1] != self.x_dim:
            return super().forward(x)
        w_x, w_y = self.weight[:, : self.x_dim], self.weight[:, self.x_dim :]
        return linear(x, w_x, self.bias) + w_y.T[self.label.long()]


class LabelledGuide(PyroModule):
    """q(y|x) q(z|x,y) (``classifier`` given: M2) or q(z|x,y) alone (class-conditional VAE).

    Args:
        z_guide: a guide built for inputs of ``x_dim + num_classes`` features.
        num_classes: C.
        classifier: network ``[..., x_dim] -> [..., C]`` logits of q(y|x), or None.
    """

    takes_cond = True  # the label, where given (core.contract.Conditioned)

    def __init__(
        self,
        z_guide: AmortizedGuide,
        num_classes: int,
        classifier: torch.nn.Module | None = None,
    ):
        super().__init__(name="guide")
        enc = z_guide.encoder if isinstance(z_guide, AmortizedGuide) else None
        x_dim = z_guide.x_dim - num_classes
        if isinstance(enc, nn.Sequential) and type(enc[0]) is nn.Linear:  # an MLP encoder
            enc[0] = LabelledLinear.replacing(enc[0], x_dim)
        self.z_guide = z_guide
        self.num_classes = num_classes
        self.classifier = classifier

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x), ``[N, C]``."""
        if self.classifier is None:
            raise InputError(
                "this guide has no classifier q(y|x); it is a class-conditional "
                "VAE's guide, which is given the labels."
            )
        return self.classifier(x)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
        """The fraction of points whose most probable class under q(y|x) is ``y``."""
        right = sum(
            int((self.classify(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
            for i in range(0, len(x), batch_size)
        )
        return right / max(len(x), 1)

    def z_distribution(self, x: torch.Tensor, y: torch.Tensor) -> dist.Distribution:
        """q(z | x, y), with batch shape the broadcast of x's and y's."""
        enc = self.z_guide.encoder if isinstance(self.z_guide, AmortizedGuide) else None
        first = enc[0] if isinstance(enc, nn.Sequential) else None
        if isinstance(first, LabelledLinear):  # x times W_x once, not once per label
            first.label = y
            try:
                return self.z_guide.distribution(x)
            finally:
                first.label = None
        return self.z_guide.distribution(joined(x, as_onehot(y, self.num_classes, x)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate("data", x.shape[0]):
            if cond is None:
                q_y = dist.Categorical(logits=self.classify(x))
                y = pyro.sample("y", q_y, infer={"enumerate": "parallel"})
            else:
                y = cond
            return pyro.sample("z", self.z_distribution(x, y))

    def epoch_metrics(self, data) -> dict[str, float]:
        """``test_accuracy`` of q(y|x) on the test split, for the metrics of every epoch."""
        y = data.labels.get("test")
        if self.classifier is None or y is None or not len(data.test):
            return {}
        return {"test_accuracy": self.accuracy(data.test, y.to(data.test.device))}


def build_labelled_guide(
    guide: AmortizedGuide,
    x_dim: int,
    num_classes: int,
    classify: bool,
    hidden: Sequence[int] = (500,),
    activation: str = "softplus",
) -> LabelledGuide:
    """Wraps ``guide`` (built for ``x_dim + num_classes`` inputs) with an MLP classifier."""
    net = build_net("encoder", "mlp", x_dim, num_classes, hidden, activation) if classify else None
    return LabelledGuide(guide, num_classes, net)
