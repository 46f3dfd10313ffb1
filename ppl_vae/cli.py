"""``ppl-vae``: argparse subcommands, each a few lines over the library.

``COMMANDS`` maps a subcommand to ``(add_arguments, run)``; add one entry per subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import UserError
from .layout import RECIPE, SCORES_CSV, TRAINING_CURVES, pictures_dir

# The library is imported inside each command, so that `ppl-vae --help` does not wait for it.


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe", nargs="?", help="a recipe TOML file, e.g. models/mnist_bernoulli_mlp.toml"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.epochs=5 (repeatable)",
    )
    p.add_argument("--out", help="run dir (default: runs/<recipe name>)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run dir")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--device", help="cpu, cuda or auto (sets train.device)")


def _train(a: argparse.Namespace) -> int:
    from . import distributed
    from .errors import RecipeError
    from .runs.recipe import load, load_recipe
    from .runs.run import train_recipe

    if a.device:
        a.overrides.append(f"train.device={a.device}")
    if a.resume:
        recipe, out = load_recipe(a.resume, a.overrides), a.resume
        source = str(Path(a.resume) / RECIPE)
    elif a.recipe:
        recipe, out, source = load(a.recipe, a.overrides), a.out, a.recipe
    else:
        raise RecipeError("give a recipe file, e.g. ppl-vae train models/mnist_bernoulli_mlp.toml")
    world = distributed.init(recipe.train.device)
    run, result = train_recipe(
        recipe,
        out,
        a.data_dir,
        a.overwrite,
        bool(a.resume),
        progress=not a.no_progress,
        source=source,
        world=world,
    )
    if not world.is_main:
        return 0
    summary = {"run": str(run.path), "steps": result.steps, "test_elbo": result.test_elbo}
    if result.history:
        seconds = [r["seconds"] for r in result.history]
        summary["seconds_per_epoch"] = sum(seconds) / len(seconds)
    print(json.dumps(summary))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=None,
        help="numbers of importance samples K (default: 1 10 100 1000 5000)",
    )
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--json", action="store_true", help="print eval.json instead of a table")
    p.add_argument("--subset", type=int, default=0, help="only the first N data points")
    p.add_argument("--batch-size", type=int, default=100, help="data points per batch")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="particles per chunk (default: sized for the device)",
    )
    p.add_argument("--seed", type=int, default=0)
    khat = p.add_mutually_exclusive_group()
    khat.add_argument(
        "--khat", action="store_true", help="require PSIS k-hat (an error if max K < 21)"
    )
    khat.add_argument("--no-khat", action="store_true", help="skip PSIS k-hat")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--per-datapoint",
        action="store_true",
        help=f"also write {SCORES_CSV}: IWAE log p(x) (and label) per data point",
    )
    p.add_argument(
        "--dataset",
        help="score another dataset (same binarization), e.g. fashion_mnist for anomaly scores",
    )
    p.add_argument("--out", help="where results go (default: RUN, or RUN/eval_<dataset>)")


def _evaluate(a: argparse.Namespace) -> int:
    from . import distributed
    from .bounds import MIN_KHAT_PARTICLES, format_table
    from .runs.evaluate import evaluate_run

    world = distributed.init(a.device)
    khat = False if a.no_khat else (True if a.khat else None)
    ks = a.k or [1, 10, 100, 1000, 5000]
    out = evaluate_run(
        a.run,
        ks,
        split=a.split,
        subset=a.subset,
        batch_size=a.batch_size,
        chunk_size=a.chunk_size,
        seed=a.seed,
        khat=khat,
        device=a.device,
        data_dir=a.data_dir,
        dataset=a.dataset,
        out=a.out,
        per_datapoint=a.per_datapoint,
        progress=not a.no_progress,
        world=world,
    )
    if not world.is_main:
        return 0
    print(json.dumps(out, indent=2) if a.json else format_table(out["estimates"]))
    if khat is None and max(ks) < MIN_KHAT_PARTICLES:
        print(
            f"ppl-vae evaluate: k-hat skipped: PSIS needs K >= {MIN_KHAT_PARTICLES} particles "
            f"and the largest K is {max(ks)}.",
            file=sys.stderr,
        )
    return 0


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="evaluated run dirs (ppl-vae evaluate RUN first)")
    p.add_argument("--out", default="reports", help="tables and figures go here (default: reports)")


def _compare(a: argparse.Namespace) -> int:
    from .reports.plots import write_figures
    from .reports.tables import load_result, write_comparison

    results = [load_result(r) for r in a.runs]
    paths = {**write_comparison(results, a.out), **write_figures(results, a.out)}
    print(paths["markdown"].read_text(), end="")
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument("--out", help="where pictures go (default: RUN/pictures)")
    p.add_argument("--n", type=int, default=64, help="prior samples (and 2x reconstructions)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--subset", type=int, default=2000, help="data points in the latent scatter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")


def _sample(a: argparse.Namespace) -> int:
    from .reports.pictures import write_pictures
    from .reports.plots import plot_training_curves
    from .reports.tables import read_metrics
    from .runs.run import load_run

    run = load_run(a.run, a.data_dir, a.device)
    out = Path(a.out or pictures_dir(run.path))
    x = run.data.split(a.split)[: a.subset or None]
    paths = write_pictures(run.model, run.guide, x, out, run.data.labels.get(a.split), a.n, a.seed)
    paths["training_curves"] = out / TRAINING_CURVES
    plot_training_curves({run.path.name: read_metrics(run.path)}, paths["training_curves"])
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (_train_args, _train, "train a recipe into a run dir"),
    "evaluate": (_evaluate_args, _evaluate, "bound log p(x): ELBO, IWAE_K, ESS, k-hat"),
    "compare": (_compare_args, _compare, "tables and figures comparing evaluated runs"),
    "sample": (_sample_args, _sample, "pictures: prior samples, reconstructions, latents"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ppl-vae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    a = parser.parse_args(argv)
    from ._malloc import keep_freed_memory

    keep_freed_memory()  # CPU tensors are reused instead of re-faulted (ppl_vae._malloc)
    try:
        return COMMANDS[a.command][1](a)
    except UserError as e:
        print(f"ppl-vae {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"ppl-vae {a.command}: {e or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
