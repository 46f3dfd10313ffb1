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
import sys
import tomllib
from pathlib import Path

from _train_eval import REPO, add_budget_args, train_and_evaluate

RECIPES = {
    p.stem.removeprefix("mnist_guide_"): p for p in sorted(REPO.glob("models/mnist_guide_*"))
}


def guide_figures(name: str, a: argparse.Namespace) -> dict:
    """Trains one guide's recipe into ``a.out/name``, evaluates it, returns its figures."""
    out = Path(a.out) / name
    run = train_and_evaluate(RECIPES[name], out, [], a)
    elbo, iwae = run.estimate("elbo", a.k), run.estimate("iwae", a.k)
    ess, khat = run.estimate("ess", a.k), run.estimate("khat_above_0.7", a.k)
    recipe = tomllib.loads((out / "recipe.toml").read_text())
    return {
        "guide": name,
        "guide_options": recipe["guide"]["options"],
        "run": str(out),
        "train": {k: recipe["train"][k] for k in ("epochs", "batch_size", "lr", "seed")},
        "steps": run.summary["steps"],
        "test_elbo": elbo["mean"],
        "test_elbo_stderr": elbo["stderr"],
        f"test_iwae{a.k}": iwae["mean"],
        f"test_iwae{a.k}_stderr": iwae["stderr"],
        "iwae_minus_elbo": iwae["mean"] - elbo["mean"],
        "mean_ess": ess["mean"],
        "khat_above_0.7": khat["mean"],
        "n_test": iwae["n"],
        "train_seconds": run.train_seconds,
        "seconds_per_epoch": run.summary.get("seconds_per_epoch"),
        "eval_seconds": run.eval_seconds,
        "commands": run.commands,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--guides", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    add_budget_args(p, "runs/compare_guides", 1000, "guide")
    a = p.parse_args(argv)
    if a.k < 21:
        p.error("--k must be at least 21: PSIS k-hat needs that many importance samples.")
    results = []
    for name in a.guides:
        results.append(guide_figures(name, a))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # progress, one line a guide
    budget = {
        "epochs": a.epochs,
        "seed": a.seed,
        "train_subset": a.subset,
        "eval_subset": a.eval_subset,
        "k": a.k,
        "overrides": a.set,
    }
    print(json.dumps({"budget": budget, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
