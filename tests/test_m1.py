"""M1 (Kingma et al. 2014): a VAE on every image, then a scikit-learn classifier on the codes.

Second code path: the per-epoch figures equal scikit-learn fit by hand on the guide's closed-form
posterior means of the same labelled points, at a fixed seed, to the last digit (the same
classifier on the same numbers). Power: on data whose class the codes carry, M1 beats the same
classifier on pixels that hide it. Then the recipe end to end, and each bad input.
"""

from __future__ import annotations

import json

import pytest
import torch
from _smoke import MODELS, SMOKE
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ppl_vae as pv
from ppl_vae.analysis.code_classifier import CLASSIFIERS, CodeAccuracy, build_classifier, codes
from ppl_vae.cli import main
from ppl_vae.core.errors import InputError, RecipeError, UnknownNameError
from ppl_vae.data import Splits
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import check_recipe

RECIPE = str(MODELS / "mnist_m1.toml")


def _data(n=120, d=12, seed=0):
    """Two classes that differ in the mean of every pixel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.bernoulli(0.3 + 0.4 * y[:, None].float().expand(n, d), generator=g)
    return x, y


def test_the_hook_is_scikit_learn_on_the_guides_means():
    torch.manual_seed(0)
    guide = pv.build_guide("diagonal", 12, 3, hidden=[8])
    model = pv.build_model(12, 3, hidden=[8])
    x, y = _data()
    lab = torch.arange(0, 120, 5)  # 24 labelled points, both classes
    hook = CodeAccuracy("logistic", {}, x[lab], y[lab])
    data = Splits(x, x[:40], x[40:], labels={"test": y[40:], "valid": y[:40]})
    row = hook(model, guide, data)
    with torch.no_grad():
        z = guide.distribution(x).mean.double().numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    clf.fit(z[lab], y[lab].numpy())
    want = float((torch.as_tensor(clf.predict(z[40:])) == y[40:]).double().mean())
    assert row["test_accuracy"] == want
    pixels = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    pixels.fit(x[lab].double().numpy(), y[lab].numpy())
    got = float(
        (torch.as_tensor(pixels.predict(x[40:].double().numpy())) == y[40:]).double().mean()
    )
    assert row["test_accuracy_pixels"] == got
    assert set(row) == {"valid_accuracy", "test_accuracy", "test_accuracy_pixels"}


class _ClassCode(torch.nn.Module):
    """A guide stand-in whose mean code is the class hidden in the pixels' parity."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        import pyro
        import pyro.distributions as dist

        with pyro.plate("data", x.shape[0]):
            loc = (x.sum(-1, keepdim=True) % 2) * 4.0 - 2.0
            return pyro.sample("z", dist.Normal(loc, 0.1).to_event(1))


def test_codes_that_carry_the_class_beat_pixels_that_hide_it():
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((400, 10), 0.5), generator=g)
    y = (x.sum(-1) % 2).long()  # parity: no linear classifier on 20 pixels finds it
    hook = CodeAccuracy("logistic", {}, x[:20], y[:20])
    row = hook(None, _ClassCode(), Splits(x, x[:0], x[200:], labels={"test": y[200:]}))
    assert row["test_accuracy"] == 1.0 and row["test_accuracy_pixels"] < 0.7
    assert codes(_ClassCode(), x[:5]).shape == (5, 1)


class _Identity(torch.nn.Module):
    """A guide stand-in whose code is x itself."""

    def forward(self, x):
        import pyro
        import pyro.distributions as dist

        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.Normal(x, 1e-3).to_event(1))


def test_label_spreading_reads_the_unlabelled_codes():
    """Two rings, one labelled point on each: no line through two points separates them, and
    spreading the labels along the rings of unlabelled codes does."""
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(600, generator=g) * 2 * torch.pi
    y = torch.arange(600) % 2
    radius = 1.0 + 2.0 * y + 0.05 * torch.randn(600, generator=g)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], 1)
    lab = torch.tensor([0, 1])
    test = Splits(x, x[:0], x[300:], labels={"test": y[300:]})
    alone = CodeAccuracy("logistic", {}, x[lab], y[lab])(None, _Identity(), test)
    far = {"alpha": 0.99}  # little clamping: the labels travel along the whole ring
    spread = CodeAccuracy("label_spreading", far, x[lab], y[lab], x[2:300])(None, _Identity(), test)
    assert alone["test_accuracy"] < 0.8 and spread["test_accuracy"] > 0.99


def test_the_recipe_trains_end_to_end(tmp_path):
    run = tmp_path / "m1"
    args = ["train", RECIPE, "--out", str(run), *SMOKE, "--set", "data.labels=20"]
    assert main([*args, "--set", "model.options.classifier=knn"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1 and 0 <= summary["test_accuracy_pixels"] <= 1
    assert "test_accuracy" in (run / "metrics.csv").read_text().splitlines()[0]
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), "--k", "1", "3", "--subset", "5", "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "4", "--subset", "5", "--out", str(out)]) == 0


def _recipe(**model_options):
    table = {"name": "r", "data": {"name": "mnist", "labels": 100}}
    table["model"] = {"name": "m1", "options": model_options}
    return config.from_dict(table)


@pytest.mark.parametrize("labels", [0, -10, "some"])
def test_labels_must_be_positive(labels):
    table = {"name": "r", "data": {"name": "mnist", "labels": labels}, "model": {"name": "m1"}}
    r = config.from_dict(table)
    with pytest.raises(RecipeError, match=r"data\.labels.*positive multiple"):
        check_recipe(r)


def test_more_labels_than_the_split_holds(tmp_path, capsys):
    args = ["train", RECIPE, "--out", str(tmp_path / "r"), *SMOKE, "--set", "data.labels=1000"]
    assert main(args) == 2  # 200 training images hold about 20 of each class
    assert "ask for at most" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_unknown_classifier_and_bad_keywords():
    with pytest.raises(RecipeError, match=r"unknown classifier 'forest'.*knn, label_spreading"):
        check_recipe(_recipe(classifier="forest"))
    with pytest.raises(RecipeError, match=r"classifier_options.*'svm'.*bogus"):
        check_recipe(_recipe(classifier="svm", classifier_options={"bogus": 1}))
    with pytest.raises(UnknownNameError, match="'logistc'.*'logistic'"):
        build_classifier("logistc")
    with pytest.raises(InputError, match="needs labelled points"):
        CodeAccuracy("logistic", {}, torch.zeros(0, 3), torch.zeros(0))
    assert set(CLASSIFIERS) == {"logistic", "svm", "knn", "label_spreading"}
    check_recipe(_recipe(classifier="knn", classifier_options={"n_neighbors": 5}))


def test_the_measurement_script_tabulates_every_cell(tmp_path, data_root, monkeypatch, capsys):
    import importlib.util
    import sys

    bench_dir = MODELS.parent / "benchmarks"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("m1_mnist", bench_dir / "m1_mnist.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "m1_mnist", bench)
    spec.loader.exec_module(bench)
    args = ["--epochs", "1", "--subset", "300", "--labels", "20", "--draws", "2"]
    args += [
        "--classifiers",
        "logistic",
        "knn",
        "--out",
        str(tmp_path),
        "--data-dir",
        str(data_root),
    ]
    assert bench.main(args) == 0
    doc = json.loads((tmp_path / "m1_table.json").read_text())
    assert len(doc["rows"]) == 4 and {r["draw"] for r in doc["rows"]} == {0, 1}
    assert all(0 <= r["test_accuracy"] <= 1 for r in doc["rows"])
    assert "| 20 | knn |" in capsys.readouterr().out


# --- M1 + M2: M2 on a trained M1's codes -----------------------------------------------------

M1M2 = str(MODELS / "mnist_m1m2.toml")


def test_m1m2_learns_on_the_m1_runs_codes(tmp_path):
    from ppl_vae import load_run
    from ppl_vae.runs.kinds.m1m2 import encode_splits

    m1 = tmp_path / "m1"
    assert main(["train", RECIPE, "--out", str(m1), *SMOKE, "--set", "data.labels=20"]) == 0
    run = tmp_path / "m1m2"
    sets = ["--set", f'model.options.m1_run="{m1}"', "--set", "data.labels=20"]
    assert main(["train", M1M2, "--out", str(run), *SMOKE, *sets]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1
    # every split is the M1 guide's posterior means of the images it scores
    trained, coded = load_run(m1), load_run(run).data
    with torch.no_grad():
        want = trained.guide.distribution(trained.data.test).mean
    torch.testing.assert_close(coded.test, want, rtol=1e-6, atol=1e-6)
    assert coded.train.shape[1] == 50 and coded.image_shape is None
    again = encode_splits(m1, trained.data)  # the M1 run's own images: the same splits
    torch.testing.assert_close(again.valid, coded.valid, rtol=0, atol=0)


def test_m1m2_needs_a_trained_m1_and_a_gaussian_likelihood(tmp_path):
    table = {"name": "r", "data": {"name": "mnist", "labels": 100}}
    table["objective"] = {"name": "semi_supervised"}
    table["model"] = {"name": "m1m2", "likelihood": "gaussian"}
    table["model"]["options"] = {"m1_run": str(tmp_path / "none")}
    with pytest.raises(RecipeError, match=r"m1_run.*no checkpoint\.pt there; train one first"):
        check_recipe(config.from_dict(table))
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "checkpoint.pt").write_bytes(b"")
    table["model"]["likelihood"] = "bernoulli"
    with pytest.raises(RecipeError, match="model.likelihood = 'gaussian'"):
        check_recipe(config.from_dict(table))
