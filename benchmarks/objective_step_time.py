"""Cost of one SVI step for each objective, on Burda et al.'s architecture at batch 20.

Builds ``models/mnist_iwae_1layer.toml`` (784-200-200-50 tanh, Bernoulli) and times SVI steps on
the same MNIST batches for each objective, in one process, repeating the objectives in turn so
that a busy machine slows them alike. Prints JSON: milliseconds per step (minimum and median over
the repeats) and the ratio to ``elbo``.

    python benchmarks/objective_step_time.py                 # about a minute on one CPU thread
    python benchmarks/objective_step_time.py --steps 5 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI

from ppl_vae import build_objective
from ppl_vae.model.checks import checked_once
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_data, build_parts
from ppl_vae.training.optim import adam

RECIPE = Path(__file__).resolve().parents[1] / "models" / "mnist_iwae_1layer.toml"
OBJECTIVES = [("elbo", 1), ("elbo_stl", 1), ("iwae", 5), ("iwae", 50), ("iwae_dreg", 50)]


def step_ms(name: str, k: int, recipe, data, x: torch.Tensor, steps: int, batch: int) -> float:
    """Milliseconds per SVI step, after one untimed step (Pyro's plate-nesting guess)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model, guide = build_parts(recipe, data)
    svi = SVI(model, guide, adam(1e-3), build_objective(name, k))
    with checked_once(model, x):  # as in fit(): the data checked once, not at every step
        svi.step(x[:batch])
        t0 = time.perf_counter()
        for i in range(steps):
            svi.step(x[i * batch : (i + 1) * batch])
        return (time.perf_counter() - t0) / steps * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    recipe = config.load(RECIPE, [f"data.subset={20 * (a.steps + 1)}"])
    data = build_data(recipe, a.data_dir)
    x = data.train_epoch(torch.Generator().manual_seed(0))
    batch = recipe.train.batch_size
    times: dict[str, list[float]] = {}
    for _ in range(a.repeats):
        for name, k in OBJECTIVES:
            ms = step_ms(name, k, recipe, data, x, a.steps, batch)
            times.setdefault(f"{name} K={k}", []).append(ms)
    base = min(times["elbo K=1"])
    out = {
        key: {
            "ms_per_step_min": min(v),
            "ms_per_step_median": statistics.median(v),
            "vs_elbo": min(v) / base,
        }
        for key, v in times.items()
    }
    meta = {
        "recipe": RECIPE.name,
        "batch_size": batch,
        "threads": a.threads,
        "steps": a.steps,
        "repeats": a.repeats,
    }
    print(json.dumps({**meta, "results": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
