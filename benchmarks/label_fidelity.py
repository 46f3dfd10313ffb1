"""Label fidelity of conditional samples, per run (``ppl_vae.analysis.fidelity``): the share of
1,000 samples of each class that the reference classifier reads as that class, and their mean
over the 10 classes (± its standard error over the classes).

How each kind is sampled: ``m2`` and ``conditional``: E[x | y, z], z ~ p(z); ``m1m2``: the M2
on codes draws E[z_1 | y, z_2], z_2 ~ p(z_2), which the M1 run's decoder turns into E[x | z_1];
``cvae``: each test image's completion from its given quadrants, scored against that image's
label (the share of completions that keep the digit). Prints a markdown table and JSON.

    python benchmarks/label_fidelity.py runs/m2 runs/conditional   # reference: runs/reference/
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import torch

SAMPLES = 1000


def class_images(run, label: int, n: int, seed: int) -> torch.Tensor:
    """``n`` images of class ``label`` as the run's kind draws them."""
    from ppl_vae.runs import load_run

    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed + label)
        x = run.model.sample(n, label=label)
        if run.recipe.model.name == "m1m2":
            m1 = load_run(run.recipe.model.options["m1_run"])
            x = m1.model.observation(x).mean
    return x


def fidelity_of(run, net, seed: int) -> dict:
    from ppl_vae.analysis.fidelity import label_fidelity, predict

    if run.recipe.model.name == "cvae":
        cond, y = run.data.cond["test"], run.data.labels["test"]
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            guess = predict(net, run.model.complete(cond))
        share = float((guess == y).double().mean())
        return {
            "fidelity": share,
            "stderr": math.sqrt(share * (1 - share) / len(y)),
            "n": len(y),
            "per_class": None,
        }
    per = [
        label_fidelity(net, class_images(run, c, SAMPLES, seed), c)["fidelity"] for c in range(10)
    ]
    return {
        "fidelity": statistics.fmean(per),
        "stderr": statistics.stdev(per) / math.sqrt(10),
        "n": 10 * SAMPLES,
        "per_class": per,
    }


def figure(runs, rows, path: str, seed: int, per: int = 10) -> None:
    """One panel per run: a row per class y = 0..9 of ``per`` samples E[x | y, z]."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(runs), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, (run, row) in enumerate(zip(runs, rows, strict=True)):
        ax = fig.add_subplot(1, len(runs), i + 1)
        grid = torch.cat([class_images(run, c, per, seed).reshape(per, 28, 28) for c in range(10)])
        grid = grid.reshape(10, per, 28, 28).permute(0, 2, 1, 3).reshape(280, 28 * per)
        ax.imshow(grid.cpu().numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_yticks([14 + 28 * c for c in range(10)], [str(c) for c in range(10)])
        ax.set_xticks([])
        ax.set_ylabel("asked class y")
        ax.set_title(f"{row['kind']}: fidelity {row['fidelity']:.2f}", fontsize="medium")
    fig.suptitle(
        "Samples of each asked class (rows), read by the reference classifier", fontsize="medium"
    )
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--reference", default="runs/reference/mnist_convnet.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--json", help="also write the records here")
    p.add_argument("--figure", help="also draw 10 samples of each class per run into this PNG")
    a = p.parse_args(argv)

    from ppl_vae.analysis.fidelity import load_reference
    from ppl_vae.runs import load_run

    net, accuracy = load_reference(a.reference)
    rows = []
    for path in a.runs:
        run = load_run(path, a.data_dir)
        rows.append({"run": path, "kind": run.recipe.model.name, **fidelity_of(run, net, a.seed)})
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"Label fidelity under the reference classifier (test accuracy {accuracy:.4f})",
        "",
        "| run | kind | label fidelity | per class (0-9) |",
        "|---|---|---:|---|",
    ]
    for r in rows:
        per = " ".join(f"{v:.2f}" for v in r["per_class"]) if r["per_class"] else "(completions)"
        lines.append(
            f"| {r['run']} | {r['kind']} | {r['fidelity']:.3f} ± {r['stderr']:.3f} | {per} |"
        )
    print("\n".join(lines))
    if a.figure:
        figure([load_run(path, a.data_dir) for path in a.runs], rows, a.figure, a.seed)
    if a.json:
        Path(a.json).write_text(
            json.dumps({"reference_accuracy": accuracy, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
