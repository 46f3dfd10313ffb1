"""The public surface: names kept from 0.1, lazy imports, ``evaluate_run``, and which errors
the CLI prints as user errors."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import ppl_vae
from ppl_vae.cli import main
from ppl_vae.core.errors import UserError

MODELS = Path(__file__).resolve().parents[1] / "models"

# ppl_vae.__all__ of 0.1 (keep_freed_memory became private: ppl_vae._malloc)
NAMES_0_1 = [
    "DATASETS",
    "GUIDES",
    "LIKELIHOODS",
    "OBJECTIVES",
    "VAE",
    "AmortizedGuide",
    "FitResult",
    "LinearGaussian",
    "Recipe",
    "Splits",
    "build_guide",
    "build_model",
    "build_objective",
    "fit",
    "load_data",
    "load_recipe_file",
    "load_run",
    "train_recipe",
]


def _modules_after(code: str) -> set[str]:
    """The modules loaded by a fresh interpreter after running ``code``."""
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_every_0_1_name_is_still_exported():
    for name in NAMES_0_1:
        assert name in ppl_vae.__all__
        assert getattr(ppl_vae, name) is not None
    assert set(ppl_vae.__all__) <= set(dir(ppl_vae))
    assert not hasattr(ppl_vae, "keep_freed_memory")


# module paths of 0.1 and of the days before the core package; dropped at 0.x (CHANGELOG.md)
OLD_PATHS = [
    "train",
    "config",
    "traces",
    "errors",
    "registry",
    "options",
    "rng",
    "objectives.tracing",
]


@pytest.mark.parametrize("old", OLD_PATHS)
def test_old_module_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        __import__(f"ppl_vae.{old}", fromlist=["_"])


def test_import_and_help_do_not_load_the_library():
    heavy = {"torch", "pyro", "torchvision", "arviz", "matplotlib"}
    assert not heavy & _modules_after("import ppl_vae")
    assert not heavy & _modules_after("import ppl_vae.cli")
    help_text = subprocess.run(
        [sys.executable, "-m", "ppl_vae", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "evaluate" in help_text and "compare" in help_text


def test_layers_load_only_what_they_need():
    """Reading results and drawing plots does not load the trainer; data do not load
    torchvision until a dataset is read."""
    loaded = _modules_after("import ppl_vae.reports.plots, ppl_vae.reports.tables")
    assert "ppl_vae.training" not in loaded and "ppl_vae.runs.run" not in loaded
    assert not {"torchvision", "matplotlib", "arviz"} & loaded
    assert "torchvision" not in _modules_after("import ppl_vae.data")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from ppl_vae import load_recipe_file, train_recipe

    out = tmp_path_factory.mktemp("runs") / "lg"
    recipe = load_recipe_file(
        MODELS / "linear_gaussian.toml", ["train.epochs=1", "data.subset=200"]
    )
    train_recipe(recipe, out, progress=False)
    return out


def test_evaluate_run_is_the_library_behind_the_cli(run_dir, capsys):
    result = ppl_vae.evaluate_run(run_dir, [1, 10], subset=50, batch_size=25)
    assert json.loads((run_dir / "eval.json").read_text()) == result
    assert {r["estimator"] for r in result["estimates"]} == {"elbo", "iwae", "ess"}
    # the same through the CLI, with the same numbers; k-hat (not asked for) is skipped, said so
    assert (
        main(
            [
                "evaluate",
                str(run_dir),
                "--k",
                "1",
                "10",
                "--subset",
                "50",
                "--batch-size",
                "25",
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)["estimates"] == result["estimates"]
    assert "k-hat skipped" in err and "K >= 21" in err


def test_khat_asked_for_with_too_few_particles_is_refused(run_dir, capsys):
    code = main(["evaluate", str(run_dir), "--k", "1", "10", "--khat", "--no-progress"])
    assert code == 2
    assert "k-hat needs at least 21" in capsys.readouterr().err


def test_a_bug_is_not_printed_as_a_user_error(run_dir, monkeypatch):
    """Only ``UserError`` becomes a one-line message; any other exception keeps its traceback."""
    import ppl_vae.runs.evaluate as evaluate_module

    def buggy(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(evaluate_module, "evaluate_run", buggy)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["evaluate", str(run_dir), "--k", "1", "--no-progress"])
    assert not issubclass(ValueError, UserError)


def test_user_errors_keep_their_builtin_bases():
    from ppl_vae.core import errors

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert issubclass(errors.RecipeError, ValueError)
        assert issubclass(errors.UnknownNameError, KeyError)
        assert issubclass(errors.MissingDataError, FileNotFoundError)
        assert issubclass(errors.RunDirError, FileExistsError)
        assert issubclass(errors.CheckpointError, RuntimeError)
        assert issubclass(errors.TrainingDiverged, FloatingPointError)
