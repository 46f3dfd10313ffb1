"""ELBO, IWAE, MIWAE, PIWAE and CIWAE at the same particle budget, scored by exact answers.

Trains ``models/linear_gaussian.toml`` (probabilistic PCA: linear decoder with a learned scale,
linear diagonal guide) once per objective and seed through ``python -m ppl_vae train ... --set
objective.name=...``, changing nothing but the objective, every one with M*K = ``--budget``
particles per data point. The trained model is a linear-Gaussian model, so on the test set

- log p_theta(x) = log N(x; b, W W^T + s^2 I) is exact (``LinearGaussian.from_vae``),
- the guide's ELBO gap, log p_theta(x) - ELBO = KL(q(z|x) || p_theta(z|x)), is a closed-form
  KL between Gaussians,

and the data's own log p(x) (``Splits.truth``) is the reference. Prints JSON (per run and the
mean and sample standard deviation over seeds) and a Markdown table.

    OMP_NUM_THREADS=1 python benchmarks/rainforth_linear_gaussian.py --seeds 0 1 2
    python benchmarks/rainforth_linear_gaussian.py --epochs 1 --seeds 0   # a quick check
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.distributions import MultivariateNormal, kl_divergence

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "models" / "linear_gaussian.toml"


def objectives(budget: int, groups: int, beta: float) -> dict[str, list[str]]:
    """Run name -> recipe overrides, each with ``budget`` particles per data point."""
    k, m = f"objective.num_particles={budget // groups}", f"objective.options.M={groups}"
    t = f"objective.num_particles={budget}"
    return {
        "elbo": ["objective.name=elbo", t],
        "iwae": ["objective.name=iwae", t],
        "miwae": ["objective.name=miwae", k, m],
        "piwae": ["objective.name=piwae", k, m],
        "ciwae": ["objective.name=ciwae", t, f"objective.options.beta={beta}"],
    }


def exact_figures(run_dir: Path) -> dict[str, float]:
    """Test-set means, in nats: the learned model's log p(x), the data's, and the guide's gap."""
    from ppl_vae import LinearGaussian
    from ppl_vae.runs import load_run

    run = load_run(run_dir)
    learned = LinearGaussian.from_vae(run.model)
    learned = LinearGaussian(learned.W.double(), learned.b.double(), learned.s)
    x = run.data.test
    with torch.no_grad():
        loc, scale = (t.double() for t in run.guide.loc_scale(x))
        q = MultivariateNormal(loc, scale_tril=torch.diag_embed(scale))
        x = x.double()
        log_p = learned.log_prob(x)
        gap = kl_divergence(q, learned.posterior(x))
        log_p_data = run.data.truth.log_prob(x.to(run.data.truth.W.dtype)).double()
    return {
        "test_log_p": log_p.mean().item(),
        "test_log_p_minus_data_log_p": (log_p - log_p_data).mean().item(),
        "test_elbo": (log_p - gap).mean().item(),
        "elbo_gap": gap.mean().item(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=8, help="particles per data point, M*K")
    p.add_argument("--groups", type=int, default=4, help="M for miwae and piwae")
    p.add_argument("--beta", type=float, default=0.5, help="beta for ciwae")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/rainforth_lg", help="parent folder of the runs")
    a = p.parse_args(argv)
    if a.budget % a.groups:
        p.error(f"--budget {a.budget} is not a multiple of --groups {a.groups}")
    runs = []
    for seed in a.seeds:
        for name, sets in objectives(a.budget, a.groups, a.beta).items():
            out = Path(a.out) / f"{name}_seed{seed}"
            sets = [*sets, f"train.epochs={a.epochs}", f"train.seed={seed}"]
            cmd = [sys.executable, "-m", "ppl_vae", "train", str(RECIPE), "--out", str(out)]
            cmd += ["--overwrite", "--no-progress", *(f"--set={s}" for s in sets)]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"command failed: {' '.join(cmd)}\n{done.stderr}")
            seconds = time.perf_counter() - t0
            row = {"objective": name, "seed": seed, "overrides": sets, "train_seconds": seconds}
            runs.append({**row, **exact_figures(out)})
    keys = ["test_log_p", "test_log_p_minus_data_log_p", "test_elbo", "elbo_gap"]
    summary = {}
    for name in objectives(a.budget, a.groups, a.beta):
        rows = [r for r in runs if r["objective"] == name]
        sd = statistics.stdev if len(rows) > 1 else lambda v: 0.0
        summary[name] = {
            k: (statistics.mean(r[k] for r in rows), sd([r[k] for r in rows])) for k in keys
        }
    meta = {"budget": a.budget, "groups": a.groups, "beta": a.beta, "epochs": a.epochs}
    print(json.dumps({**meta, "seeds": a.seeds, "runs": runs, "summary": summary}, indent=2))
    print("\n| objective | test log p(x) | vs the data's log p(x) | test ELBO | ELBO gap |")
    print("|---|---:|---:|---:|---:|")
    for name, s in summary.items():
        cells = " | ".join(f"{m:.4f} ± {d:.4f}" for m, d in (s[k] for k in keys))
        print(f"| `{name}` | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
