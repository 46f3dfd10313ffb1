"""The SVI step against a plain PyTorch step of the same networks, in one process: Pyro's
eager step, the replayed step (``train.replay``) and the hand-written loop take turns on the
same batches, so that a busy machine slows them alike.

Two settings, the issue's goals beside them:

- Burda et al.'s one-layer net (784-200-200-50, tanh, Bernoulli), batch 20, the ELBO: the
  replayed step at most 1.1x the plain step;
- the seed VAE (784-400-20), batch 128: at most 1.05x.

The plain step is the loop users write, with the kernels the toolkit uses (the fused Bernoulli
log-likelihood, one fused Adam), so what is left is the cost of Pyro's bookkeeping. Prints
JSON: ms per step (the best of ``--repeats`` rounds), each path's ratio to the plain step, and
the goal.

    OMP_NUM_THREADS=1 python benchmarks/step_speed.py              # about two minutes
    OMP_NUM_THREADS=1 python benchmarks/step_speed.py --steps 50 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import time

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from svi_throughput import plain_elbo_step

import ppl_vae as pv
from ppl_vae.model.bernoulli import bernoulli_log_prob_sum
from ppl_vae.model.checks import checked_once
from ppl_vae.training.optim import adam
from ppl_vae.training.replay import ReplayedSVI

SETTINGS = {
    "burda_1layer_batch20": {
        "batch": 20,
        "z_dim": 50,
        "hidden": [200, 200],
        "activation": "tanh",
        "goal": 1.10,
    },
    "seed_vae_batch128": {
        "batch": 128,
        "z_dim": 20,
        "hidden": [400],
        "activation": "relu",
        "goal": 1.05,
    },
}


def build(s: dict):
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    net = {"hidden": s["hidden"], "activation": s["activation"]}
    model = pv.build_model(784, s["z_dim"], likelihood="bernoulli", **net)
    guide = pv.build_guide("diagonal", 784, s["z_dim"], **net)
    return model, guide


def pyro_steps(svi_class, s: dict, x: torch.Tensor, steps: int) -> float:
    """Seconds for ``steps`` SVI steps, after two untimed ones (parameters made, plan traced)."""
    model, guide = build(s)
    svi = svi_class(model, guide, adam(1e-3), Trace_ELBO())
    b = s["batch"]
    with checked_once(model, x):
        svi.step(x[:b])
        svi.step(x[:b])
        t0 = time.perf_counter()
        for i in range(steps):
            svi.step(x[i * b : (i + 1) * b])
        return time.perf_counter() - t0


def plain_steps(s: dict, x: torch.Tensor, steps: int) -> float:
    """The same ELBO step written out in PyTorch (``svi_throughput.plain_elbo_step``): no Pyro."""
    model, guide = build(s)
    params = [*model.parameters(), *guide.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    b = s["batch"]

    def step(xb):
        plain_elbo_step(model, guide, opt, xb, bernoulli_log_prob_sum)

    step(x[:b])
    step(x[:b])
    t0 = time.perf_counter()
    for i in range(steps):
        step(x[i * b : (i + 1) * b])
    return time.perf_counter() - t0


PATHS = {
    "pyro_eager": lambda s, x, n: pyro_steps(SVI, s, x, n),
    "replayed": lambda s, x, n: pyro_steps(ReplayedSVI, s, x, n),
    "plain_pytorch": plain_steps,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="timed steps per round")
    p.add_argument("--repeats", type=int, default=5, help="rounds; the best counts")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    a = p.parse_args(argv)
    x_all = pv.load_data("mnist", a.data_dir, binarize="static").train
    report = {"threads": torch.get_num_threads(), "steps": a.steps, "repeats": a.repeats}
    results = {}
    for name in a.settings:
        s = SETTINGS[name]
        x = x_all[: s["batch"] * a.steps]
        times = {path: [] for path in PATHS}
        for _ in range(a.repeats):  # interleaved
            for path, run in PATHS.items():
                times[path].append(run(s, x, a.steps))
        ms = {path: 1e3 * min(v) / a.steps for path, v in times.items()}
        results[name] = {
            "batch": s["batch"],
            "ms_per_step": ms,
            "vs_plain": {path: ms[path] / ms["plain_pytorch"] for path in PATHS},
            "goal_vs_plain": s["goal"],
            "replayed_meets_goal": ms["replayed"] / ms["plain_pytorch"] <= s["goal"],
        }
    print(json.dumps({**report, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
