"""AIS accuracy per unit of cost on the linear-Gaussian truth: which leapfrog count, step-size
target and schedule buy the most accuracy for a second of compute.

A 4-dimensional linear-Gaussian model (exact log p(x)) and a deliberately rough guide (the
exact posterior shifted by 0.8 and widened 1.6 times); AIS with T steps and C chains from the
guide, per-point step sizes from the pilot run, for every setting in the grid, all on the same
data points, the settings taking turns. For each setting it prints the mean gap to the exact
log p(x) (>= 0 in expectation: AIS is a stochastic lower bound) with its standard error over
the data points, the log-weight variance across chains (the quantity that sets the error),
the seconds, and variance x seconds (work-normalized variance: lower is better). With
``--budget B``, each leapfrog count L gets T = B / L steps, so that every setting makes the same
number of gradient evaluations: what is compared is how to spend a fixed cost.

    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py                 # about ten minutes
    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py --budget 2000 --leapfrog 2 5 10 20
    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py --run RUN --n 20 --budget 1000

With ``--run``, a trained run's model and its first test images stand in (MNIST: no exact
answer, so "gap" is minus the AIS estimate, lower is tighter).
    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py --n 10 --steps 20 --leapfrog 5 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import pyro
import pyro.distributions as dist
import torch

from ppl_vae import LinearGaussian
from ppl_vae.bounds.ais import ais
from ppl_vae.model import linear_vae


def problem(n: int, seed: int = 2):
    truth = LinearGaussian.random(x_dim=8, z_dim=4, noise=0.7, seed=seed, dtype=torch.float64)
    x = truth.sample(n, torch.Generator().manual_seed(seed))

    def rough(x):  # wider than the posterior and off its mean
        post = truth.posterior(x)
        scale = 1.6 * post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(post.loc + 0.8, scale).to_event(1))

    return truth, linear_vae(truth), rough, x


def trained(run: str, n: int):
    """A trained run's model and guide and its first ``n`` test images (no exact answer)."""
    import ppl_vae as pv

    r = pv.load_run(run)
    return r.model, r.guide, r.data.test[:n]


def measure(model, guide, x, exact, steps, chains, leapfrog, accept, schedule, seed) -> dict:
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    res = ais(
        model,
        guide,
        x,
        num_steps=steps,
        num_chains=chains,
        num_leapfrog=leapfrog,
        target_accept=accept,
        schedule=schedule,
    )
    seconds = time.perf_counter() - t0
    # with no exact answer, the gap is to 0: minus the estimate (a lower bound: lower is tighter)
    gap = (exact if exact is not None else 0.0) - res.log_p
    var = res.log_w.var(0, correction=1).mean().item()
    return {
        "gap": gap.mean().item(),
        "gap_se": (gap.std(correction=1) / math.sqrt(len(gap))).item(),
        "log_w_variance": var,
        "seconds": seconds,
        "variance_x_seconds": var * seconds,
        "acceptance": res.acceptance.mean().item(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50, help="data points")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--leapfrog", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--accept", type=float, nargs="+", default=[0.65, 0.8])
    p.add_argument("--schedules", nargs="+", default=["sigmoid", "linear"])
    p.add_argument("--repeats", type=int, default=2, help="seeds; figures are pooled")
    p.add_argument("--run", help="a trained run dir: its model and test images instead")
    p.add_argument("--budget", type=int, default=0, help="T x L per setting (0: T = --steps)")
    a = p.parse_args(argv)
    if a.run:
        model, guide, x = trained(a.run, a.n)
        exact, what = None, f"the trained run {a.run}, its first {a.n} test images"
    else:
        truth, model, guide, x = problem(a.n)
        exact = truth.log_prob(x)
        what = "linear-Gaussian, x_dim 8, z_dim 4; guide: posterior + 0.8, scale x 1.6"
    grid = list(itertools.product(a.leapfrog, a.accept, a.schedules))
    runs: dict[tuple, list[dict]] = {g: [] for g in grid}
    for seed in range(a.repeats):
        for g in grid:  # the settings take turns, so that load hits them alike
            steps = a.budget // g[0] if a.budget else a.steps
            runs[g].append(measure(model, guide, x, exact, steps, a.chains, *g, seed))
    rows = []
    for (leapfrog, accept, schedule), rs in runs.items():
        k = len(rs)
        steps = a.budget // leapfrog if a.budget else a.steps
        row = {"leapfrog": leapfrog, "steps": steps, "target_accept": accept, "schedule": schedule}
        for key in rs[0]:
            row[key] = sum(r[key] for r in rs) / k
        row["gap_se"] = math.sqrt(sum(r["gap_se"] ** 2 for r in rs)) / k
        row["variance_x_seconds"] = row["log_w_variance"] * row["seconds"]
        rows.append(row)
    best = min(rows, key=lambda r: r["variance_x_seconds"])
    out = {
        "model": what,
        "gap_is": "exact log p(x) - AIS" if exact is not None else "-AIS (no exact answer)",
        "n": a.n,
        "steps": a.steps,
        "budget": a.budget,
        "chains": a.chains,
        "repeats": a.repeats,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "lowest_variance_x_seconds": {
            k: best[k] for k in ("leapfrog", "target_accept", "schedule")
        },
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
