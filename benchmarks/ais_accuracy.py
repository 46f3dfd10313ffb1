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
from plain_ais import bernoulli_vae, linear_gaussian, plain_ais

from ppl_vae import LinearGaussian
from ppl_vae.bounds.ais import ais
from ppl_vae.model import linear_vae


def problem(n: int, seed: int = 2):
    """The truth, its model, the rough guide, ``n`` data points, and for the plain AIS the
    guide's (loc, scale) and log p(x, z)."""
    truth = LinearGaussian.random(x_dim=8, z_dim=4, noise=0.7, seed=seed, dtype=torch.float64)
    x = truth.sample(n, torch.Generator().manual_seed(seed))

    def rough_q(x):  # wider than the posterior and off its mean
        post = truth.posterior(x)
        return post.loc + 0.8, 1.6 * post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()

    return truth, linear_vae(truth), Rough(rough_q), x, (*rough_q(x), linear_gaussian(truth, x))


class Rough:
    """The rough guide, with ``distribution(x)`` as the toolkit's amortized guides have
    (``core.contract.EncoderDistribution``), so that AIS builds q(z|x) once, as for theirs."""

    def __init__(self, loc_scale):
        self.loc_scale = loc_scale

    def distribution(self, x):
        return dist.Normal(*self.loc_scale(x)).to_event(1)

    def __call__(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.distribution(x))


def trained(run: str, n: int):
    """A trained run's model and guide, its first ``n`` test images (no exact answer), and for
    the plain AIS the guide's (loc, scale) and log p(x, z) (a Bernoulli VAE, standard prior)."""
    import ppl_vae as pv

    r = pv.load_run(run)
    x = r.data.test[:n]
    with torch.no_grad():
        loc, scale = r.guide.loc_scale(x)
    return r.model, r.guide, x, (loc, scale, bernoulli_vae(r.model, x))


def measure_plain(plain, x, exact, steps, chains, leapfrog, step, seed) -> dict:
    """The plain PyTorch HMC-AIS (``plain_ais.py``) at one fixed step size."""
    loc, scale, log_joint = plain
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    log_p, log_w = plain_ais(log_joint, loc, scale, steps, chains, leapfrog, step)
    seconds = time.perf_counter() - t0
    return summarize(exact, log_p, log_w, seconds)


def summarize(exact, log_p, log_w, seconds) -> dict:
    # with no exact answer, the gap is to 0: minus the estimate (a lower bound: lower is tighter)
    gap = (exact if exact is not None else 0.0) - log_p
    var = log_w.var(0, correction=1).mean().item()
    return {
        "gap": gap.mean().item(),
        "gap_se": (gap.std(correction=1) / math.sqrt(len(gap))).item(),
        "log_w_variance": var,
        "seconds": seconds,
        "variance_x_seconds": var * seconds,
    }


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
    return {
        **summarize(exact, res.log_p, res.log_w, seconds),
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
    p.add_argument(
        "--plain-leapfrog",
        type=int,
        nargs="*",
        default=[],
        help="also the plain PyTorch HMC-AIS with these leapfrog counts (plain_ais.py)",
    )
    p.add_argument(
        "--plain-step",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.2, 0.4],
        help="its fixed step sizes, each a setting (it has no pilot run)",
    )
    a = p.parse_args(argv)
    if a.run:
        model, guide, x, plain = trained(a.run, a.n)
        exact, what = None, f"the trained run {a.run}, its first {a.n} test images"
    else:
        truth, model, guide, x, plain = problem(a.n)
        exact = truth.log_prob(x)
        what = "linear-Gaussian, x_dim 8, z_dim 4; guide: posterior + 0.8, scale x 1.6"
    settings = [
        {"method": "ppl_vae", "leapfrog": lf, "target_accept": acc, "schedule": sch}
        for lf, acc, sch in itertools.product(a.leapfrog, a.accept, a.schedules)
    ] + [
        {"method": "plain", "leapfrog": lf, "step_size": eps, "schedule": "sigmoid"}
        for lf, eps in itertools.product(a.plain_leapfrog, a.plain_step)
    ]
    runs: list[list[dict]] = [[] for _ in settings]
    for seed in range(a.repeats):
        for g, found in zip(settings, runs, strict=True):  # turns: load hits them alike
            steps = a.budget // g["leapfrog"] if a.budget else a.steps
            if g["method"] == "plain":
                found.append(
                    measure_plain(
                        plain, x, exact, steps, a.chains, g["leapfrog"], g["step_size"], seed
                    )
                )
            else:
                found.append(
                    measure(
                        model,
                        guide,
                        x,
                        exact,
                        steps,
                        a.chains,
                        g["leapfrog"],
                        g["target_accept"],
                        g["schedule"],
                        seed,
                    )
                )
    rows = []
    for g, rs in zip(settings, runs, strict=True):
        k = len(rs)
        row = {**g, "steps": a.budget // g["leapfrog"] if a.budget else a.steps}
        for key in rs[0]:
            row[key] = sum(r[key] for r in rs) / k
        row["gap_se"] = math.sqrt(sum(r["gap_se"] ** 2 for r in rs)) / k
        row["variance_x_seconds"] = row["log_w_variance"] * row["seconds"]
        rows.append(row)
    best = {
        m: min((r for r in rows if r["method"] == m), key=lambda r: r["variance_x_seconds"])
        for m in ("ppl_vae", "plain")
        if any(r["method"] == m for r in rows)
    }
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
            m: {k: v for k, v in r.items() if k in settings[0] or k in ("step_size", "steps")}
            for m, r in best.items()
        },
    }
    if len(best) == 2:  # time for the same log-weight variance, ours over the best plain one
        out["ppl_vae_time_vs_plain_at_equal_variance"] = (
            best["ppl_vae"]["variance_x_seconds"] / best["plain"]["variance_x_seconds"]
        )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
