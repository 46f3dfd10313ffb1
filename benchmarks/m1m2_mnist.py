"""M1 + M2 on MNIST (Kingma et al. 2014): M2 on a trained M1's codes, at several label counts
and label draws, with test accuracy per epoch (the learning curve) and at the end.

Trains (or resumes) ``models/mnist_m1m2.toml`` once per ``--labels`` count and draw
(``data.label_seed`` = ``train.seed`` = draw) into ``OUT/m1m2_l<labels>_d<draw>``, on the codes
of the M1 run ``--m1-run`` (``benchmarks/m1_mnist.py`` trains one). Prints a markdown table
(mean ± standard error over the draws) and writes ``OUT/m1m2_table_d<first draw>.json`` with
each run's accuracy by epoch.

    OMP_NUM_THREADS=1 python benchmarks/m1m2_mnist.py --m1-run runs/m1/mnist_m1 --labels 100 1000
    python benchmarks/m1m2_mnist.py --m1-run /tmp/m1/mnist_m1 --labels 20 --draws 1 --epochs 1 \\
        --subset 500 --out /tmp/m1m2                                          # a smoke check
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path

from _train_eval import REPO, train_or_resume

RECIPE = REPO / "models" / "mnist_m1m2.toml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--m1-run", required=True, help="the trained M1 run whose codes M2 learns on")
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--first-draw", type=int, default=0, help="draws first-draw, ... (resume)")
    p.add_argument("--epochs", type=int, default=0, help="override train.epochs (0: recipe's)")
    p.add_argument("--subset", type=int, default=0)
    p.add_argument("--out", default="runs/m1m2")
    p.add_argument("--data-dir")
    p.add_argument("--set", action="append", default=[], help="a further recipe override")
    a = p.parse_args(argv)
    m1 = Path(a.m1_run).resolve()
    runs = []
    for labels in a.labels:
        for draw in range(a.first_draw, a.first_draw + a.draws):
            out = Path(a.out) / f"m1m2_l{labels}_d{draw}"
            sets = [f'model.options.m1_run="{m1}"', f"data.labels={labels}"]
            sets += [f"data.label_seed={draw}", f"train.seed={draw}", f"data.subset={a.subset}"]
            sets += [f"train.epochs={a.epochs}"] if a.epochs else []
            train_or_resume(RECIPE, [*sets, *a.set], out, a.data_dir)
            summary = json.loads((out / "summary.json").read_text())
            with open(out / "metrics.csv") as f:
                curve = [float(r["test_accuracy"]) for r in csv.DictReader(f)]
            runs.append(
                {
                    "labels": labels,
                    "draw": draw,
                    "run": str(out),
                    "test_accuracy": summary["test_accuracy"],
                    "curve": curve,
                    "seconds": summary["seconds_per_epoch"] * summary["epochs"],
                }
            )
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "curve"}), flush=True)
    doc = {"m1_run": str(m1), "runs": runs}
    (Path(a.out) / f"m1m2_table_d{a.first_draw}.json").write_text(json.dumps(doc))
    lines = ["| labels | M1 + M2 test accuracy | draws | epochs |", "|---:|---:|---|---:|"]
    for labels in a.labels:
        acc = [r["test_accuracy"] for r in runs if r["labels"] == labels]
        se = statistics.stdev(acc) / math.sqrt(len(acc)) if len(acc) > 1 else 0.0
        epochs = len(next(r for r in runs if r["labels"] == labels)["curve"])
        draws = ", ".join(f"{v:.3f}" for v in acc)
        lines.append(f"| {labels} | {statistics.fmean(acc):.3f} ± {se:.3f} | {draws} | {epochs} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
