"""Encoder and decoder networks. No probability here: tensors in, tensors out.

Every network maps ``[..., in_features] -> [..., out_features]`` so that leading particle and
data dimensions pass through unchanged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..core.errors import InputError
from ..core.registry import lookup

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


class MLP(nn.Sequential):
    """A multilayer perceptron ``in -> hidden... -> out``; with no hidden layers it is linear."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (400,),
        activation: str = "relu",
        image_shape: Sequence[int] | None = None,
    ):
        act = lookup(ACTIVATIONS, activation, "activation")
        layers: list[nn.Module] = []
        sizes = [in_features, *hidden]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), act()]
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28x28 -> 7x7) and a linear head."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (32, 64),
        activation: str = "relu",
        image_shape: Sequence[int] | None = (1, 28, 28),
    ):
        super().__init__()
        c, h, w = _check_image(image_shape, in_features)
        act = lookup(ACTIVATIONS, activation, "activation")
        c1, c2 = _two_channels(hidden)
        self.image_shape = (c, h, w)
        self.conv = nn.Sequential(
            nn.Conv2d(c, c1, 4, stride=2, padding=1),
            act(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            act(),
        )
        self.head = nn.Linear(c2 * (h // 4) * (w // 4), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self.conv(x.reshape(-1, *self.image_shape))
        return self.head(y.flatten(1)).reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """A linear layer to 7x7 feature maps and two stride-2 transposed convolutions to 28x28."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 32),
        activation: str = "relu",
        image_shape: Sequence[int] | None = (1, 28, 28),
    ):
        super().__init__()
        c, h, w = _check_image(image_shape, out_features)
        act = lookup(ACTIVATIONS, activation, "activation")
        c1, c2 = _two_channels(hidden)
        self.start = (c1, h // 4, w // 4)
        self.head = nn.Sequential(nn.Linear(in_features, math.prod(self.start)), act())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 4, stride=2, padding=1),
            act(),
            nn.ConvTranspose2d(c2, c, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        y = self.head(z.reshape(-1, z.shape[-1])).reshape(-1, *self.start)
        return self.deconv(y).reshape(*lead, -1)


def _two_channels(hidden: Sequence[int]) -> tuple[int, int]:
    if len(hidden) != 2:
        raise InputError(f"conv nets take hidden = [channels1, channels2], got {list(hidden)}.")
    return int(hidden[0]), int(hidden[1])


def _check_image(image_shape: Sequence[int] | None, features: int) -> tuple[int, int, int]:
    if image_shape is None or len(image_shape) != 3 or math.prod(image_shape) != features:
        raise InputError(
            f"conv nets need images of shape (channels, height, width) with {features} pixels, "
            f"got {image_shape}; use net = 'mlp' for data that are not images."
        )
    c, h, w = image_shape
    if h % 4 or w % 4:
        raise InputError(f"conv nets need height and width divisible by 4, got {h}x{w}.")
    return c, h, w


class Frozen(nn.Module):
    """A trained network, frozen: its weights are buffers of this module, so they move and are
    saved with their owner but are never trained (no Pyro param site, no gradient). It runs a
    private copy of the network with those buffers as its weights."""

    def __init__(self, net: nn.Module):
        super().__init__()
        shell = copy.deepcopy(net).requires_grad_(False)
        self._shell = (shell,)  # a tuple: not a submodule, so its parameters are nobody's
        self._names = [name for name, _ in shell.named_parameters()]
        for i, (_, p) in enumerate(shell.named_parameters()):
            self.register_buffer(f"w{i}", p.detach())  # the copy's own storage, not a third

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {name: getattr(self, f"w{i}") for i, name in enumerate(self._names)}
        return torch.func.functional_call(self._shell[0], weights, (x,))


ENCODERS: dict[str, type[nn.Module]] = {"mlp": MLP, "conv": ConvEncoder}
DECODERS: dict[str, type[nn.Module]] = {"mlp": MLP, "conv": ConvDecoder}


def build_net(
    kind: str,
    net: str,
    in_features: int,
    out_features: int,
    hidden: Sequence[int],
    activation: str,
    image_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Builds an ``encoder`` or ``decoder`` network by name (``mlp`` or ``conv``)."""
    table = {"encoder": ENCODERS, "decoder": DECODERS}[kind]
    cls = lookup(table, net, f"{kind} net")
    return cls(in_features, out_features, list(hidden), activation, image_shape)
