import os
import subprocess
import sys

import pytest
import torch

from ppl_vae.core.registry import UnknownNameError
from ppl_vae.data import MissingDataError, load_data
from ppl_vae.data.root import data_root as find_root  # not the data_root fixture
from ppl_vae.model.checks import DataError


def _listing(root):
    return sorted(
        (p, os.path.getsize(os.path.join(p, f))) for p, _, fs in os.walk(root) for f in fs
    )


def test_mnist_through_torchvision_without_writing_to_root(data_root):
    before = _listing(data_root)
    s = load_data("mnist", data_root, valid_size=10000)
    assert _listing(data_root) == before
    assert s.train.shape == (50000, 784) and s.valid.shape == (10000, 784)
    assert s.test.shape == (10000, 784) and s.image_shape == (1, 28, 28)
    assert s.labels["train"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(s.labels["test"]).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert 0 <= s.train.min() and s.train.max() == 1


def test_fashion_mnist(data_root):
    s = load_data("fashion_mnist", data_root, valid_size=0)
    assert s.train.shape == (60000, 784) and len(s.valid) == 0
    assert torch.bincount(s.labels["test"]).tolist() == [1000] * 10


def test_larochelle_binarized_mnist(data_root):
    s = load_data("binarized_mnist", data_root)
    assert [len(s.train), len(s.valid), len(s.test)] == [50000, 10000, 10000]
    assert s.binarize == "static"
    assert set(s.test.unique().tolist()) == {0.0, 1.0}
    assert s.test.mean().item() == pytest.approx(0.13251, abs=5e-6)


def test_larochelle_refuses_another_valid_size(tmp_path):
    # Its validation split is fixed by the file: another size is refused, not ignored, and
    # before any file is read.
    with pytest.raises(DataError, match=r"fixed validation split of 10000.*got 5000"):
        load_data("binarized_mnist", tmp_path, valid_size=5000)


def test_larochelle_takes_its_own_valid_size(data_root):
    s = load_data("binarized_mnist", data_root, valid_size=10000, subset=10)
    assert len(s.valid) == 10


def test_dynamic_binarization_resamples_train_but_fixes_test(data_root):
    a = load_data("mnist", data_root, binarize="dynamic", subset=500)
    b = load_data("mnist", data_root, binarize="dynamic", subset=500)
    assert torch.equal(a.test, b.test) and set(a.test.unique().tolist()) == {0.0, 1.0}
    g = torch.Generator().manual_seed(0)
    e1, e2 = a.train_epoch(g), a.train_epoch(g)
    assert set(e1.unique().tolist()) == {0.0, 1.0} and not torch.equal(e1, e2)
    # A Bernoulli(gray) sample has the gray image as its mean.
    assert (e1.mean() - a.train.mean()).abs() < 4 * (a.train.numel() ** -0.5)
    # the fixed bits keep the gray values they were drawn from; gray 0 / 1 give bits 0 / 1
    gray = load_data("mnist", data_root, subset=500).test
    assert set(a.gray) == {"valid", "test"} and torch.equal(a.gray["test"], gray)
    assert bool((a.test[gray == 0] == 0).all()) and bool((a.test[gray == 1] == 1).all())


def test_static_binarization_is_fixed(data_root):
    s = load_data("mnist", data_root, binarize="static", subset=200)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(s.train_epoch(g), s.train_epoch(g))
    assert set(s.train.unique().tolist()) == {0.0, 1.0}


def test_missing_root_names_the_files(tmp_path):
    with pytest.raises(MissingDataError, match=r"train-images-idx3-ubyte\.gz.*MNIST/raw"):
        load_data("mnist", tmp_path)
    with pytest.raises(MissingDataError, match="binarized_mnist.npz"):
        load_data("binarized_mnist", tmp_path)


def test_env_var_sets_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_VAE_DATA", str(tmp_path))
    with pytest.raises(MissingDataError, match=str(tmp_path)):
        load_data("fashion_mnist")


def test_unknown_dataset_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'mnist'"):
        load_data("mnsit")


def test_linear_gaussian_dataset_has_truth():
    s = load_data("linear_gaussian", n_train=100, valid_size=10, n_test=20, x_dim=5)
    assert s.train.shape == (100, 5) and s.test.shape == (20, 5)
    assert s.truth.W.shape == (5, 2)


def test_relative_env_root_stays_the_same_folder_after_a_chdir(tmp_path, monkeypatch):
    (tmp_path / "here" / "rel").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setenv("PPL_VAE_DATA", "rel")
    first = find_root()
    assert first == tmp_path / "here" / "rel"
    # Written back absolute, so that a chdir and child processes see the same folder.
    assert os.environ["PPL_VAE_DATA"] == str(first)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert find_root() == first
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['PPL_VAE_DATA'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == str(first)


def test_relative_env_root_falls_back_to_the_shell_folder(tmp_path, monkeypatch):
    # A Jupyter kernel runs in notebooks/ but inherits the variable, and $PWD, from the shell.
    (tmp_path / "repo" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "notebooks").mkdir()
    monkeypatch.setenv("PWD", str(tmp_path / "repo"))
    monkeypatch.chdir(tmp_path / "repo" / "notebooks")
    monkeypatch.setenv("PPL_VAE_DATA", "data")
    assert find_root() == tmp_path / "repo" / "data"
    # A folder of that name where the process runs wins, as for any relative path.
    (tmp_path / "repo" / "notebooks" / "data").mkdir()
    monkeypatch.setenv("PPL_VAE_DATA", "data")
    assert find_root() == tmp_path / "repo" / "notebooks" / "data"
    # Neither there: the working directory, so that the error names the folder looked in.
    monkeypatch.setenv("PPL_VAE_DATA", "missing")
    assert find_root() == tmp_path / "repo" / "notebooks" / "missing"
