"""Trains the linear-Gaussian VAE step by step (under torchrun or alone) and saves the
parameters after every step: ``python _dp_worker.py OUT BATCH STEPS``."""

import sys
from pathlib import Path

import pyro
import torch

from ppl_vae import LinearGaussian, build_guide, build_model, distributed, fit


def main(out: str, batch: int, steps: int) -> None:
    world = distributed.init()
    truth = LinearGaussian.random(x_dim=6, z_dim=2, correlation=0.5, dtype=torch.float64)
    x = truth.sample(64, torch.Generator().manual_seed(0))
    pyro.set_rng_seed(0)
    model = build_model(
        6,
        2,
        likelihood="gaussian",
        likelihood_options={"scale": 1.0, "learn_scale": "scalar"},
        hidden=[4],
    )
    guide = build_guide("diagonal", 6, 2, hidden=[5])
    model, guide = model.double(), guide.double()
    run_dir, trajectory = Path(out) / "run", []
    for s in range(1, steps + 1):
        fit(
            model,
            guide,
            x,
            epochs=10,
            batch_size=batch,
            lr=0.05,
            seed=3,
            run_dir=run_dir,
            resume=s > 1,
            max_steps=s,
            progress=False,
            world=world,
            noise="per_point",
        )
        trajectory.append(
            {
                n: p.detach().clone()
                for n, p in [*model.named_parameters(), *guide.named_parameters()]
            }
        )
    if world.is_main:
        torch.save(trajectory, Path(out) / "trajectory.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
