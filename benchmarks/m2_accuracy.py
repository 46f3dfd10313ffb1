"""M2 test accuracy of q(y|x) over several label draws, against Kingma et al. and Pyro.

Trains models/mnist_m2.toml for each number of labels and each label draw (data.label_seed,
also the training seed), resuming any run already started (so the script can be stopped and
run again, or run with more epochs to extend every run), then prints JSON: the accuracy per
run, mean and spread (sample standard deviation) per number of labels, and the published
references. With --eval-k, it also bounds log p(x) with y summed out (ppl-vae evaluate) on the
first --eval-subset test images of each first draw.

    python benchmarks/m2_accuracy.py --labels 100 1000 --draws 3 --epochs 3 --out runs/m2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ppl_vae.layout import CHECKPOINT, SUMMARY
from ppl_vae.runs import recipe as config
from ppl_vae.runs.evaluate import evaluate_run
from ppl_vae.runs.run import train_recipe

REPO = Path(__file__).resolve().parents[1]
# test error (Kingma et al. 2014, Table 1) and test accuracy (Pyro's tutorial), by labels
REFERENCES = {
    "kingma_m2_error": {"100": 0.1197, "600": 0.0482, "1000": 0.0360, "3000": 0.0392},
    "pyro_accuracy": {"100": 0.932, "600": 0.944, "1000": 0.949, "3000": 0.958},
}


def run_one(labels: int, draw: int, args: argparse.Namespace) -> dict:
    """Trains (or resumes, or skips if done) one run; returns its summary."""
    out = Path(args.out) / f"m2_l{labels}_d{draw}"
    sets = [
        f"data.labels={labels}",
        f"data.label_seed={draw}",
        f"train.seed={draw}",
        f"train.epochs={args.epochs}",
        *args.set,
    ]
    summary = out / SUMMARY
    if summary.is_file() and json.loads(summary.read_text())["epochs"] >= args.epochs:
        return json.loads(summary.read_text())
    recipe = config.load(REPO / "models" / "mnist_m2.toml", sets)
    t0 = time.perf_counter()
    train_recipe(
        recipe,
        out,
        data_dir=args.data_dir,
        resume=(out / CHECKPOINT).is_file(),
        progress=args.progress,
    )
    s = json.loads(summary.read_text())
    s["wall_seconds_this_call"] = time.perf_counter() - t0
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--draws", type=int, default=3, help="label draws (seeds 0..draws-1)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default="runs/m2")
    p.add_argument("--data-dir")
    p.add_argument("--set", action="append", default=[], help="recipe override, repeatable")
    p.add_argument("--eval-k", type=int, nargs="*", default=[], help="K for log p(x) bounds")
    p.add_argument("--eval-subset", type=int, default=500)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    runs, table = {}, {}
    for n in args.labels:
        acc = []
        for d in range(args.draws):
            s = run_one(n, d, args)
            runs[f"{n}/{d}"] = s
            acc.append(s["test_accuracy"])
            print(json.dumps({"labels": n, "draw": d, **s}), flush=True)
        table[str(n)] = {
            "mean": statistics.fmean(acc),
            "sd": statistics.stdev(acc) if len(acc) > 1 else None,
            "draws": acc,
        }
    bounds = {}
    for n in args.labels if args.eval_k else []:
        r = evaluate_run(
            Path(args.out) / f"m2_l{n}_d0",
            args.eval_k,
            subset=args.eval_subset,
            data_dir=args.data_dir,
        )
        bounds[str(n)] = {"estimates": r["estimates"], "seconds": r["seconds"]}
    result = {
        "epochs": args.epochs,
        "accuracy": table,
        "log_px": bounds,
        "runs": runs,
        "references": REFERENCES,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
