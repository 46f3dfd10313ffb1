"""Shared fixtures: the data root (``$PPL_VAE_DATA``, else ``../shared/data`` beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pyro
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
os.environ.setdefault("PPL_VAE_DATA", str(DEFAULT_DATA))
torch.set_num_threads(1)  # small tensors: one thread is faster, and robust to a busy machine


@pytest.fixture
def data_root() -> Path:
    root = Path(os.environ["PPL_VAE_DATA"])
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"real datasets not found under {root}; set PPL_VAE_DATA")
    return root


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()
