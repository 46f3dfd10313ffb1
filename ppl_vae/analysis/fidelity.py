"""Label fidelity: do conditional samples show the class they were asked for?

A reference classifier, a small conv net trained on all 60,000 labelled MNIST training images
(about 99% test accuracy), reads each generated image; the label fidelity of a class is the
share of its samples the reference assigns to that class. It is the measure of the CVAE and
class-conditional literature ("classification accuracy score" of conditional samples), and the
number that shows whether p(x | y, z) uses y at all: an M2 whose z carries the class scores near
1/10.

``train_reference`` trains and saves the reference (``benchmarks/reference_classifier.py``);
``load_reference`` reads it back; ``label_fidelity`` scores images of one asked class.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import InputError
from ..storage import load_checkpoint, save_checkpoint

SIDE = 28  # MNIST's images


class ReferenceNet(nn.Module):
    """conv 32 -> pool -> conv 64 -> pool -> 128 -> 10 (ReLU), on 28 x 28 gray images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, SIDE, SIDE)))


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The reference's class for each row of ``x`` ``[N, 784]`` (values in [0, 1])."""
    if x.dim() != 2 or x.shape[1] != SIDE * SIDE:
        raise InputError(
            f"the reference classifier reads MNIST-sized images, rows of {SIDE * SIDE} pixels; "
            f"got shape {list(x.shape)}. Label fidelity applies to runs on MNIST."
        )
    net.eval()
    return torch.cat(
        [net(x[i : i + batch_size].float()).argmax(-1) for i in range(0, len(x), batch_size)]
    )


def train_reference(
    train: torch.Tensor,
    labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[ReferenceNet, float]:
    """Trains the reference with Adam on ``train`` (gray images ``[N, 784]``); returns it and its
    accuracy on ``test``."""
    torch.manual_seed(seed)
    net = ReferenceNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), batch_size):
            rows = order[i : i + batch_size]
            loss = nn.functional.cross_entropy(net(train[rows]), labels[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    accuracy = float((predict(net, test) == test_labels).double().mean())
    return net, accuracy


def save_reference(path: str | Path, net: ReferenceNet, test_accuracy: float) -> None:
    save_checkpoint(path, {"model": net.state_dict(), "test_accuracy": test_accuracy})


def load_reference(path: str | Path) -> tuple[ReferenceNet, float]:
    """The saved reference and its test accuracy; a clear error if there is none yet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"no reference classifier at {path}; train it first (a few CPU-minutes): python "
            f"benchmarks/reference_classifier.py --out {path}"
        )
    state = load_checkpoint(path)
    net = ReferenceNet()
    net.load_state_dict(state["model"])
    return net.eval(), float(state["test_accuracy"])


def label_fidelity(net: nn.Module, images: torch.Tensor, label: int) -> dict[str, Any]:
    """The share of ``images`` the reference assigns to ``label``, with its binomial standard
    error, and the count of each class it saw."""
    guess = predict(net, images.cpu())
    n = len(guess)
    share = float((guess == label).double().mean())
    return {
        "label": int(label),
        "n": n,
        "fidelity": share,
        "stderr": math.sqrt(share * (1 - share) / n) if n > 1 else 0.0,
        "counts": torch.bincount(guess, minlength=10).tolist(),
    }
