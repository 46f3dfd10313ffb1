"""Train and evaluate speed with a learned prior, against the standard prior in the same process.

Builds ``models/mnist_bernoulli_mlp.toml`` (784-400-20 ReLU, batch 128) once per prior
(``standard``; ``mog`` and ``vamp`` at K = 500; ``flow`` at its defaults) and, repeating the
priors in turn so that a busy machine slows them alike, times SVI steps on the same MNIST
batches and ``evaluate`` at K = ``--k`` on the same test images. It also counts how often each
step and each evaluation ran the encoder's first layer over the K pseudo-inputs of the
VampPrior: once per step (its cost) and once per chunk of particles in an evaluation, plus one
for the plate-nesting probe of each call. Prints JSON: milliseconds per step and seconds per
evaluation (minimum and median over the repeats), the ratio to ``standard``, and the counts.

    OMP_NUM_THREADS=1 python benchmarks/prior_speed.py                  # a few minutes
    python benchmarks/prior_speed.py --steps 3 --repeats 1 --eval-n 10 --k 10   # a smoke check
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

import ppl_vae as pv
from ppl_vae import build_objective
from ppl_vae.model import connect
from ppl_vae.model.checks import checked_once
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_data, build_parts
from ppl_vae.training.optim import adam

RECIPE = Path(__file__).resolve().parents[1] / "models" / "mnist_bernoulli_mlp.toml"
PRIORS = {
    "standard": ['model.prior="standard"', "model.prior_options={}"],
    "mog": ['model.prior="mog"', "model.prior_options={num_components=500}"],
    "vamp": ['model.prior="vamp"', "model.prior_options={num_pseudo=500}"],
    "flow": ['model.prior="flow"', "model.prior_options={}"],
}
NUM_PSEUDO = 500


def pseudo_passes(guide: torch.nn.Module) -> list[int]:
    """A counter of the calls of the guide's first 784-input layer on NUM_PSEUDO rows."""
    count = [0]
    first = next(m for m in guide.modules() if isinstance(m, torch.nn.Linear))

    def hook(module, args, output):
        if args[0].reshape(-1, args[0].shape[-1]).shape[0] == NUM_PSEUDO:
            count[0] += 1

    first.register_forward_hook(hook)
    return count


def measure(prior: str, a, data, x, x_eval) -> dict:
    recipe = config.load(RECIPE, [f"data.subset={a.subset}", *PRIORS[prior]])
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    model, guide = build_parts(recipe, data)
    connect(model, guide)
    count = pseudo_passes(guide)
    svi = SVI(model, guide, adam(1e-3), build_objective("elbo", 1))
    batch = recipe.train.batch_size
    with checked_once(model, x):
        svi.step(x[:batch])  # untimed: Pyro's plate-nesting guess
        count[0] = 0
        t0 = time.perf_counter()
        for i in range(a.steps):
            svi.step(x[i * batch : (i + 1) * batch])
        ms = (time.perf_counter() - t0) / a.steps * 1000
    per_step = count[0] / a.steps
    count[0] = 0
    t0 = time.perf_counter()
    pv.evaluate(model, guide, x_eval, [a.k], khat=False, batch_size=a.eval_n)
    seconds = time.perf_counter() - t0
    return {"ms": ms, "eval_s": seconds, "passes_per_step": per_step, "passes_eval": count[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--k", type=int, default=1000, help="particles of the timed evaluation")
    p.add_argument("--eval-n", type=int, default=100, help="test images of the evaluation")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.subset = 128 * (a.steps + 1)
    recipe = config.load(RECIPE, [f"data.subset={a.subset}"])
    data = build_data(recipe, a.data_dir)
    x = data.train_epoch(torch.Generator().manual_seed(0))
    x_eval = data.test[: a.eval_n]
    runs: dict[str, list[dict]] = {}
    for _ in range(a.repeats):
        for prior in PRIORS:
            runs.setdefault(prior, []).append(measure(prior, a, data, x, x_eval))
    base_ms = min(r["ms"] for r in runs["standard"])
    base_s = min(r["eval_s"] for r in runs["standard"])
    out = {}
    for prior, rs in runs.items():
        ms, es = [r["ms"] for r in rs], [r["eval_s"] for r in rs]
        out[prior] = {
            "ms_per_step_min": min(ms),
            "ms_per_step_median": statistics.median(ms),
            "step_vs_standard": min(ms) / base_ms,
            "eval_seconds_min": min(es),
            "eval_seconds_median": statistics.median(es),
            "eval_vs_standard": min(es) / base_s,
            "pseudo_input_passes_per_step": rs[-1]["passes_per_step"],
            "pseudo_input_passes_per_evaluation": rs[-1]["passes_eval"],
        }
    meta = {"recipe": RECIPE.name, "threads": a.threads, "steps": a.steps, "k": a.k}
    meta |= {"eval_n": a.eval_n, "repeats": a.repeats}
    print(json.dumps({**meta, "results": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
