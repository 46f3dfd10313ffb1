"""Guides at equal decoder and budget: train each, time it, score it with ``ppl-vae evaluate``.

Trains ``models/mnist_guide_<name>.toml`` for each guide: the Larochelle & Murray binarized
MNIST, a 784-400-20 ReLU Bernoulli decoder and a 784-400 ReLU encoder trunk, the ELBO, batch
100, Adam 1e-3, the same epochs and seed for every guide; only ``guide.name`` and its options
differ. Each training is timed (wall clock of ``python -m ppl_vae train``), then
``python -m ppl_vae evaluate RUN --k K --json`` scores the test set. Prints JSON: per guide the
test ELBO and IWAE_K (nats per image, with standard errors), their difference, the mean
effective sample size out of K, the share of test images whose PSIS k-hat exceeds 0.7, and the
training and evaluation times.

    python benchmarks/compare_guides.py --epochs 20 --k 1000          # the figure (hours on CPU)
    python benchmarks/compare_guides.py --epochs 1 --subset 500 --eval-subset 100 --k 100
                                                                     # a quick end-to-end check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = {
    p.stem.removeprefix("mnist_guide_"): p for p in sorted(REPO.glob("models/mnist_guide_*"))
}


def _run(cmd: list[str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return done.stdout, seconds


def _estimate(estimates: list[dict], name: str, k: int) -> dict:
    return next(r for r in estimates if r["estimator"] == name and r["k"] == k)


def train_and_evaluate(name: str, a: argparse.Namespace) -> dict:
    """Trains one guide's recipe into ``a.out/name``, evaluates it, returns its figures."""
    out = Path(a.out) / name
    sets = [f"train.epochs={a.epochs}", f"train.seed={a.seed}", f"train.device={a.device}",
            f"data.subset={a.subset}", *a.set]  # fmt: skip
    train = [sys.executable, "-m", "ppl_vae", "train", str(RECIPES[name]), "--out", str(out),
             "--overwrite", "--no-progress"]  # fmt: skip
    train += [arg for s in sets for arg in ("--set", s)]
    if a.data_dir:
        train += ["--data-dir", a.data_dir]
    stdout, train_seconds = _run(train)
    summary = json.loads(stdout.strip().splitlines()[-1])
    evaluate = [sys.executable, "-m", "ppl_vae", "evaluate", str(out), "--k", str(a.k), "--json",
                "--no-progress", "--device", a.device, "--seed", str(a.seed)]  # fmt: skip
    if a.eval_subset:
        evaluate += ["--subset", str(a.eval_subset)]
    if a.data_dir:
        evaluate += ["--data-dir", a.data_dir]
    stdout, eval_seconds = _run(evaluate)
    estimates = json.loads(stdout)["estimates"]
    elbo, iwae = _estimate(estimates, "elbo", a.k), _estimate(estimates, "iwae", a.k)
    ess, khat = _estimate(estimates, "ess", a.k), _estimate(estimates, "khat_above_0.7", a.k)
    recipe = tomllib.loads((out / "recipe.toml").read_text())
    return {
        "guide": name,
        "guide_options": recipe["guide"]["options"],
        "run": str(out),
        "train": {k: recipe["train"][k] for k in ("epochs", "batch_size", "lr", "seed")},
        "steps": summary["steps"],
        "test_elbo": elbo["mean"],
        "test_elbo_stderr": elbo["stderr"],
        f"test_iwae{a.k}": iwae["mean"],
        f"test_iwae{a.k}_stderr": iwae["stderr"],
        "iwae_minus_elbo": iwae["mean"] - elbo["mean"],
        "mean_ess": ess["mean"],
        "khat_above_0.7": khat["mean"],
        "n_test": iwae["n"],
        "train_seconds": train_seconds,
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "eval_seconds": eval_seconds,
        "commands": [" ".join(train), " ".join(evaluate)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--guides", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--epochs", type=int, default=20, help="the same for every guide")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=0, help="score the first N test images")
    p.add_argument("--k", type=int, default=1000, help="importance samples (>= 21 for k-hat)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", default="runs/compare_guides", help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a further recipe override for every guide (repeatable)")  # fmt: skip
    a = p.parse_args(argv)
    if a.k < 21:
        p.error("--k must be at least 21: PSIS k-hat needs that many importance samples.")
    results = []
    for name in a.guides:
        results.append(train_and_evaluate(name, a))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress, one line a guide
    budget = {"epochs": a.epochs, "seed": a.seed, "train_subset": a.subset,
              "eval_subset": a.eval_subset, "k": a.k, "overrides": a.set}  # fmt: skip
    print(json.dumps({"budget": budget, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
