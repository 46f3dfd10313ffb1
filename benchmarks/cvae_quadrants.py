"""Image completion: conditional NLL -log p(x_out | x_in) of the CVAE and the plain network.

For data.given_quadrants = 1, 2, 3 trains models/mnist_cvae_quadrants.toml and its
deterministic baseline (model.options.baseline = true), resuming runs already started, and
bounds the conditional NLL on the first --eval-subset test images by importance sampling with
K particles from the recognition guide (ppl-vae evaluate: the same estimator code as every other
bound; the baseline has no latent, its K = 1 value is exact), and the ELBO on every test image
(``elbo_nll``: the bound Pyro's table reports). Prints JSON beside Pyro's table.

``--variant pyro`` trains Pyro's tutorial model instead (its prior network reads the frozen
baseline's guess, trained just before; its generation network reads z alone). ``--patience P``
selects the epoch as Pyro's example does, but on the validation split: training stops after P
epochs without a better validation ELBO (at most ``--epochs``), and the best epoch
(``best.pt``) is scored.

    python benchmarks/cvae_quadrants.py --epochs 4 --k 1 10 100 --out runs/cvae
    python benchmarks/cvae_quadrants.py --variant pyro --patience 3 --epochs 30 --out runs/cvae_pyro
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ppl_vae.layout import BEST, CHECKPOINT, SUMMARY
from ppl_vae.model.cvae import CVAE_VARIANTS
from ppl_vae.runs import recipe as config
from ppl_vae.runs.evaluate import evaluate_run
from ppl_vae.runs.run import train_recipe

REPO = Path(__file__).resolve().parents[1]
# Pyro's CVAE tutorial: conditional NLL in nats for 1 / 2 / 3 given quadrants
PYRO = {"cvae": {"1": 71.8, "2": 51.0, "3": 24.2}, "baseline": {"1": 100.4, "2": 61.9, "3": 25.4}}


def run_one(given: int, kind: str, args: argparse.Namespace) -> dict:
    out = Path(args.out) / f"{kind}_q{given}"
    sets = [
        f"data.given_quadrants={given}",
        f"train.epochs={args.epochs}",
        f"model.options.baseline={'true' if kind == 'baseline' else 'false'}",
        *args.set,
    ]
    if kind == "cvae" and args.variant != "sohn":
        baseline = Path(args.out) / f"baseline_q{given}"
        sets += [f"model.options.variant={args.variant}", f"model.options.baseline_run={baseline}"]
    if args.patience:
        sets += ["train.keep_best=true", f"train.patience={args.patience}"]
    summary = out / SUMMARY
    done = summary.is_file() and json.loads(summary.read_text())["epochs"] >= args.epochs
    if args.patience and summary.is_file():  # a run that stopped early is done too
        ran = json.loads(summary.read_text())
        done = done or ran["epochs"] - (ran["best_epoch"] or 0) >= args.patience
    if not done:
        recipe = config.load(REPO / "models" / "mnist_cvae_quadrants.toml", sets)
        train_recipe(
            recipe,
            out,
            data_dir=args.data_dir,
            resume=(out / CHECKPOINT).is_file(),
            progress=args.progress,
        )
    # the ELBO (IWAE_1) on every test image: what Pyro's table reports (its loss, 10 particles)
    weights = BEST if args.patience else CHECKPOINT
    whole = evaluate_run(out, [1], subset=0, data_dir=args.data_dir, khat=False, weights=weights)
    elbo = next(e for e in whole["estimates"] if e["estimator"] == "iwae")
    found = {"elbo_nll": -elbo["mean"], "elbo_stderr": elbo["stderr"], "elbo_n": elbo["n"]}
    if kind == "baseline":  # no latent: its one log weight is the exact log-likelihood
        best, seconds = elbo, whole["seconds"]
    else:
        r = evaluate_run(
            out,
            args.k,
            subset=args.eval_subset,
            data_dir=args.data_dir,
            khat=False,
            weights=weights,
        )
        best = max((e for e in r["estimates"] if e["estimator"] == "iwae"), key=lambda e: e["k"])
        seconds = whole["seconds"] + r["seconds"]
    return {
        "nll": -best["mean"],
        "stderr": best["stderr"],
        "k": best["k"],
        "n": best["n"],
        **found,
        "summary": json.loads(summary.read_text()),
        "scored_epoch": whole["provenance"]["checkpoint"]["epoch"],
        "eval_seconds": seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--given", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--k", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--eval-subset", type=int, default=1000)
    p.add_argument("--out", default="runs/cvae")
    p.add_argument("--variant", default="sohn", choices=sorted(CVAE_VARIANTS), help="the CVAE's")
    p.add_argument(
        "--patience", type=int, default=0, help="select the epoch on the validation split"
    )
    p.add_argument("--data-dir")
    p.add_argument("--set", action="append", default=[], help="recipe override, repeatable")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    table = {}
    for g in args.given:
        for kind in ("baseline", "cvae"):
            table[f"{kind}/{g}"] = run_one(g, kind, args)
            print(json.dumps({"given": g, "kind": kind, **table[f"{kind}/{g}"]}), flush=True)
    result = {
        "epochs": args.epochs,
        "variant": args.variant,
        "patience": args.patience,
        "results": table,
        "pyro": PYRO,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
