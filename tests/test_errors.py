"""Bad input gets an error that names the problem and the fix, never a traceback from Pyro.

One test per error of the reliability issue; the last test repeats the data checks under
``python -O``, where Pyro's own validation is off.
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ppl_vae import build_guide, build_model, build_objective, fit, load_data
from ppl_vae.cli import main
from ppl_vae.core.registry import UnknownNameError
from ppl_vae.data import MissingDataError, Splits
from ppl_vae.model.checks import DataError
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import check_recipe
from ppl_vae.runs.recipe import RecipeError
from ppl_vae.runs.run import RunDirError, prepare_run_dir, train_recipe

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


def _fit(x, likelihood="gaussian", x_dim=4, **kw):
    model = build_model(x_dim, 2, likelihood=likelihood, hidden=[])
    guide = build_guide("diagonal", x_dim, 2, hidden=[])
    return fit(model, guide, x, **{"epochs": 1, "batch_size": 8, "progress": False, **kw})


def test_bernoulli_with_grayscale_data_suggests_binarizing():
    x = torch.rand(16, 4)
    with pytest.raises(
        DataError,
        match=r"bernoulli likelihood needs binary data.*data\.binarize "
        r"= 'dynamic' or 'static'.*continuous_bernoulli",
    ):
        _fit(x, "bernoulli")


@pytest.mark.parametrize(
    "bad,count", [(float("nan"), "1 NaN and 0 Inf"), (float("inf"), "0 NaN and 1 Inf")]
)
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_nan_or_inf_in_any_split(bad, count, split):
    parts = {s: torch.zeros(8, 4) for s in ("train", "valid", "test")}
    parts[split][3, 1] = bad
    with pytest.raises(DataError, match=rf"data hold {count} values; clean or drop"):
        _fit(Splits(**parts))


def test_data_shape_that_does_not_match_the_model():
    with pytest.raises(DataError, match=r"shape \[N, 4\].*got \[8, 5\]; flatten images"):
        _fit(torch.zeros(8, 5))
    with pytest.raises(DataError, match=r"shape \[N, 4\].*got \[8, 2, 2\]"):
        _fit(torch.zeros(8, 2, 2))


def test_empty_dataset_or_split():
    with pytest.raises(DataError, match=r"training data are empty.*data\.subset"):
        _fit(torch.zeros(0, 4))
    with pytest.raises(DataError, match=r"test split of 'linear_gaussian' is empty"):
        load_data("linear_gaussian", n_train=10, valid_size=5, n_test=0, x_dim=4)


@pytest.mark.parametrize(
    "key,bad,closest,valid",
    [
        ("guide.name", "diagnal", "diagonal", "diagonal"),
        ("objective.name", "elbow", "elbo", "elbo"),
        (
            "model.likelihood",
            "bernouli",
            "bernoulli",
            "bernoulli, continuous_bernoulli, discretized_logistic, discretized_logistic_mixture, "
            "gaussian",
        ),
        ("data.name", "fashion-mnist", "fashion_mnist", "binarized_mnist, fashion_mnist"),
    ],
)
def test_unknown_name_lists_the_valid_ones_and_the_closest(key, bad, closest, valid):
    what = {
        "guide.name": "guide",
        "objective.name": "objective",
        "model.likelihood": "likelihood",
        "data.name": "dataset",
    }[key]
    recipe = config.load(MODELS / "linear_gaussian.toml", [f"{key}={bad}"])
    with pytest.raises(
        UnknownNameError,
        match=rf"unknown {what} '{bad}'\. Did you mean "
        rf"'{closest}'\? Valid names: .*{valid}",
    ):
        check_recipe(recipe)


def test_unknown_names_in_the_builders():
    with pytest.raises(UnknownNameError, match="Did you mean 'elbo'"):
        build_objective("ebo")
    with pytest.raises(UnknownNameError, match="Did you mean 'gaussian'"):
        build_model(4, 2, likelihood="gausian")


def test_unknown_name_through_the_cli_fails_fast_with_exit_2(tmp_path, capsys):
    code = main(
        [
            "train",
            str(MODELS / "mnist_bernoulli_mlp.toml"),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "guide.name=diagnl",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 2  # refused before looking for data (there is none in tmp_path)
    assert "Did you mean 'diagonal'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "toml,message",
    [
        (
            '[train]\nepochs = "ten"\n',
            r"r\.toml: key 'train\.epochs' must be of type int, got 'ten'",
        ),
        (
            "[train]\nepoch = 3\n",
            r"r\.toml: unknown key 'train\.epoch'\. Did you mean 'train\.epochs'",
        ),
        (
            '[model]\ndecoder = { hidden = ["a"] }\n',
            r"r\.toml: key 'model\.decoder\.hidden\[0\]' must be of type int",
        ),
        (
            '[guide]\noptions = { min_scale = "small" }\n',
            r"r\.toml: key 'guide\.options\.min_scale' must be of type float, got 'small'",
        ),
        (
            "[guide]\noptions = { hidden = [3] }\n",
            r"r\.toml: key 'guide\.options\.hidden' cannot be set here: it comes from "
            r"guide\.encoder\.hidden",
        ),
        (
            '[model]\nlikelihood = "gaussian"\nlikelihood_options = { learn_scale = 1 }\n',
            r"r\.toml: key 'model\.likelihood_options\.learn_scale' must be of type str",
        ),
        (
            '[data]\nname = "linear_gaussian"\noptions = { x_dim = 2.5 }\n',
            r"r\.toml: key 'data\.options\.x_dim' must be of type int, got 2\.5",
        ),
        (
            '[model]\nlikelihood = "gaussian"\nlikelihood_options = { scal = 0.5 }\n',
            r"r\.toml: unknown key 'model\.likelihood_options\.scal'\. Did you mean "
            r"'model\.likelihood_options\.scale'",
        ),
        (
            '[data]\nname = "linear_gaussian"\noptions = { n_trian = 10 }\n',
            r"r\.toml: unknown key 'data\.options\.n_trian'\. "
            r"Did you mean 'data\.options\.n_train'",
        ),
    ],
)
def test_wrong_recipe_key_or_type_names_the_key_and_the_file(tmp_path, toml, message):
    path = tmp_path / "r.toml"
    path.write_text(toml)
    with pytest.raises(RecipeError, match=message):
        check_recipe(config.load(path), str(path))


def test_option_of_another_likelihood_says_it_does_not_apply():
    # The key is plainly in the file: the message must not call it unknown.
    recipe = config.load(MODELS / "fashion_gaussian_conv.toml", ["model.likelihood=bernoulli"])
    with pytest.raises(
        RecipeError,
        match=r"fashion_gaussian_conv\.toml: key 'model\.likelihood_options\.scale' does not "
        r"apply to likelihood 'bernoulli' \(it takes no options\); remove it or choose "
        r"'gaussian'\.$",
    ):
        check_recipe(recipe, str(MODELS / "fashion_gaussian_conv.toml"))
    with pytest.raises(ValueError, match=r"does not apply to likelihood 'bernoulli'"):
        build_model(4, 2, likelihood="bernoulli", likelihood_options={"scale": 0.5})


@pytest.mark.parametrize(
    "override,message",
    [
        ("guide.options.num_flow=3", r"unknown key 'guide\.options\.num_flow'\. Did you mean "),
        ("guide.options.rank=3", r"'guide\.options\.rank' does not apply to guide 'iaf'"),
    ],
)
def test_recipe_check_and_builder_give_the_same_option_message(override, message):
    recipe = config.load(MODELS / "mnist_guide_iaf.toml", [override])
    with pytest.raises(RecipeError, match=message) as checked:
        check_recipe(recipe, "r.toml")
    with pytest.raises(ValueError, match=message) as built:
        g = recipe.guide
        build_guide(g.name, 4, 2, hidden=[], **g.options)
    assert str(checked.value) == f"r.toml: {built.value}"


def test_objective_options_of_the_wrappers_are_valid_for_every_objective():
    for name in ("elbo", "iwae", "renyi"):
        overrides = [f"objective.name={name}", "objective.options.kl_warmup_epochs=2"]
        check_recipe(config.load(MODELS / "linear_gaussian.toml", overrides))
    bad = config.load(MODELS / "linear_gaussian.toml", ["objective.options.kl_warmup=2"])
    with pytest.raises(RecipeError, match=r"Did you mean 'objective\.options\.kl_warmup_epochs'"):
        check_recipe(bad)


def test_wrong_option_type_through_the_cli_names_the_file(tmp_path, capsys):
    recipe = MODELS / "linear_gaussian.toml"
    code = main(
        ["train", str(recipe), "--out", str(tmp_path / "r"), "--set", "data.options.n_train=many"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "linear_gaussian.toml: key 'data.options.n_train' must be of type int" in err


def test_bad_train_values_name_the_key():
    with pytest.raises(ValueError, match=r"train\.epochs must be at least 1, got 0"):
        _fit(torch.zeros(8, 4), epochs=0)
    with pytest.raises(ValueError, match=r"train\.checkpoint_every must be at least 1"):
        _fit(torch.zeros(8, 4), checkpoint_every=0)


def test_missing_data_root_says_which_files_go_where(tmp_path):
    with pytest.raises(
        MissingDataError,
        match=rf"MNIST files are missing: put "
        rf"train-images-idx3-ubyte\.gz, .* in {tmp_path}/MNIST/raw/.*--data-dir",
    ):
        load_data("mnist", tmp_path)
    with pytest.raises(
        MissingDataError,
        match=rf"binarized_mnist\.npz in "
        rf"{tmp_path}/binarized_mnist/",
    ):
        load_data("binarized_mnist", tmp_path)
    recipe = config.load(MODELS / "mnist_bernoulli_mlp.toml")
    with pytest.raises(MissingDataError, match="PPL_VAE_DATA"):
        train_recipe(recipe, tmp_path / "run", data_dir=tmp_path, progress=False)


def test_existing_run_dir_is_refused_without_resume_or_overwrite(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.csv").write_text("epoch\n")
    with pytest.raises(
        RunDirError,
        match=r"exists already; pass --resume to continue it, "
        r"--overwrite to replace it",
    ):
        prepare_run_dir(tmp_path / "run")
    with pytest.raises(RunDirError, match=r"cannot resume: .* has no checkpoint\.pt"):
        prepare_run_dir(tmp_path / "run", resume=True)
    prepare_run_dir(tmp_path / "run", overwrite=True)
    assert list((tmp_path / "run").iterdir()) == []


# Under -O, ``assert`` statements vanish and Pyro's validation is off (it defaults to
# __debug__); the checks must still fire.
OPTIMIZED = textwrap.dedent("""
    import json, pyro, torch
    from pyro.infer.util import is_validation_enabled
    from ppl_vae import build_guide, build_model, fit
    from ppl_vae.runs import recipe as config
    from ppl_vae.runs.build import check_recipe

    def attempt(f):
        try:
            f()
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return "no error"

    def train(x, likelihood="bernoulli"):
        model = build_model(4, 2, likelihood=likelihood, hidden=[])
        fit(model, build_guide("diagonal", 4, 2, hidden=[]), x, epochs=1, progress=False)

    nan = torch.zeros(8, 4)
    nan[0, 0] = float("nan")
    out = {
        "debug": __debug__,
        "validation": is_validation_enabled(),
        "grayscale": attempt(lambda: train(torch.rand(8, 4))),
        "nan": attempt(lambda: train(nan, "gaussian")),
        "shape": attempt(lambda: train(torch.zeros(8, 3))),
        "empty": attempt(lambda: train(torch.zeros(0, 4))),
        "name": attempt(lambda: check_recipe(config.from_dict({"guide": {"name": "diag"}}))),
        "type": attempt(lambda: config.from_dict({"train": {"epochs": "ten"}})),
    }
    print(json.dumps(out))
""")


def test_checks_work_under_python_dash_o():
    done = subprocess.run(
        [sys.executable, "-O", "-c", OPTIMIZED],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("debug") is False and out.pop("validation") is False
    patterns = {
        "grayscale": r"^DataError: the bernoulli likelihood needs binary data",
        "nan": r"^DataError: data hold 1 NaN and 0 Inf values",
        "shape": r"^DataError: data must have shape \[N, 4\]",
        "empty": r"^DataError: the training data are empty",
        "name": r"^UnknownNameError: unknown guide 'diag'\. Did you mean 'diagonal'\?",
        "type": r"^RecipeError: <dict>: key 'train\.epochs' must be of type int",
    }
    assert set(out) == set(patterns)
    for key, pattern in patterns.items():
        assert re.search(pattern, out[key]), (key, out[key])
