"""Random streams: seeds derived from integer keys, and blocks that leave the global stream as
it was. Evaluation and probes draw inside ``forked_rng`` so that training, and an exact resume,
see the same global stream whether or not they ran."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys (NumPy's ``SeedSequence``): nearby keys give
    unrelated streams."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


@contextlib.contextmanager
def forked_rng(device: torch.device, seed: int | None = None) -> Iterator[None]:
    """Inside the block, torch's global stream (and ``device``'s, on a GPU) is a fork, seeded
    with ``seed`` if given; afterwards it is where it was before."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield
