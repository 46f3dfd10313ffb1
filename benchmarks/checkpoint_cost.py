"""What a checkpoint costs: size on disk and seconds per save and per resume, against the time
of one SVI step, for the 784-400-20 Bernoulli VAE of ``models/mnist_bernoulli_mlp.toml``.

It trains a few steps on random binary images (the cost does not depend on the data), then
times ``save_training`` (atomic write with fsync) and ``load_training`` and prints JSON. Use it
to pick ``train.checkpoint_steps``: a save every S steps adds ``save_s / (S * step_s)`` to the
training time.

    python benchmarks/checkpoint_cost.py                 # into a temporary folder
    python benchmarks/checkpoint_cost.py --dir runs/tmp  # on the disk the runs go to
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO

import ppl_vae as pv
from ppl_vae.training.checkpoint import Position, load_training, save_training
from ppl_vae.training.optim import adam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", help="folder to write the checkpoint in (default: a temporary one)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    a = p.parse_args()
    torch.manual_seed(0)
    model = pv.build_model(784, 20, likelihood="bernoulli", hidden=[400])
    guide = pv.build_guide("diagonal", 784, 20, hidden=[400])
    x = torch.bernoulli(torch.full((a.batch_size, 784), 0.13))
    optim = adam(1e-3)
    dev = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp, pyro.get_param_store().scope():
        path = Path(a.dir or tmp) / "checkpoint.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        svi = SVI(model, guide, optim, Trace_ELBO())
        svi.step(x)  # creates Adam's state
        steps = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            svi.step(x)
            steps.append(time.perf_counter() - t0)
        saves, loads = [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            save_training(path, model, guide, optim, Position(step=1), [], dev)
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            load_training(path, model, guide, adam(1e-3), dev)
            loads.append(time.perf_counter() - t0)
        size = path.stat().st_size
    n_params = sum(q.numel() for q in [*model.parameters(), *guide.parameters()])
    print(
        json.dumps(
            {
                "parameters": n_params,
                "checkpoint_mib": round(size / 2**20, 2),
                "save_s_median": round(statistics.median(saves), 4),
                "load_s_median": round(statistics.median(loads), 4),
                "svi_step_s_median": round(statistics.median(steps), 4),
                "batch_size": a.batch_size,
                "folder": str(Path(a.dir).resolve()) if a.dir else "temporary",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
