"""``ppl-vae``: argparse subcommands, each a few lines over the library.

``COMMANDS`` maps a subcommand to ``(add_arguments, run)``; add one entry per subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from . import config
from .checks import DataError
from .config import RecipeError
from .data.root import MissingDataError
from .registry import UnknownNameError
from .run import RunDirError, load_recipe, train_recipe
from .storage import CheckpointError
from .train import TrainingDiverged

USER_ERRORS = (
    RecipeError, DataError, MissingDataError, UnknownNameError, RunDirError, CheckpointError,
    TrainingDiverged, ValueError,
)  # fmt: skip


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


def _train(a: argparse.Namespace) -> int:
    if a.resume:
        recipe, out = load_recipe(a.resume, a.overrides), a.resume
    elif a.recipe:
        recipe, out = config.load(a.recipe, a.overrides), a.out
    else:
        raise RecipeError("give a recipe file, e.g. ppl-vae train models/mnist_bernoulli_mlp.toml")
    run, result = train_recipe(recipe, out, a.data_dir, a.overwrite, bool(a.resume),
                               progress=not a.no_progress)  # fmt: skip
    summary = {"run": str(run.path), "steps": result.steps, "test_elbo": result.test_elbo}
    if result.history:
        summary["seconds_per_epoch"] = sum(r["seconds"] for r in result.history) / len(
            result.history
        )
    print(json.dumps(summary))
    return 0


COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "train": (_train_args, _train, "train a recipe into a run dir"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ppl-vae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    a = parser.parse_args(argv)
    try:
        return COMMANDS[a.command][1](a)
    except USER_ERRORS as e:
        print(f"ppl-vae {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ppl-vae {a.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
