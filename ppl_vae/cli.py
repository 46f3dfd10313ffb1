"""``ppl-vae``: argparse subcommands, each a few lines over the library.

``COMMANDS`` maps a subcommand to ``(add_arguments, run, help)``; add one entry per
subcommand. ``DESCRIPTION`` and ``EPILOG`` are what ``ppl-vae --help`` shows a user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from . import __version__
from .core.errors import UserError
from .core.threads import using_threads
from .layout import BEST, CHECKPOINT, RECIPE, SCORES_CSV

# where `ppl-vae sample --label` looks for the reference classifier of label fidelity
DEFAULT_REFERENCE = "runs/reference/mnist_convnet.pt"

# The library is imported inside each command, so that `ppl-vae --help` does not wait for it.

DESCRIPTION = """\
Variational autoencoders as Pyro models: train one from a recipe file, bound its log p(x)
with importance sampling (ELBO, IWAE_K, ESS, PSIS k-hat), draw pictures from it, and compare
runs in tables and figures. Each run lives in a run dir (runs/<recipe name>)."""

EPILOG = """\
example:
  ppl-vae train models/mnist_bernoulli_mlp.toml         # writes runs/mnist_bernoulli_mlp
  ppl-vae evaluate runs/mnist_bernoulli_mlp --k 1 10 100
  ppl-vae sample runs/mnist_bernoulli_mlp               # pictures in runs/.../pictures
  ppl-vae compare runs/mnist_bernoulli_mlp runs/other   # tables and figures in reports/

'ppl-vae COMMAND --help' lists a command's options. Datasets are read from --data-dir, else
$PPL_VAE_DATA, else ./data."""

SPLITS = ["train", "valid", "test"]
PACKAGE = Path(__file__).resolve().parent


def _threads_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--threads",
        type=int,
        help=f"torch's intra-op threads for {what} (default: torch's, one per core); on a "
        "machine shared with other jobs, 1 is much faster (docs/performance.md)",
    )


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe",
        nargs="?",
        help="a recipe TOML file, e.g. models/mnist_bernoulli_mlp.toml (none with --resume)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.epochs=5 (repeatable; the value is "
        "read as TOML)",
    )
    p.add_argument("--out", help="run dir (default: runs/<recipe name>)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run dir")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in RUN from its checkpoint, with the recipe saved in RUN",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="print nothing while training, only the JSON summary at the end",
    )
    p.add_argument(
        "--device",
        help="cpu, cuda[:i] or auto, a GPU if there is one (sets train.device; default: the "
        "recipe's)",
    )
    _threads_arg(p, "training (sets train.threads)")


def _resumable_recipe(run: Path, overrides: list[str]):
    """The recipe of the run dir to resume, or an error that names the command that works."""
    from .core.errors import RunDirError
    from .layout import CHECKPOINT
    from .runs.recipe import load_recipe

    try:
        return load_recipe(run, overrides)
    except RunDirError as e:
        if (run / CHECKPOINT).is_file():
            raise  # a run fit() wrote from Python: load_recipe's message says what to do
        fix = " --overwrite" if run.is_dir() and any(run.iterdir()) else ""
        raise RunDirError(
            f"cannot resume: {e} Start a run there with: ppl-vae train RECIPE --out {run}{fix}"
        ) from None


def _train(a: argparse.Namespace) -> int:
    from .core.errors import RecipeError
    from .runs.recipe import load  # no torch: a wrong recipe is refused at once

    if a.device:
        a.overrides.append(f"train.device={a.device}")
    if a.threads is not None:
        a.overrides.append(f"train.threads={a.threads}")
    if a.resume:
        recipe, out = _resumable_recipe(Path(a.resume), a.overrides), a.resume
        source = str(Path(a.resume) / RECIPE)
    elif a.recipe:
        recipe, out, source = load(a.recipe, a.overrides), a.out, a.recipe
    else:
        raise RecipeError("give a recipe file, e.g. ppl-vae train models/mnist_bernoulli_mlp.toml")
    resuming = f"resuming {a.resume}: " if a.resume else ""
    _starting(a, f"{resuming}loading {recipe.data.name} and building the model ...")
    from . import distributed
    from .runs.run import train_recipe

    world = distributed.init(recipe.train.device)
    run, result = train_recipe(
        recipe,
        out,
        data_dir=a.data_dir,
        overwrite=a.overwrite,
        resume=bool(a.resume),
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
        help="numbers of importance samples K (default: 1 10 100 1000, about two minutes for "
        "10,000 MNIST images on two cores; Burda et al.'s protocol adds 5000, five times longer)",
    )
    p.add_argument(
        "--split", default="test", choices=SPLITS, help="the split to evaluate (default: test)"
    )
    p.add_argument("--json", action="store_true", help="print eval.json instead of a table")
    p.add_argument(
        "--subset", type=int, default=0, help="only the first N data points (default: all)"
    )
    p.add_argument(
        "--batch-size", type=int, default=100, help="data points per batch (default: 100)"
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="particles per chunk (default: sized for the device)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the importance samples; the same seed gives the same estimates (default: 0)",
    )
    khat = p.add_mutually_exclusive_group()
    khat.add_argument(
        "--khat",
        action="store_true",
        help="require PSIS k-hat, an error if the largest K < 21 (default: computed when the "
        "largest K >= 21)",
    )
    khat.add_argument("--no-khat", action="store_true", help="skip PSIS k-hat")
    p.add_argument("--device", default="cpu", help="cpu, cuda[:i] or auto (default: cpu)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument(
        "--no-progress", action="store_true", help="print nothing while it runs, only the results"
    )
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
    p.add_argument(
        "--ais-steps",
        type=int,
        help="add annealed importance sampling with T annealing steps (HMC; slow: T x 10 "
        "gradients per chain and image)",
    )
    p.add_argument("--ais-chains", type=int, default=16, help="AIS chains per image (default: 16)")
    p.add_argument(
        "--while-training",
        action="store_true",
        help="score the checkpoint of a run that is still training, as of now; the results go "
        "into RUN/eval_step<S> (S: the step scored), not beside the run's final ones",
    )
    p.add_argument(
        "--best",
        action="store_true",
        help=f"score {BEST}, the best epoch by validation ELBO that train.keep_best kept, "
        f"instead of the last epoch",
    )
    _threads_arg(p, "the evaluation")


def _ais_options(a: argparse.Namespace, show: bool) -> dict | None:
    """``evaluate``'s estimator options from ``--ais-steps`` and ``--ais-chains``; AIS shows
    its own bar (its batches take minutes) when ``show``."""
    if a.ais_steps is None:
        return None
    return {"ais": {"num_steps": a.ais_steps, "num_chains": a.ais_chains, "progress": show}}


def _evaluate(a: argparse.Namespace) -> int:
    from .runs.recipe import load_recipe  # no torch: a path that is no run is refused at once

    recipe = load_recipe(a.run)
    _starting(a, f"loading {a.dataset or recipe.data.name} and the model of {a.run} ...")
    from . import distributed
    from .bounds import DEFAULT_KS, MIN_KHAT_PARTICLES, format_table
    from .runs.evaluate import evaluate_run

    world = distributed.init(a.device)
    khat = False if a.no_khat else (True if a.khat else None)
    ks = a.k or DEFAULT_KS
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
        options=_ais_options(a, not a.no_progress and world.is_main),
        while_training=a.while_training,
        weights=BEST if a.best else CHECKPOINT,
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
    p.add_argument(
        "--out", default="reports", help="where tables and figures go (default: reports)"
    )


def _compare(a: argparse.Namespace) -> int:
    from .reports.plots import write_figures
    from .reports.tables import write_comparison
    from .runs.compare import load_result

    results = [load_result(r) for r in a.runs]
    for r in results:  # marked in the table too; said here, where it is seen at once
        if r.current is not True:
            print(f"ppl-vae compare: warning: {r.name}: {r.note}", file=sys.stderr)
    paths = {**write_comparison(results, a.out), **write_figures(results, a.out)}
    print(paths["markdown"].read_text(), end="")
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument("--out", help="where pictures go (default: RUN/pictures)")
    p.add_argument(
        "--n",
        type=int,
        default=64,
        help="number of prior samples; N/2 images are shown beside their reconstructions "
        "(default: 64)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=SPLITS,
        help="the split the reconstructions and latent codes come from (default: test)",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=2000,
        help="data points in the latent scatter (default: 2000; 0: all)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the prior samples and reconstructions (default: 0)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda[:i] or auto (default: cpu)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument(
        "--label",
        type=int,
        help="runs with labels (m2, conditional): samples of this class, beside the analogies "
        "figure (one style z, every class y), and their label fidelity under --reference",
    )
    p.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="with --label: the reference classifier that reads 1,000 samples of the class "
        f"(default: {DEFAULT_REFERENCE}; made by benchmarks/reference_classifier.py)",
    )
    _threads_arg(p, "the pictures")


def _sample(a: argparse.Namespace) -> int:
    from .runs.sample import sample_run

    paths = sample_run(
        a.run,
        a.out,
        split=a.split,
        subset=a.subset,
        n=a.n,
        label=a.label,
        seed=a.seed,
        device=a.device,
        data_dir=a.data_dir,
        reference=a.reference if a.label is not None and Path(a.reference).is_file() else None,
    )
    if a.label is not None and "label_fidelity" not in paths:
        print(
            f"ppl-vae sample: label fidelity skipped: no reference classifier at {a.reference} "
            f"(train one: python benchmarks/reference_classifier.py --out {a.reference})",
            file=sys.stderr,
        )
    elif a.label is not None:
        f = json.loads(Path(paths["label_fidelity"]).read_text())
        print(
            f"label fidelity: {f['fidelity']:.3f} ± {f['stderr']:.3f} of {f['n']} samples of "
            f"class {a.label} read as {a.label} by the reference classifier (its test accuracy "
            f"{f['reference_test_accuracy']:.4f})",
            file=sys.stderr,
        )
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    return 0


def _bdmc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument(
        "--n",
        "--points",
        dest="n",
        type=int,
        default=100,
        help="points simulated from the model (default: 100; --points under torchrun, whose "
        "own options --n... would take --n)",
    )
    p.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[100],
        help="annealing steps T, one or more (default: 100)",
    )
    p.add_argument("--chains", type=int, default=16, help="AIS chains per point (default: 16)")
    p.add_argument(
        "--leapfrog", type=int, default=2, help="leapfrog steps per HMC move (default: 2)"
    )
    p.add_argument(
        "--start",
        default="q",
        choices=["q", "prior"],
        help="start from the guide q(z|x) or the prior (default: q)",
    )
    p.add_argument("--batch-size", type=int, default=100, help="points per batch (default: 100)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the simulation and the chains (default: 0)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda[:i] or auto (default: cpu)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--out", help="where bdmc.json and bdmc.png go (default: RUN)")
    p.add_argument("--json", action="store_true", help="print bdmc.json instead of a table")
    p.add_argument(
        "--no-progress", action="store_true", help="print nothing while it runs, only the results"
    )
    _threads_arg(p, "BDMC")


def _bdmc(a: argparse.Namespace) -> int:
    from .runs.recipe import load_recipe

    load_recipe(a.run)
    _starting(a, f"loading the model of {a.run} ...")
    from . import distributed
    from .runs.bdmc import bdmc_run

    world = distributed.init(a.device)
    out = bdmc_run(
        a.run,
        a.n,
        a.steps,
        num_chains=a.chains,
        num_leapfrog=a.leapfrog,
        start=a.start,
        batch_size=a.batch_size,
        seed=a.seed,
        device=a.device,
        data_dir=a.data_dir,
        out=a.out,
        progress=not a.no_progress,
        world=world,
    )
    if not world.is_main:
        return 0
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print("| T | lower | upper | upper - lower | seconds |\n|---|---|---|---|---|")
    for r in out["results"]:
        print(
            f"| {r['steps']} | {r['lower_mean']:.2f} ± {r['lower_stderr']:.2f} | "
            f"{r['upper_mean']:.2f} ± {r['upper_stderr']:.2f} | "
            f"{r['gap_mean']:.3f} ± {r['gap_stderr']:.3f} | {r['seconds']:.1f} |"
        )
    return 0


def _diagnose_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument("--split", default="test", choices=SPLITS, help="data to diagnose (test)")
    p.add_argument("--subset", type=int, default=0, help="the first N points only (0: all)")
    p.add_argument(
        "--num-samples",
        type=int,
        default=100,
        help="guide samples per point where a mean or KL has no closed form (default: 100)",
    )
    p.add_argument("--no-pictures", action="store_true", help="write diagnostics.json only")
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo parts (0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda[:i] or auto (default: cpu)")
    p.add_argument("--data-dir", help="data root (default: $PPL_VAE_DATA, else ./data)")
    p.add_argument("--out", help="where diagnostics.json and pictures/ go (default: RUN)")
    p.add_argument("--json", action="store_true", help="print diagnostics.json")
    _threads_arg(p, "the diagnostics")


def _diagnose(a: argparse.Namespace) -> int:
    from .analysis import summary_line
    from .runs.diagnose import diagnose_run

    doc = diagnose_run(
        a.run,
        split=a.split,
        subset=a.subset,
        num_samples=a.num_samples,
        pictures=not a.no_pictures,
        device=a.device,
        data_dir=a.data_dir,
        out=a.out,
        seed=a.seed,
    )
    if a.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(summary_line(doc))
    for note in doc["notes"]:
        print(f"note: {note}")
    print(json.dumps(doc.get("pictures", {})))
    return 0


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run dir written by ppl-vae train")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON")


def _info(a: argparse.Namespace) -> int:
    from .runs.info import format_info, run_info

    doc = run_info(a.run)
    print(json.dumps(doc, indent=2) if a.json else format_info(doc))
    return 0


COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (_train_args, _train, "train a recipe (models/*.toml) into a run dir"),
    "evaluate": (_evaluate_args, _evaluate, "bound log p(x) of a run: ELBO, IWAE_K, ESS, k-hat"),
    "compare": (_compare_args, _compare, "tables and figures comparing evaluated runs"),
    "sample": (_sample_args, _sample, "pictures of a run: samples, reconstructions, latents"),
    "bdmc": (_bdmc_args, _bdmc, "BDMC sandwich of log p(x) on data simulated from a run's model"),
    "diagnose": (_diagnose_args, _diagnose, "the latent space of a run: active units, KL, MI"),
    "info": (_info_args, _info, "what a run is, its state, its checkpoint and its results"),
}


def main(argv: list[str] | None = None) -> int:
    """Runs ``ppl-vae`` with ``argv`` (default: the command line); returns the exit status: 0,
    2 for an error the user can fix (one line on stderr), 130 when interrupted."""
    parser = argparse.ArgumentParser(
        prog="ppl-vae",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for name, (add_args, _, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    a = parser.parse_args(argv)
    from ._malloc import keep_freed_memory

    keep_freed_memory()  # CPU tensors are reused instead of re-faulted (ppl_vae._malloc)
    try:
        # train sets train.threads, which fit applies; the others run in these threads
        threads = 0 if a.command == "train" else (getattr(a, "threads", None) or 0)
        with _warnings_as_lines(a.command), using_threads(threads):
            return COMMANDS[a.command][1](a)
    except UserError as e:
        print(f"ppl-vae {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # a second Ctrl-C interrupts the handler of the first and carries no message
        print(f"ppl-vae {a.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130


def _starting(a: argparse.Namespace, what: str) -> None:
    """Says on stderr what the command does before its first output (loading the library and
    the data takes seconds), unless ``--no-progress``; once, from rank 0 under torchrun."""
    if not a.no_progress and os.environ.get("RANK", "0") == "0":
        print(f"ppl-vae {a.command}: {what}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _warnings_as_lines(command: str) -> Iterator[None]:
    """Shows each UserWarning the library raises as one line, ``ppl-vae CMD: warning: ...``,
    once per command; other warnings keep Python's format.

    It replaces ``warnings.formatwarning``, not ``showwarning``, so that filters (``-W
    error``) and recorders (``pytest.warns``) still see every warning."""
    original = warnings.formatwarning
    shown: set[str] = set()

    def format_warning(message, category, filename, lineno, line=None) -> str:
        ours = issubclass(category, UserWarning) and Path(filename).resolve().is_relative_to(
            PACKAGE
        )
        if not ours:
            return original(message, category, filename, lineno, line)
        if str(message) in shown:  # the same warning from another call site
            return ""
        shown.add(str(message))
        return f"ppl-vae {command}: warning: {message}\n"

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = original


if __name__ == "__main__":
    sys.exit(main())
