"""Test accuracy of M2's q(y|x) epoch by epoch: our runs, Pyro's own example, and a reference.

Reads ``metrics.csv`` of each of our runs (``--run LABEL=DIR``) and the log that Pyro's
``examples/vae/ss_vae_M2.py`` writes with ``-log`` (``--pyro-log LABEL=FILE``: its lines
``N epoch: ... test accuracy A``), draws them against the epoch, with horizontal lines for
references (``--reference LABEL=VALUE``, e.g. the classifier trained on the labels alone and the
published numbers), and prints the curves as JSON.

    python benchmarks/m2_trajectory.py --run ours=runs/m2_l100_d0 \\
        --pyro-log pyro=pyro_sup100.log --reference "Pyro's tutorial=0.932" --out m2.png
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PYRO_LINE = re.compile(r"^(\d+) epoch:.*test accuracy ([0-9.]+)")


def ours(run_dir: str) -> list[tuple[int, float]]:
    """(epoch, test accuracy) from a run's metrics.csv."""
    with open(Path(run_dir) / "metrics.csv") as f:
        return [(int(r["epoch"]), float(r["test_accuracy"])) for r in csv.DictReader(f)]


def pyro(log: str) -> list[tuple[int, float]]:
    """(epoch, test accuracy) from Pyro's example log; its epochs count from 0."""
    found = (PYRO_LINE.match(line) for line in Path(log).read_text().splitlines())
    return [(int(m[1]) + 1, float(m[2])) for m in found if m]


def pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        label, sep, value = item.rpartition("=")
        if not sep or not label or not value:
            raise SystemExit(f"--{what} takes LABEL=VALUE, got {item!r}")
        out.append((label, value))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], help="LABEL=RUN_DIR, repeatable")
    p.add_argument("--pyro-log", action="append", default=[], help="LABEL=FILE, repeatable")
    p.add_argument("--reference", action="append", default=[], help="LABEL=ACCURACY")
    p.add_argument("--title", default="M2, 100 labels: test accuracy of q(y|x)")
    p.add_argument("--out", default="m2_trajectory.png")
    args = p.parse_args()
    curves = {label: ours(d) for label, d in pairs(args.run, "run")}
    curves |= {label: pyro(f) for label, f in pairs(args.pyro_log, "pyro-log")}
    refs = {label: float(v) for label, v in pairs(args.reference, "reference")}
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label, pts in curves.items():
        ax.plot(*zip(*pts, strict=True), marker=".", label=label)
    for (label, v), style in zip(refs.items(), ["--", ":", "-."] * 4, strict=False):
        ax.axhline(v, color="gray", linestyle=style, label=label)
    ax.set(xlabel="epoch", ylabel="test accuracy", title=args.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(json.dumps({"curves": curves, "references": refs, "figure": args.out}, indent=1))


if __name__ == "__main__":
    main()
