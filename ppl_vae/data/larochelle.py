"""The Larochelle & Murray (2011) statically binarized MNIST, from a packed ``.npz``.

References: Larochelle & Murray (2011), The Neural Autoregressive Distribution Estimator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .root import require_files

FILE = "binarized_mnist/binarized_mnist.npz"


def load_larochelle(root: Path) -> dict[str, torch.Tensor]:
    """Returns ``{"train", "valid", "test"}`` as float 0/1 tensors ``[N, 784]``."""
    path = root / FILE
    require_files(
        path.parent,
        [path.name],
        "binarized MNIST",
        how=" It holds train/valid/test as np.packbits of the 0/1 matrices, with num_features.",
    )
    with np.load(path) as z:
        d = int(z["num_features"])
        return {
            split: torch.from_numpy(np.unpackbits(z[split], axis=1, count=d).astype(np.float32))
            for split in ("train", "valid", "test")
        }
