"""Burda et al.'s Table 1 cells through the schedule's first stages: test NLL at the end of each
stage, beside the paper's final figures, with the paired VAE - IWAE difference at every stage.

Trains nothing itself: ``burda_table1.py --stages S`` trains each cell on to the end of stage S
(resuming the cell's run) and keeps that stage's score as ``<cell>/burda_eval_K<K>_n<N>_e<E>.json``.
Run it for S = 1, 2, ... (``--run-stages``, one cell per process, so the cells go side by side),
then this script reads the scores of every stage and writes ``OUT/stages.md``, ``OUT/stages.json``
and the figure (NLL against epoch, log axis, the paper's final NLL as a dashed line). It also
says what the rest of the 3,280 epochs would cost at each cell's measured seconds per epoch.

    OMP_NUM_THREADS=1 python benchmarks/burda_stages.py --cells L1-vae-k1 L1-iwae-k5 \\
        --run-stages 6 --out runs/burda_stages --figure docs/burda_stages.png
    python benchmarks/burda_stages.py --cells L1-vae-k1 L1-iwae-k5 --out runs/burda_stages
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

from burda_table1 import PAPER, cell_name, epochs_of, paired, parse_cell

HERE = Path(__file__).resolve().parent
FULL = epochs_of(8)  # 3,280


def stage_scores(out: Path, cell, k: int, n: int) -> list[dict]:
    """Every kept score of ``cell``, by epochs: the ends of the stages it reached."""
    found = []
    for path in (out / cell_name(cell)).glob(f"burda_eval_K{k}_n{n}_e*.json"):
        doc = json.loads(path.read_text())
        found.append(doc)
    return sorted(found, key=lambda d: d["epochs"])


def seconds_per_epoch(out: Path, cell) -> float | None:
    path = out / cell_name(cell) / "metrics.csv"
    if not path.is_file():
        return None
    with open(path) as f:
        rows = [float(r["seconds"]) for r in csv.DictReader(f)]
    return statistics.median(rows) if rows else None  # the median: a paused epoch stands out


def figure(scores: dict, path: str, k: int, earlier: dict | None = None) -> None:
    """NLL against epoch per cell; ``earlier``: {cell name: [{epochs, nll, se}]}, scores kept
    from an earlier session (drawn hollow), for stages whose run dirs are gone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ticks = set()
    for i, (cell, docs) in enumerate(scores.items()):
        before = (earlier or {}).get(cell_name(cell), [])
        if before:
            ticks |= {d["epochs"] for d in before}
            ax.errorbar(
                [d["epochs"] for d in before],
                [d["nll"] for d in before],
                yerr=[2 * d["se"] for d in before],
                marker="o",
                mfc="none",
                color=f"C{i}",
                capsize=3,
                ls=":",
                label=f"{cell_name(cell)} (ours, an earlier session)",
            )
        e = [d["epochs"] for d in docs]
        ticks |= set(e)
        ax.errorbar(
            e,
            [d["nll"] for d in docs],
            yerr=[2 * d["se"] for d in docs],
            marker="o",
            color=f"C{i}",
            capsize=3,
            label=f"{cell_name(cell)} (ours, ± 2 SE)",
        )
        ax.axhline(
            PAPER[cell],
            color=f"C{i}",
            ls="--",
            lw=1,
            label=f"{cell_name(cell)}: the paper after {FULL:,} epochs",
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("epochs trained (the end of each stage of the paper's schedule)")
    ax.set_ylabel(f"test NLL = -IWAE_{k} (nats)")
    ax.set_title("Burda et al.'s 1-layer cells through the first stages", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=["L1-vae-k1", "L1-iwae-k5"])
    p.add_argument("--run-stages", type=int, default=0, help="first train and score to stage S")
    p.add_argument("--out", default="runs/burda_stages")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=0)
    p.add_argument("--figure")
    p.add_argument("--earlier", help="JSON of scores from an earlier session, drawn hollow")
    p.add_argument("--data-dir")
    a = p.parse_args(argv)
    cells = [parse_cell(c) for c in a.cells]
    out = Path(a.out)
    if a.run_stages:
        extra = ["--eval-k", str(a.eval_k), "--test-size", str(a.test_size), "--out", a.out]
        extra += ["--data-dir", a.data_dir] if a.data_dir else []
        loops = [
            subprocess.Popen(
                f"for S in $(seq 1 {a.run_stages}); do {sys.executable} {HERE / 'burda_table1.py'}"
                f" --cells {cell_name(c)} --stages $S {' '.join(extra)}"
                f" --table {out / cell_name(c)}_stage$S.md || exit 1; done",
                shell=True,
            )
            for c in cells
        ]
        if any(loop.wait() for loop in loops):
            return 1
    scores = {c: stage_scores(out, c, a.eval_k, a.test_size) for c in cells}
    lines = [
        f"Test NLL = -IWAE_{a.eval_k} at the end of each stage (nats ± SE over the test points)",
        "",
        "| epochs | " + " | ".join(cell_name(c) for c in cells) + " | VAE − IWAE (paired) |",
        "|---:|" + "---:|" * len(cells) + "---:|",
    ]
    epochs = sorted({d["epochs"] for docs in scores.values() for d in docs})
    vae, iwae = (next((c for c in cells if c[1] == m), None) for m in ("vae", "iwae"))
    for e in epochs:
        row = {c: next((d for d in scores[c] if d["epochs"] == e), None) for c in cells}
        cells_md = [f"{r['nll']:.2f} ± {r['se']:.2f}" if r else "" for r in row.values()]
        diff = ""
        if vae and iwae and row[vae] and row[iwae]:
            m, se = paired(row[vae], row[iwae])
            diff = f"{m:+.2f} ± {se:.2f}"
        lines.append(f"| {e} | " + " | ".join(cells_md) + f" | {diff} |")
    lines.append("| paper (3,280) | " + " | ".join(f"{PAPER[c]:.2f}" for c in cells) + " | |")
    lines.append("")
    cost = {}
    for c in cells:
        done = max((d["epochs"] for d in scores[c]), default=0)
        s = seconds_per_epoch(out, c)
        if s is not None:
            cost[cell_name(c)] = {
                "epochs_done": done,
                "seconds_per_epoch": s,
                "hours_left": (FULL - done) * s / 3600,
            }
            lines.append(
                f"- {cell_name(c)}: scored after {done} of {FULL:,} epochs; the other "
                f"{FULL - done:,} would take {(FULL - done) * s / 3600:.1f} h at its {s:.1f} s "
                f"per epoch here."
            )
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.md").write_text(text)
    keep = ("epochs", "nll", "se", "elbo", "active_units", "eval_seconds")
    doc = {cell_name(c): [{k: d[k] for k in keep if k in d} for d in scores[c]] for c in cells}
    (out / "stages.json").write_text(json.dumps({"scores": doc, "cost": cost}, indent=1))
    if a.figure and any(scores.values()):
        earlier = json.loads(Path(a.earlier).read_text())["scores"] if a.earlier else None
        figure({c: v for c, v in scores.items() if v}, a.figure, a.eval_k, earlier)
    sys.stdout.write(text)
    return 0 if all(scores.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
