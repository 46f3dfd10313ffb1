"""Priors at equal budget: standard, mog, vamp and flow on the seed VAE, test NLL by IWAE_K.

Trains ``models/mnist_bernoulli_mlp.toml`` (784-400-20 ReLU, diagonal guide, Bernoulli pixels,
dynamically binarized MNIST, the ELBO, Adam 1e-3, batch 128) once per prior, changing only
``model.prior`` and ``model.prior_options``, with the same epochs and seed. Then, per run:
ELBO and IWAE_K (default K = 5000) on the test images, with PSIS k-hat and the per-image scores
(``scores.csv``), and the latent diagnostics (active units) on the same images. Each run writes
``OUT/<prior>/cell.json`` when done, and a run with one is skipped, so the script resumes where
it stopped (a run killed while training resumes from its checkpoint). At the end it prints a
markdown table with the paired differences against ``standard`` on the same test images (from
their ``scores.csv``) and Tomczak & Welling's figures beside, writes it to ``OUT/priors.md``,
and with ``--figure`` draws samples from each prior's model.

    OMP_NUM_THREADS=1 python benchmarks/priors_mnist.py --epochs 50 --k 5000 \\
        --out runs/priors --figure docs/priors_samples.png                  # hours on CPU
    python benchmarks/priors_mnist.py --epochs 1 --subset 1000 --eval-subset 100 --k 10 \\
        --diagnose-subset 100 --out /tmp/priors                             # a quick smoke check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _train_eval import REPO, paired_scores, train_or_resume

RECIPE = REPO / "models" / "mnist_bernoulli_mlp.toml"

# prior -> its recipe overrides (K = 500 for the mixture and the VampPrior, as in the issue)
PRIORS = {
    "standard": ['model.prior="standard"', "model.prior_options={}"],
    "mog": ['model.prior="mog"', "model.prior_options={num_components=500}"],
    "vamp": ['model.prior="vamp"', "model.prior_options={num_pseudo=500}"],
    "flow": ['model.prior="flow"', "model.prior_options={}"],
}

# Tomczak & Welling (2018), Table 1: test log-likelihood (IWAE_5000) on dynamically binarized
# MNIST, one stochastic layer (their gated MLP 300-300, z = 40, K = 500, 100 epochs of KL
# warm-up, early stopping), by prior.
TOMCZAK_L1 = {"standard": -88.56, "mog": -86.55, "vamp": -85.57}


def run_cell(prior: str, a: argparse.Namespace) -> dict:
    """Trains (or resumes) one prior's run, evaluates and diagnoses it; writes cell.json."""
    from ppl_vae.layout import SUMMARY
    from ppl_vae.runs.diagnose import diagnose_run
    from ppl_vae.runs.evaluate import evaluate_run

    out = Path(a.out) / prior
    overrides = [
        f"name=prior_{prior}",
        f"train.epochs={a.epochs}",
        f"data.subset={a.subset}",
        f"train.seed={a.seed}",
        *PRIORS[prior],
    ]
    t0 = time.perf_counter()
    train_or_resume(RECIPE, overrides, out, a.data_dir)
    t1 = time.perf_counter()
    ev = evaluate_run(
        out, [a.k], subset=a.eval_subset, per_datapoint=True, data_dir=a.data_dir, seed=a.seed
    )
    t2 = time.perf_counter()
    diag = diagnose_run(out, subset=a.diagnose_subset, pictures=False, data_dir=a.data_dir)
    t3 = time.perf_counter()
    summary = json.loads((out / SUMMARY).read_text())
    est = {(e["estimator"], e["k"]): e for e in ev["estimates"]}
    iwae = est[("iwae", a.k)]
    cell = {
        "prior": prior,
        "overrides": overrides,
        "epochs": a.epochs,
        "active_units": diag["active_units"],
        "kl": diag["kl"],
        "elbo": est[("elbo", a.k)]["mean"],
        "elbo_se": est[("elbo", a.k)]["stderr"],
        "iwae": iwae["mean"],
        "iwae_se": iwae["stderr"],
        "khat_above_0.7": est[("khat_above_0.7", a.k)]["mean"],
        "k": a.k,
        "eval_n": iwae["n"],
        "diagnose_n": diag["n"],
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "seconds": {"train": t1 - t0, "evaluate": t2 - t1, "diagnose": t3 - t2},
    }
    (out / "cell.json").write_text(json.dumps(cell, indent=2) + "\n")
    return cell


def table(cells: list[dict], out: Path) -> str:
    k = cells[0]["k"]
    rows = [
        f"| prior | test ELBO | IWAE_{k} | vs standard (paired) | Tomczak & Welling L=1 | "
        "active units | KL | k-hat > 0.7 | s / epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    have_standard = any(c["prior"] == "standard" for c in cells)
    for c in cells:
        diff = "-"
        if have_standard and c["prior"] != "standard":
            d, se = paired_scores(out / c["prior"], out / "standard")
            diff = f"{d:+.2f} ± {se:.2f}"
        khat = c["khat_above_0.7"]
        rows.append(
            f"| `{c['prior']}` | {c['elbo']:.2f} ± {c['elbo_se']:.2f} | {c['iwae']:.2f} ± "
            f"{c['iwae_se']:.2f} | {diff} | {TOMCZAK_L1.get(c['prior'], '-')} | "
            f"{c['active_units']} | {c['kl']:.2f} | "
            f"{'-' if khat is None else f'{100 * khat:.1f}%'} | {c['seconds_per_epoch']:.1f} |"
        )
    return "\n".join(rows)


def figure(priors: list[str], out: Path, path: Path, n: int = 64) -> None:
    """An 8 x 8 grid of samples (pixel means) from each prior's trained model, side by side."""
    import torch

    from ppl_vae.reports.figures import figure as new_figure
    from ppl_vae.reports.figures import finish
    from ppl_vae.runs.run import load_run

    fig, axes = new_figure(1, len(priors), width=2.6, height=2.8)
    for ax, prior in zip(axes[0], priors, strict=True):
        run = load_run(out / prior)
        torch.manual_seed(0)
        with torch.no_grad():
            x = run.model.sample(n).reshape(n, 28, 28)
        grid = x.reshape(8, 8, 28, 28).permute(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
        ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(prior)
        ax.set_axis_off()
    finish(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    p.add_argument("--epochs", type=int, default=50, help="training epochs of every run")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=0, help="test images (0: all 10,000)")
    p.add_argument("--k", type=int, default=5000, help="importance samples of IWAE_K")
    p.add_argument("--diagnose-subset", type=int, default=0, help="test images to diagnose")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/priors", help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--figure", help="where to draw the samples of each prior (PNG)")
    p.add_argument("--report", action="store_true", help="only tabulate the finished runs")
    a = p.parse_args(argv)
    out = Path(a.out)
    cells = []
    for prior in a.priors:
        done = out / prior / "cell.json"
        if done.is_file():
            cells.append(json.loads(done.read_text()))
        elif not a.report:
            cells.append(run_cell(prior, a))
            print(f"{prior}: {json.dumps(cells[-1])}", file=sys.stderr, flush=True)
    if not cells:
        sys.exit("no finished run to report")
    md = table(cells, out)
    (out / "priors.md").write_text(md + "\n")
    print(md)
    if a.figure:
        figure([c["prior"] for c in cells], out, Path(a.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
