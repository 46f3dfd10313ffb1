"""Burda et al. (2016), Table 1, protocol for protocol: train the chosen cells, score, tabulate.

A cell is (stochastic layers, method, k): ``L1-vae-k1`` trains ``models/burda_1layer.toml``
with the ELBO on k = 1 sample, ``L2-iwae-k50`` the 2-layer model with IWAE_50. Each cell trains
into ``OUT/<cell>`` (resumable: a killed run continues from its checkpoint when the command is
run again, and finished work is not redone), then is scored with NLL = -IWAE_K (K = 5000 in the
paper) on the test set or on a fixed random subset of it (``--test-size``), with the standard
error over the test points, and its active units per layer (Var_x E_q[z_u | x] > 0.01). The
table (markdown) puts every cell beside the paper's number and checks the orderings the paper
reports, with paired differences on the same test points.

    python benchmarks/burda_table1.py --cells all --stages 8 --jobs 2 --out runs/burda
    python benchmarks/burda_table1.py --cells L1-vae-k1 L1-iwae-k5 --epochs 2 --test-size 500

References: Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, Table 1.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = {  # Table 1, dynamically binarized MNIST, test NLL (nats)
    (1, "vae", 1): 86.76, (1, "vae", 5): 86.47, (1, "vae", 50): 86.35,
    (1, "iwae", 1): 86.76, (1, "iwae", 5): 85.54, (1, "iwae", 50): 84.78,
    (2, "vae", 1): 85.33, (2, "vae", 5): 85.01, (2, "vae", 50): 84.78,
    (2, "iwae", 1): 85.33, (2, "iwae", 5): 83.89, (2, "iwae", 50): 82.90,
}  # fmt: skip
PAPER_UNITS = {  # active units (layer 1, layer 2) from the same table
    (1, "vae", 1): (19,), (1, "vae", 5): (20,), (1, "vae", 50): (20,),
    (1, "iwae", 1): (19,), (1, "iwae", 5): (22,), (1, "iwae", 50): (25,),
    (2, "vae", 1): (20, 1), (2, "vae", 5): (20, 1), (2, "vae", 50): (20, 1),
    (2, "iwae", 1): (20, 1), (2, "iwae", 5): (23, 2), (2, "iwae", 50): (28, 4),
}  # fmt: skip
ORDER = [(1, "vae", 1), (1, "iwae", 5), (1, "iwae", 50), (1, "vae", 5), (1, "vae", 50)]
ORDER += [(2, "vae", 5), (2, "iwae", 5), (2, "iwae", 50), (2, "vae", 50), (2, "vae", 1)]
ORDER += [(1, "iwae", 1), (2, "iwae", 1)]  # k = 1: IWAE is the VAE


def cell_name(cell: tuple[int, str, int]) -> str:
    return f"L{cell[0]}-{cell[1]}-k{cell[2]}"


def parse_cell(text: str) -> tuple[int, str, int]:
    try:
        layers, method, k = text.split("-")
        cell = (int(layers.removeprefix("L")), method, int(k.removeprefix("k")))
    except ValueError:
        cell = None
    if cell not in PAPER:
        raise SystemExit(f"unknown cell {text!r}; cells look like L1-vae-k1 or L2-iwae-k50.")
    return cell


def epochs_of(stages: int) -> int:
    """Epochs of the first ``stages`` stages of the paper's schedule: 1 + 3 + ... + 3^(s-1)."""
    return sum(3**i for i in range(stages))


def train_cell(cell, args) -> dict:
    """Trains (or resumes, or finds finished) one cell; returns its run dir and training time."""
    from ppl_vae.layout import CHECKPOINT, RECIPE
    from ppl_vae.runs import recipe as config
    from ppl_vae.runs.run import load_run, train_recipe

    layers, method, k = cell
    out = Path(args.out) / cell_name(cell)
    overrides = [
        f"name={cell_name(cell)}",
        f"objective.name={'elbo' if method == 'vae' else 'iwae'}",
        f"objective.num_particles={k}",
        f"train.epochs={args.epochs}",
        f"train.seed={args.seed}",
        *args.set,
    ]
    recipe = config.load(ROOT / "models" / f"burda_{layers}layer.toml", overrides)
    if _epochs_done(out) == args.epochs:
        run = load_run(out, args.data_dir)
    else:
        resume = (out / CHECKPOINT).is_file() or (out / RECIPE).is_file()
        run, _ = train_recipe(recipe, out, data_dir=args.data_dir, resume=resume, progress=False)
    seconds = sum(row["seconds"] for row in _history(out))
    return {"run": run, "train_seconds": seconds}


def _epochs_done(out: Path) -> int | None:
    """Whole epochs in the cell's checkpoint (None without one)."""
    from ppl_vae.layout import CHECKPOINT
    from ppl_vae.storage import load_checkpoint

    if not (out / CHECKPOINT).is_file():
        return None
    position = load_checkpoint(out / CHECKPOINT)["position"]
    return position["epoch"] if position["batch"] == 0 else None


def _history(out: Path) -> list[dict]:
    import csv

    from ppl_vae.layout import METRICS

    with open(out / METRICS) as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def score_cell(run, args) -> dict:
    """NLL = -IWAE_K per test point (a fixed random subset), and active units per layer."""
    import torch

    from ppl_vae.bounds import evaluate

    x = run.data.test
    if args.test_size:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        x = x[pick[: args.test_size].sort().values]
    t0 = time.perf_counter()
    b = evaluate(run.model, run.guide, x, ks=[1, args.eval_k], estimators=["iwae"], khat=False)
    nll = -b.values["iwae"][:, -1]
    seconds = time.perf_counter() - t0
    units = _active_units(run.guide, x)
    return {
        "nll": nll.mean().item(),
        "se": (nll.std() / math.sqrt(len(nll))).item(),
        "elbo": b.values["iwae"][:, 0].mean().item(),
        "per_point": nll.tolist(),
        "active_units": units,
        "eval_seconds": seconds,
    }


def _active_units(guide, x) -> list[int]:
    from ppl_vae.analysis.units import active_units

    found = active_units(guide, x, threshold=0.01)
    return [found[site].count for site in sorted(found)]


def run_cell(job) -> dict | None:
    """Trains and scores one cell; a failure is printed and gives None, so that the other
    cells still make the table (run the command again to retry it)."""
    cell, args = job
    try:
        return _run_cell(cell, args)
    except Exception:  # the table still comes out for the cells that worked
        traceback.print_exc()
        print(f"{cell_name(cell)}: failed (above); run the same command again", flush=True)
        return None


def _run_cell(cell, args) -> dict:
    import torch

    import ppl_vae.analysis.units

    # everything now: the scoring imports would otherwise happen hours later, from files that
    # may have changed in the meantime
    import ppl_vae.bounds
    import ppl_vae.runs.run  # noqa: F401

    torch.set_num_threads(args.threads)
    out = Path(args.out) / cell_name(cell)
    # one score per length of training: a longer run of the same cell keeps the earlier stages'
    scored = out / f"burda_eval_K{args.eval_k}_n{args.test_size}_e{args.epochs}.json"
    trained = train_cell(cell, args)
    run = trained["run"]
    if scored.is_file() and json.loads(scored.read_text()).get("epochs") == args.epochs:
        result = json.loads(scored.read_text())
    else:
        result = score_cell(run, args)
        result.update(cell=cell_name(cell), epochs=args.epochs, k_eval=args.eval_k)
        result.update(test_size=len(result["per_point"]))
        scored.write_text(json.dumps(result))
    result["train_seconds"] = trained["train_seconds"]
    print(f"{cell_name(cell)}: NLL {result['nll']:.2f} +- {result['se']:.2f}", flush=True)
    return result


def paired(a: dict, b: dict) -> tuple[float, float]:
    """Mean and standard error of the per-point NLL difference a - b (same test points)."""
    d = [x - y for x, y in zip(a["per_point"], b["per_point"], strict=True)]
    mean = sum(d) / len(d)
    var = sum((v - mean) ** 2 for v in d) / (len(d) - 1)
    return mean, math.sqrt(var / len(d))


def table(results: dict, args) -> str:
    """The markdown table beside the paper's numbers, and the orderings with paired SEs."""
    any_result = next(iter(results.values()))
    lines = [
        f"Test NLL = -IWAE_{args.eval_k} on {any_result['test_size']} test images, "
        f"{args.epochs} {'epoch' if args.epochs == 1 else 'epochs'} of the paper's schedule "
        f"(the paper: 3,280).",
        "",
        "| layers | method | k | NLL ± SE | paper | ours − paper | active units (paper) "
        "| epochs | train time (wall) | eval time (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in sorted(results, key=lambda c: (c[0], c[1] != "vae", c[2])):  # the paper's order
        r = results[cell]
        units = "+".join(map(str, r["active_units"]))
        paper_units = "+".join(map(str, PAPER_UNITS[cell]))
        lines.append(
            f"| {cell[0]} | {cell[1].upper()} | {cell[2]} | {r['nll']:.2f} ± {r['se']:.2f} | "
            f"{PAPER[cell]:.2f} | {r['nll'] - PAPER[cell]:+.2f} | {units} ({paper_units}) | "
            f"{r['epochs']} | {r['train_seconds'] / 60:.1f} min | {r['eval_seconds']:.0f} s |"
        )
    checks = []
    for layers in (1, 2):
        for method in ("vae", "iwae"):
            checks += [((layers, method, a), (layers, method, b)) for a, b in ((1, 5), (5, 50))]
        checks += [((layers, "vae", k), (layers, "iwae", k)) for k in (5, 50)]
    for method in ("vae", "iwae"):
        checks += [((1, method, k), (2, method, k)) for k in (1, 5, 50)]
    for layers in (1, 2):  # IWAE with k = 1 is the VAE with k = 1: one cell serves both
        if (layers, "vae", 1) in results:
            results = {(layers, "iwae", 1): results[(layers, "vae", 1)], **results}
    pairs = [(a, b) for a, b in checks if a in results and b in results]
    if pairs:
        lines += ["", "Orderings (paired differences on the same test points, NLL a − b ± SE):", ""]
    else:
        lines += ["", "Orderings: none to show (no two cells of the paper's comparisons ran)."]
    for a, b in pairs:
        mean, se = paired(results[a], results[b])
        want = PAPER[a] - PAPER[b]
        holds = "yes" if mean > 0 else "no"
        lines.append(
            f"- {cell_name(a)} − {cell_name(b)}: {mean:+.2f} ± {se:.2f} (paper {want:+.2f};"
            f" ordering holds: {holds}, {abs(mean) / se:.1f} SE)"
        )
    return "\n".join(lines) + "\n"


def figure(results: dict, args, path: str) -> None:
    """Our NLL per cell (± 2 SE) beside the paper's, one panel per architecture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=False)
    for ax, layers in zip(axes, (1, 2), strict=True):
        for shift, method, colour in ((-0.1, "vae", "C0"), (0.1, "iwae", "C1")):
            ks = [k for k in (1, 5, 50) if (layers, method, k) in results]
            ours = [results[(layers, method, k)] for k in ks]
            xs = [(1, 5, 50).index(k) + shift for k in ks]
            ax.errorbar(
                xs,
                [r["nll"] for r in ours],
                [2 * r["se"] for r in ours],
                fmt="o",
                color=colour,
                label=f"{method.upper()} (ours, {args.epochs} epochs)",
            )
            paper = [PAPER[(layers, method, k)] for k in (1, 5, 50)]
            ax.plot(
                [i + shift for i in range(3)],
                paper,
                "x--",
                color=colour,
                alpha=0.6,
                label=f"{method.upper()} (paper, 3,280 epochs)",
            )
        ax.set_xticks(range(3), ["k = 1", "k = 5", "k = 50"])
        ax.set_title(f"{layers} stochastic layer{'s' if layers > 1 else ''}", fontsize="medium")
        ax.set_ylabel("test NLL (nats)")
    axes[0].legend(fontsize="x-small")
    fig.suptitle(f"-IWAE_{args.eval_k} on a test subset, ± 2 SE", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", nargs="+", default=["all"], help="e.g. L1-vae-k1 L2-iwae-k5; all")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--stages", type=int, help="the first S stages (8: the full 3,280)")
    length.add_argument("--epochs", type=int, help="or this many epochs of the schedule")
    p.add_argument("--test-size", type=int, default=0, help="random test subset (0: all 10,000)")
    p.add_argument("--eval-k", type=int, default=5000, help="K of the NLL estimate (5000)")
    p.add_argument("--jobs", type=int, default=1, help="cells trained in parallel processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--out", default="runs/burda", help="one run dir per cell in here")
    p.add_argument("--table", help="write the markdown table here (default OUT/table.md)")
    p.add_argument("--data-dir", help="MNIST's folder (default $PPL_VAE_DATA)")
    p.add_argument("--figure", help="also draw ours beside the paper into this PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], help="recipe override (smoke tests)")
    args = p.parse_args(argv)
    args.epochs = args.epochs or epochs_of(args.stages or 8)
    cells = ORDER if args.cells == ["all"] else [parse_cell(c) for c in args.cells]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    jobs = [(cell, args) for cell in cells]
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            done = pool.map(run_cell, jobs, chunksize=1)
    else:
        done = [run_cell(job) for job in jobs]
    results = {cell: r for cell, r in zip(cells, done, strict=True) if r is not None}
    if not results:
        return 1
    text = table(results, args)
    Path(args.table or Path(args.out) / "table.md").write_text(text)
    keep = ("nll", "se", "elbo", "active_units", "epochs", "train_seconds", "eval_seconds")
    summary = {
        cell_name(c): {"paper": PAPER[c], **{k: r[k] for k in keep}, "test_size": r["test_size"]}
        for c, r in results.items()
    }
    (Path(args.out) / "table.json").write_text(json.dumps(summary, indent=1))
    if args.figure:
        figure(results, args, args.figure)
    sys.stdout.write(text)
    return 0 if len(results) == len(cells) else 1


if __name__ == "__main__":
    raise SystemExit(main())
