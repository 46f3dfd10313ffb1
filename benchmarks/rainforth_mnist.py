"""Rainforth et al.'s objectives at one budget of 64 particles: ELBO, IWAE, MIWAE, PIWAE, CIWAE.

Trains ``models/mnist_piwae.toml`` (Burda et al.'s one-stochastic-layer 784-200-200-50 tanh VAE,
dynamically binarized MNIST, Adam 1e-3, batch 20) once per objective, with 64 particles per data
point in each (M x K = 64), the same epochs and seed, changing nothing else:

- ``elbo``: the ELBO averaged over 64 draws (Rainforth et al.'s VAE, M = 64, K = 1);
- ``iwae``: IWAE with K = 64 (M = 1);
- ``miwae``: MIWAE with M = 8 groups of K = 8;
- ``piwae``: PIWAE with M = 8, K = 8 (IWAE_8 for the decoder, MIWAE(8, 8) for the guide);
- ``ciwae``: beta ELBO + (1 - beta) IWAE_64 with beta = 0.5.

Then, per run, on the first ``--eval-subset`` test images: IWAE_64 and IWAE_K (default
K = 5000, the estimate of log p(x)) and the ELBO, with per-image scores; the ELBO gap of the
guide, IWAE_K - ELBO, estimates KL(q(z|x) || p(z|x)) from above by IWAE_K's bias. Each run
writes ``OUT/<objective>/cell.json`` when done and is skipped after, so the script resumes. It
prints a markdown table with the paired differences against ``iwae`` and writes it to
``OUT/rainforth.md``.

    OMP_NUM_THREADS=1 python benchmarks/rainforth_mnist.py --epochs 8 --eval-subset 2000 \\
        --out runs/rainforth                                                   # hours on CPU
    python benchmarks/rainforth_mnist.py --epochs 1 --subset 200 --eval-subset 50 --k 100 \\
        --out /tmp/rainforth                                                   # a smoke check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _train_eval import REPO, paired_scores, train_or_resume

RECIPE = REPO / "models" / "mnist_piwae.toml"
BUDGET = 64  # particles per data point, M x K

# objective -> its recipe overrides
RUNS = {
    "elbo": ['objective.name="elbo"', f"objective.num_particles={BUDGET}", "objective.options={}"],
    "iwae": ['objective.name="iwae"', f"objective.num_particles={BUDGET}", "objective.options={}"],
    "miwae": ['objective.name="miwae"', "objective.num_particles=8", "objective.options={M=8}"],
    "piwae": ['objective.name="piwae"', "objective.num_particles=8", "objective.options={M=8}"],
    "ciwae": [
        'objective.name="ciwae"',
        f"objective.num_particles={BUDGET}",
        "objective.options={beta=0.5}",
    ],
}


def run_cell(name: str, a: argparse.Namespace) -> dict:
    """Trains (or resumes) one objective's run and evaluates it; writes cell.json."""
    from ppl_vae.runs.evaluate import evaluate_run

    out = Path(a.out) / name
    overrides = [
        f"name=rainforth_{name}",
        f"train.epochs={a.epochs}",
        f"data.subset={a.subset}",
        f"train.seed={a.seed}",
        *RUNS[name],
    ]
    train_seconds = train_or_resume(RECIPE, overrides, out, a.data_dir)
    t0 = time.perf_counter()
    ks = sorted({BUDGET, a.k})
    ev = evaluate_run(
        out, ks, subset=a.eval_subset, khat=False, per_datapoint=True, data_dir=a.data_dir
    )
    est = {(e["estimator"], e["k"]): e for e in ev["estimates"]}
    summary = json.loads((out / "summary.json").read_text())
    cell = {
        "objective": name,
        "overrides": overrides,
        "epochs": a.epochs,
        "iwae_64": est[("iwae", BUDGET)]["mean"],
        "iwae_64_se": est[("iwae", BUDGET)]["stderr"],
        "iwae": est[("iwae", a.k)]["mean"],
        "iwae_se": est[("iwae", a.k)]["stderr"],
        "elbo": est[("elbo", max(ks))]["mean"],
        "elbo_se": est[("elbo", max(ks))]["stderr"],
        "k": a.k,
        "eval_n": est[("iwae", a.k)]["n"],
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "seconds": {"train": train_seconds, "evaluate": time.perf_counter() - t0},
    }
    (out / "cell.json").write_text(json.dumps(cell, indent=2) + "\n")
    return cell


def table(cells: list[dict], out: Path) -> str:
    k = cells[0]["k"]
    rows = [
        f"| objective | test IWAE_64 | test log p(x) (IWAE_{k}) | NLL vs iwae (paired) | "
        f"test ELBO | ELBO gap IWAE_{k} - ELBO (paired) | s / epoch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    have_iwae = any(c["objective"] == "iwae" for c in cells)
    for c in cells:
        run = out / c["objective"]
        diff = "-"
        if have_iwae and c["objective"] != "iwae":
            d, se = paired_scores(run, out / "iwae")
            diff = f"{-d:+.2f} ± {se:.2f}"
        g, gse = _gap(run, k)
        rows.append(
            f"| `{c['objective']}` | {c['iwae_64']:.2f} ± {c['iwae_64_se']:.2f} | "
            f"{c['iwae']:.2f} ± {c['iwae_se']:.2f} | {diff} | {c['elbo']:.2f} ± "
            f"{c['elbo_se']:.2f} | {g:.2f} ± {gse:.2f} | {c['seconds_per_epoch']:.0f} |"
        )
    return "\n".join(rows)


def _gap(run: Path, k: int) -> tuple[float, float]:
    """Mean and standard error over the images of IWAE_K - ELBO, from the run's scores.csv."""
    import torch

    from ppl_vae.bounds.estimators import mean_and_stderr
    from ppl_vae.reports.anomaly import read_scores

    d = read_scores(run / "scores.csv", f"iwae_{k}") - read_scores(run / "scores.csv", "elbo")
    return mean_and_stderr(torch.as_tensor(d))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--epochs", type=int, default=8, help="training epochs of every run")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=2000, help="test images (0: all)")
    p.add_argument("--k", type=int, default=5000, help="importance samples of the log p(x) bound")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/rainforth", help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--report", action="store_true", help="only tabulate the finished runs")
    a = p.parse_args(argv)
    out = Path(a.out)
    cells = []
    for name in a.runs:
        done = out / name / "cell.json"
        if done.is_file():
            cells.append(json.loads(done.read_text()))
        elif not a.report:
            cells.append(run_cell(name, a))
            print(f"{name}: {json.dumps(cells[-1])}", file=sys.stderr, flush=True)
    if not cells:
        sys.exit("no finished run to report")
    md = table(cells, out)
    (out / "rainforth.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
