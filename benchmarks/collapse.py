"""Posterior collapse at a fixed budget: latent size x countermeasure, on the MNIST recipe.

Trains ``models/mnist_bernoulli_mlp.toml`` (784-400-z, ReLU, Bernoulli pixels, dynamically
binarized MNIST, Adam 1e-3, batch 128) for the same number of epochs in every cell of the grid

- latent size z_dim: 2, 10, 20, 50, 100;
- objective: ``elbo`` (the plain ELBO), ``warmup`` (KL warm-up over the first half of the
  epochs), ``free_bits`` (FREE_BITS nats per latent unit) and ``beta`` (beta = BETA > 1, a
  deliberately collapsing setting), ``vamp`` and ``mog`` (the plain ELBO with a VampPrior or a
  mixture-of-Gaussians prior of K = 500 components instead of N(0, I)),

then, per run, scores ELBO and IWAE_K on the first ``--eval-subset`` test images
(``evaluate_run``) and diagnoses the latent space on the first ``--diagnose-subset`` test
images (``ppl_vae.runs.diagnose.diagnose_run``: active units, KL, mutual information). Each
cell writes ``OUT/<objective>_z<d>/cell.json`` when done, and a cell with one is skipped, so
the script resumes where it stopped (a cell killed while training resumes from its
checkpoint). At the end (or with ``--report``) it prints a markdown table and writes it to
``OUT/collapse.md``, and draws the figure.

    python benchmarks/collapse.py --epochs 8 --figure docs/collapse_study.png
    python benchmarks/collapse.py --report --figure docs/collapse_study.png   # table only
    python benchmarks/collapse.py --watch elbo 100 --epochs 30 --figure docs/collapse_epochs.png
    python benchmarks/collapse.py --epochs 1 --subset 1000 --eval-subset 100 --k 10 \\
        --diagnose-subset 500 --z 2 10 --out /tmp/collapse            # a quick smoke check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _train_eval import REPO, paired_scores, train_or_resume

RECIPE = REPO / "models" / "mnist_bernoulli_mlp.toml"
Z_DIMS = (2, 10, 20, 50, 100)
FREE_BITS = 0.2  # nats per latent unit
BETA = 4.0


def objectives(epochs: int) -> dict[str, list[str]]:
    """Objective name -> its recipe overrides (the warm-up spans the first half of the epochs)."""
    return {
        "elbo": [],
        "warmup": [f"objective.options.kl_warmup_epochs={max(1, epochs // 2)}"],
        "free_bits": [f"objective.options.free_bits={FREE_BITS}"],
        "beta": [f"objective.options.kl_weight={BETA}"],
        # learned priors (docs/priors.md), K = 500 components as in Tomczak & Welling
        "vamp": ['model.prior="vamp"', "model.prior_options={num_pseudo=500}"],
        "mog": ['model.prior="mog"', "model.prior_options={num_components=500}"],
    }


def run_cell(name: str, z_dim: int, sets: list[str], a: argparse.Namespace) -> dict:
    """Trains (or resumes) one cell, evaluates and diagnoses it; returns and writes its figures."""
    from ppl_vae.runs.diagnose import diagnose_run
    from ppl_vae.runs.evaluate import evaluate_run

    out = Path(a.out) / f"{name}_z{z_dim}"
    overrides = [
        f"name={name}_z{z_dim}",
        f"model.z_dim={z_dim}",
        f"train.epochs={a.epochs}",
        f"data.subset={a.subset}",
        f"train.seed={a.seed}",
        *sets,
    ]
    t0 = time.perf_counter()
    train_or_resume(RECIPE, overrides, out, a.data_dir)
    t1 = time.perf_counter()
    ev = evaluate_run(
        out, [1, a.k], subset=a.eval_subset, khat=False, per_datapoint=True, data_dir=a.data_dir
    )
    t2 = time.perf_counter()
    diag = diagnose_run(out, subset=a.diagnose_subset, pictures=False, data_dir=a.data_dir)
    t3 = time.perf_counter()
    est = {(e["estimator"], e["k"]): e for e in ev["estimates"]}
    cell = {
        "objective": name,
        "z_dim": z_dim,
        "overrides": overrides,
        "active_units": diag["active_units"],
        "kl": diag["kl"],
        "mutual_information": diag["mutual_information"],
        "marginal_kl": (diag["information"] or {}).get("marginal_kl"),
        "nmi": (diag["clusters"] or {}).get("nmi"),
        "elbo": est[("elbo", a.k)]["mean"],
        "elbo_se": est[("elbo", a.k)]["stderr"],
        "iwae": est[("iwae", a.k)]["mean"],
        "iwae_se": est[("iwae", a.k)]["stderr"],
        "k": a.k,
        "eval_n": est[("iwae", a.k)]["n"],
        "diagnose_n": diag["n"],
        "seconds": {"train": t1 - t0, "evaluate": t2 - t1, "diagnose": t3 - t2},
    }
    (out / "cell.json").write_text(json.dumps(cell, indent=2) + "\n")
    return cell


KL_UNIT = 0.1  # nats: a unit "carries information" above this KL (a column of the table)


def informative_units(run: Path) -> int | None:
    """Units whose KL_u exceeds ``KL_UNIT`` nats, from the run's diagnostics.json."""
    path = run / "diagnostics.json"
    if not path.is_file():
        return None
    sites = list(json.loads(path.read_text())["sites"].values())
    if any(s["kl_per_unit"] is None for s in sites):
        return None  # a learned prior: no KL per unit (docs/priors.md)
    return sum(k > KL_UNIT for s in sites for k in s["kl_per_unit"])


def table(cells: list[dict]) -> str:
    """The markdown table: one row per cell, grouped by objective."""
    k = cells[0]["k"] if cells else "K"
    head = (
        f"| objective | z_dim | active units | units with KL_u > {KL_UNIT} | KL (nats) | "
        f"MI (nats) | marginal KL | test ELBO | test IWAE_{k} | k-means NMI | train s |\n|---|"
        + "---:|"
        * 10
    )
    rows = [head]
    for c in cells:
        mi = "-" if c["mutual_information"] is None else f"{c['mutual_information']:.2f}"
        mk = "-" if c["marginal_kl"] is None else f"{c['marginal_kl']:.2f}"
        nmi = "-" if c["nmi"] is None else f"{c['nmi']:.3f}"
        info = "-" if c.get("informative") is None else c["informative"]
        rows.append(
            f"| {c['objective']} | {c['z_dim']} | {c['active_units']} | {info} | {c['kl']:.2f} | "
            f"{mi} | {mk} | {c['elbo']:.2f} ± {c['elbo_se']:.2f} | {c['iwae']:.2f} ± "
            f"{c['iwae_se']:.2f} | {nmi} | {c['seconds']['train']:.0f} |"
        )
    return "\n".join(rows)


def paired_table(cells: list[dict], out: Path) -> str:
    """IWAE_K of each countermeasure minus the plain ELBO's at the same latent size, paired
    over the same test images (from the cells' scores.csv), mean ± standard error."""
    names = [n for n in dict.fromkeys(c["objective"] for c in cells) if n != "elbo"]
    zs = sorted({c["z_dim"] for c in cells})
    have = {(c["objective"], c["z_dim"]) for c in cells}
    rows = ["| z_dim | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for z in zs:
        base = out / f"elbo_z{z}"
        if ("elbo", z) not in have or not (base / "scores.csv").is_file():
            continue
        row = []
        for n in names:
            run = out / f"{n}_z{z}"
            if (n, z) in have and (run / "scores.csv").is_file():
                d, se = paired_scores(run, base)
                row.append(f"{d:+.2f} ± {se:.2f}")
            else:
                row.append("-")
        rows.append(f"| {z} | " + " | ".join(row) + " |")
    return "\n".join(rows)


def figure(cells: list[dict], path: Path) -> None:
    """Active units, mutual information and test IWAE_K against the latent size, per objective."""
    from ppl_vae.reports.figures import figure as new_figure
    from ppl_vae.reports.figures import finish, legend_below

    fig, axes = new_figure(2, 2, width=4.6, height=3.2)
    names = list(dict.fromkeys(c["objective"] for c in cells))
    panels = (
        ("active_units", "active units (Var_x E_q[z_u|x] > 0.01)"),
        ("informative", f"units with KL_u > {KL_UNIT} nats"),
        ("mutual_information", "I_q(x; z), nats (at most log N)"),
        ("iwae", f"test IWAE_{cells[0]['k']}, nats"),
    )
    for ax, (key, label) in zip(axes.flat, panels, strict=True):
        for i, name in enumerate(names):
            row = sorted((c for c in cells if c["objective"] == name), key=lambda c: c["z_dim"])
            xs = [c["z_dim"] for c in row if c[key] is not None]
            ax.plot(
                xs,
                [c[key] for c in row if c[key] is not None],
                "o-",
                color=f"C{i}",
                label=name if key == "active_units" else None,
            )
        if key in ("active_units", "informative"):
            zs = sorted({c["z_dim"] for c in cells})
            ax.plot(zs, zs, ":", color="0.5", label="all units" if key == "active_units" else None)
        ax.set_xscale("log")
        ax.set_xticks(sorted({c["z_dim"] for c in cells}))
        ax.set_xticklabels([str(z) for z in sorted({c["z_dim"] for c in cells})])
        ax.minorticks_off()
        ax.set_xlabel("latent size z_dim")
        ax.set_ylabel(label)
    legend_below(fig)
    finish(fig, path)


def watch(z_dim: int, name: str, a: argparse.Namespace) -> list[dict]:
    """Trains (or resumes) one run with ``train.log_latent = true`` and returns its metrics rows:
    the active units and the KL after every epoch."""
    from ppl_vae.reports.tables import read_metrics

    out = Path(a.out) / f"{name}_z{z_dim}_watch"
    sets = [*objectives(a.epochs)[name], f"model.z_dim={z_dim}", f"train.epochs={a.epochs}"]
    sets += [f"data.subset={a.subset}", f"train.seed={a.seed}", "train.log_latent=true"]
    train_or_resume(RECIPE, [f"name={out.name}", *sets], out, a.data_dir)
    return read_metrics(out)


def watch_figure(rows: list[dict], title: str, path: Path) -> None:
    """Active units and KL against the epoch, from a run trained with train.log_latent."""
    from ppl_vae.reports.figures import figure as new_figure
    from ppl_vae.reports.figures import finish

    fig, axes = new_figure(1, 2, width=4.2, height=3.2)
    epochs = [r["epoch"] for r in rows]
    for ax, key, label in zip(
        axes[0], ("active_units", "kl"), ("active units", "KL (nats)"), strict=True
    ):
        ax.plot(epochs, [r[key] for r in rows], "o-")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    fig.suptitle(title, fontsize="medium")
    finish(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8, help="training epochs of every cell")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--eval-subset", type=int, default=1000, help="test images for the bounds")
    p.add_argument("--k", type=int, default=1000, help="importance samples of IWAE_K")
    p.add_argument("--diagnose-subset", type=int, default=0, help="test images to diagnose")
    p.add_argument("--z", type=int, nargs="+", default=list(Z_DIMS), help="latent sizes")
    p.add_argument("--objectives", nargs="+", default=None, help="a subset of the objectives")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/collapse", help="parent folder of the runs")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--figure", help="where to draw the figure (PNG)")
    p.add_argument("--report", action="store_true", help="only tabulate the finished cells")
    p.add_argument(
        "--watch",
        nargs=2,
        metavar=("OBJECTIVE", "Z"),
        help="instead of the grid: train one run with train.log_latent and draw active units "
        "and KL per epoch into --figure",
    )
    a = p.parse_args(argv)
    if a.watch:
        name, z = a.watch[0], int(a.watch[1])
        rows = watch(z, name, a)
        print(json.dumps([{k: r[k] for k in ("epoch", "active_units", "kl")} for r in rows]))
        if a.figure:
            title = f"{name}, z_dim = {z}: measured on 1000 validation images after each epoch"
            watch_figure(rows, title, Path(a.figure))
        return 0
    grid = objectives(a.epochs)
    names = a.objectives or list(grid)
    cells = []
    for z in a.z:  # latent size outermost: a run stopped early has whole rows of objectives
        for name in names:
            done = Path(a.out) / f"{name}_z{z}" / "cell.json"
            if done.is_file():
                cells.append(json.loads(done.read_text()))
            elif not a.report:
                cells.append(run_cell(name, z, grid[name], a))
                c = cells[-1]
                print(
                    f"{name} z={z}: {c['active_units']} active, IWAE {c['iwae']:.2f}, "
                    f"{c['seconds']}",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                continue
            cells[-1]["informative"] = informative_units(done.parent)
    if not cells:
        sys.exit("no finished cell to report")
    cells.sort(key=lambda c: (names.index(c["objective"]), c["z_dim"]))
    md = table(cells) + "\n\nIWAE_K minus the plain ELBO's, paired:\n\n"
    md += paired_table(cells, Path(a.out))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "collapse.md").write_text(md + "\n")
    print(md)
    if a.figure:
        figure(cells, Path(a.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
