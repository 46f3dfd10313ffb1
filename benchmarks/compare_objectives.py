"""Objectives at equal architecture and budget: train each, time it, score test NLL by IWAE-5000.

Trains ``models/mnist_iwae_1layer.toml`` (Burda et al.'s one-stochastic-layer 784-200-200-50 tanh
VAE on dynamically binarized MNIST, batch 20) once per objective, changing nothing but the
objective: ``elbo``; ``iwae`` with K = 5 and K = 50; ``iwae_dreg`` with K = 50. Every run gets
the same epochs and seed; each training is timed (wall clock of ``python -m ppl_vae train``),
then ``python -m ppl_vae evaluate RUN --k 5000 --json`` scores the test set. Prints JSON: per run
the test NLL (-IWAE_5000, nats) with its standard error, the test ELBO, the training time, and
Burda et al.'s NLL for the same K after 3,280 epochs for reference.

    python benchmarks/compare_objectives.py --epochs 20                # the figure (hours on CPU)
    python benchmarks/compare_objectives.py --epochs 1 --subset 1000 --eval-subset 200 --k 500
                                                                       # a quick end-to-end check
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _train_eval import REPO, add_budget_args, train_and_evaluate

RECIPE = REPO / "models" / "mnist_iwae_1layer.toml"

# run name -> (objective, K); Burda, Grosse & Salakhutdinov (2016), Table 1, one stochastic
# layer, test NLL with k = 5000 after 3,280 epochs: IWAE 86.76 / 85.54 / 84.78 for k = 1 / 5 / 50.
RUNS = {
    "elbo": ("elbo", 1),
    "iwae_k5": ("iwae", 5),
    "iwae_k50": ("iwae", 50),
    "iwae_dreg_k50": ("iwae_dreg", 50),
}
BURDA_NLL = {1: 86.76, 5: 85.54, 50: 84.78}


def objective_figures(name: str, a: argparse.Namespace) -> dict:
    """Trains one objective into ``a.out/name``, evaluates it, returns its figures."""
    objective, k = RUNS[name]
    out = Path(a.out) / name
    sets = [f"objective.name={objective}", f"objective.num_particles={k}"]
    run = train_and_evaluate(RECIPE, out, sets, a)
    iwae = run.estimate("iwae", a.k)
    return {
        "run": str(out),
        "objective": objective,
        "num_particles": k,
        "epochs": a.epochs,
        "steps": run.summary["steps"],
        f"test_nll_iwae{a.k}": -iwae["mean"],
        "stderr": iwae["stderr"],
        "n_test": iwae["n"],
        "test_elbo": run.summary["test_elbo"],
        "train_seconds": run.train_seconds,
        "seconds_per_epoch": run.summary.get("seconds_per_epoch"),
        "eval_seconds": run.eval_seconds,
        "burda_nll_3280_epochs": BURDA_NLL.get(k),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    add_budget_args(p, "runs/compare_objectives", 5000, "run")
    a = p.parse_args(argv)
    results = []
    for name in a.runs:
        results.append(objective_figures(name, a))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress, one line a run
    print(json.dumps({"recipe": str(RECIPE.relative_to(REPO)), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
