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
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def _run(cmd: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return done.stdout, seconds


def train_and_evaluate(name: str, a: argparse.Namespace) -> dict:
    """Trains one objective into ``a.out/name``, evaluates it, returns its figures."""
    objective, k = RUNS[name]
    out = Path(a.out) / name
    sets = [f"objective.name={objective}", f"objective.num_particles={k}",
            f"train.epochs={a.epochs}", f"train.seed={a.seed}", f"train.device={a.device}",
            f"data.subset={a.subset}", *a.set]  # fmt: skip
    train = [sys.executable, "-m", "ppl_vae", "train", str(RECIPE), "--out", str(out),
             "--overwrite", "--no-progress"]  # fmt: skip
    train += [arg for s in sets for arg in ("--set", s)]
    if a.data_dir:
        train += ["--data-dir", a.data_dir]
    stdout, train_seconds = _run(train)
    summary = json.loads(stdout.strip().splitlines()[-1])
    evaluate = [sys.executable, "-m", "ppl_vae", "evaluate", str(out), "--k", str(a.k), "--json",
                "--no-progress", "--device", a.device]  # fmt: skip
    if a.eval_subset:
        evaluate += ["--subset", str(a.eval_subset)]
    if a.data_dir:
        evaluate += ["--data-dir", a.data_dir]
    stdout, eval_seconds = _run(evaluate)
    estimates = json.loads(stdout)["estimates"]
    iwae = next(r for r in estimates if r["estimator"] == "iwae" and r["k"] == a.k)
    return {
        "run": str(out),
        "objective": objective,
        "num_particles": k,
        "epochs": a.epochs,
        "steps": summary["steps"],
        f"test_nll_iwae{a.k}": -iwae["mean"],
        "stderr": iwae["stderr"],
        "n_test": iwae["n"],
        "test_elbo": summary["test_elbo"],
        "train_seconds": train_seconds,
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "eval_seconds": eval_seconds,
        "burda_nll_3280_epochs": BURDA_NLL.get(k),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--epochs", type=int, default=20, help="the same for every run")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=0, help="score the first N test images")
    p.add_argument("--k", type=int, default=5000, help="importance samples for the test NLL")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default="runs/compare_objectives", help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a further recipe override for every run (repeatable)")  # fmt: skip
    a = p.parse_args(argv)
    results = []
    for name in a.runs:
        results.append(train_and_evaluate(name, a))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress, one line a run
    print(json.dumps({"recipe": str(RECIPE.relative_to(REPO)), "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
