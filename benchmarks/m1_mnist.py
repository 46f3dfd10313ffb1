"""M1 on MNIST (Kingma et al. 2014): one VAE trained on every training image, then each
scikit-learn classifier on the labelled codes, at several label counts and label draws.

Trains (or resumes) ``models/mnist_m1.toml`` into ``OUT/mnist_m1`` (the labels are not used in
training, so one VAE serves every cell), then for each ``--labels`` count, draw
(``data.label_seed`` = 0, 1, ...) and classifier fits the classifier on the codes of the drawn
labelled points (the hook the run itself logs each epoch, ``ppl_vae.runs.kinds.m1``) and scores
it on all 10,000 test images, beside the same classifier on the same points' pixels. Prints a
markdown table (mean ± standard error over the draws, and the paired difference against the
pixels) and writes ``OUT/m1_table.json`` with every draw.

    OMP_NUM_THREADS=1 python benchmarks/m1_mnist.py --labels 100 1000 --draws 3   # ~15 min
    python benchmarks/m1_mnist.py --epochs 1 --subset 2000 --labels 20 --draws 2 --out /tmp/m1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

from _train_eval import REPO, train_or_resume

RECIPE = REPO / "models" / "mnist_m1.toml"
CLASSIFIERS = ("logistic", "svm", "knn", "label_spreading")


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error over the draws (0 for one draw)."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return statistics.fmean(values), se


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS))
    p.add_argument("--epochs", type=int, default=0, help="override train.epochs (0: recipe's)")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--out", default="runs/m1")
    p.add_argument("--data-dir")
    a = p.parse_args(argv)

    from ppl_vae.runs import load_run
    from ppl_vae.runs.kinds.m1 import m1_metrics

    out = Path(a.out) / "mnist_m1"
    sets = [f"data.subset={a.subset}"] + ([f"train.epochs={a.epochs}"] if a.epochs else [])
    train_or_resume(RECIPE, sets, out, a.data_dir)
    run = load_run(out, a.data_dir)
    rows = []
    for labels in a.labels:
        for draw in range(a.draws):
            for name in a.classifiers:
                data_cfg = dataclasses.replace(run.recipe.data, labels=labels, label_seed=draw)
                recipe = dataclasses.replace(run.recipe, data=data_cfg)
                options = {**run.recipe.model.options, "classifier": name}
                t0 = time.perf_counter()
                got = m1_metrics(recipe, run.data, options)(run.model, run.guide, run.data)
                rows.append(
                    {
                        "labels": labels,
                        "draw": draw,
                        "classifier": name,
                        "test_accuracy": got["test_accuracy"],
                        "test_accuracy_pixels": got["test_accuracy_pixels"],
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    summary = json.loads((out / "summary.json").read_text())
    doc = {
        "run": str(out),
        "epochs": summary["epochs"],
        "train_seconds": summary["seconds_per_epoch"] * summary["epochs"],
        "test_size": len(run.data.test),
        "rows": rows,
    }
    (Path(a.out) / "m1_table.json").write_text(json.dumps(doc, indent=1))
    lines = [
        f"M1 after {summary['epochs']} epoch(s), {len(run.data.test)} test images, "
        f"{a.draws} label draws (mean ± SE over draws)",
        "",
        "| labels | classifier | M1 (codes) | same classifier on pixels | M1 − pixels (paired) |",
        "|---:|---|---:|---:|---:|",
    ]
    for labels in a.labels:
        for name in a.classifiers:
            cell = [r for r in rows if r["labels"] == labels and r["classifier"] == name]
            m1 = mean_se([r["test_accuracy"] for r in cell])
            px = mean_se([r["test_accuracy_pixels"] for r in cell])
            d = mean_se([r["test_accuracy"] - r["test_accuracy_pixels"] for r in cell])
            lines.append(
                f"| {labels} | {name} | {m1[0]:.3f} ± {m1[1]:.3f} | {px[0]:.3f} ± {px[1]:.3f} "
                f"| {d[0]:+.3f} ± {d[1]:.3f} |"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
