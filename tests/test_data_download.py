"""The binarized MNIST download route, offline: ``larochelle.fetch`` serves local files.

The original ``.amat`` files are written back from the packed ``.npz`` of the data root; that
they hash to the published SHA-256 checks the format and the checksums at the same time.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from ppl_vae.core.errors import DataError
from ppl_vae.data import MissingDataError, larochelle, load_data


def amat_bytes(bits: np.ndarray) -> bytes:
    """The ``.amat`` text of a 0/1 matrix ``[N, 784]``: values separated by spaces, a newline
    after each row."""
    out = np.full((*bits.shape, 2), ord(" "), dtype=np.uint8)
    out[..., 0] = bits + ord("0")
    out[:, -1, 1] = ord("\n")
    return out.tobytes()


def serve(monkeypatch, folder: Path) -> list[str]:
    """Makes ``fetch`` copy ``folder/<file name>``; returns the list of URLs asked for."""
    asked = []

    def fetch(url: str, dest: Path) -> None:
        asked.append(url)
        dest.write_bytes((folder / url.rpartition("/")[2]).read_bytes())

    monkeypatch.setattr(larochelle, "fetch", fetch)
    return asked


def leftovers(root: Path) -> list[str]:
    folder = root / "binarized_mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> Path:
    """The three original ``.amat`` files, written from the data root's ``.npz``."""
    npz = Path(os.environ["PPL_VAE_DATA"]) / larochelle.FILE
    if not npz.is_file():
        pytest.skip(f"{npz} not found; set PPL_VAE_DATA")
    folder = tmp_path_factory.mktemp("server")
    with np.load(npz) as z:
        for split, (name, rows, _) in larochelle.AMAT.items():
            bits = np.unpackbits(z[split], axis=1, count=larochelle.FEATURES)
            assert bits.shape == (rows, larochelle.FEATURES)
            (folder / name).write_bytes(amat_bytes(bits))
    return folder


def test_written_back_originals_match_the_published_checksums(originals):
    for name, rows, expected in larochelle.AMAT.values():
        assert (originals / name).stat().st_size == rows * larochelle.ROW_BYTES
        assert larochelle.sha256(originals / name) == expected


def test_download_builds_the_npz_the_loader_reads(originals, data_root, tmp_path, monkeypatch):
    asked = serve(monkeypatch, originals)
    s = load_data("binarized_mnist", tmp_path, download=True)
    assert asked == [larochelle.SOURCE + name for name, _, _ in larochelle.AMAT.values()]
    assert leftovers(tmp_path) == ["binarized_mnist.npz"]  # the text files are gone
    reference = load_data("binarized_mnist", data_root)
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(s, split), getattr(reference, split))
    with np.load(tmp_path / larochelle.FILE) as z:
        assert int(z["num_features"]) == 784 and z["train"].dtype == np.uint8
    # Once it is there, nothing is fetched again.
    asked.clear()
    load_data("binarized_mnist", tmp_path, download=True, subset=5)
    assert asked == []


def test_a_file_that_fails_its_checksum_is_refused(originals, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    for name, _, _ in larochelle.AMAT.values():
        (served / name).write_bytes((originals / name).read_bytes())
    test_file = served / "binarized_mnist_test.amat"
    data = bytearray(test_file.read_bytes())
    data[0] ^= 1  # one pixel flipped: "0" <-> "1", still well formed
    test_file.write_bytes(bytes(data))
    serve(monkeypatch, served)
    root = tmp_path / "root"
    with pytest.raises(
        DataError,
        match=r"binarized_mnist_test\.amat downloaded from http://www\.cs\.toronto\.edu/.* "
        r"could not be verified: its SHA-256 is [0-9a-f]{64}, not the published e6687bfe",
    ):
        load_data("binarized_mnist", root, download=True)
    assert leftovers(root) == []  # neither an npz nor the temporary download folder


def test_a_corrupt_first_file_is_refused_before_the_others_are_fetched(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    bits = np.random.default_rng(0).integers(0, 2, (3, 784), dtype=np.uint8)
    for name, _, _ in larochelle.AMAT.values():
        (served / name).write_bytes(amat_bytes(bits))
    asked = serve(monkeypatch, served)
    with pytest.raises(DataError, match=r"binarized_mnist_train\.amat .*could not be verified"):
        load_data("binarized_mnist", tmp_path / "root", download=True)
    assert len(asked) == 1 and leftovers(tmp_path / "root") == []


def test_a_failed_download_says_so_and_writes_nothing(tmp_path, monkeypatch):
    def fetch(url: str, dest: Path) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(larochelle, "fetch", fetch)
    with pytest.raises(
        DataError, match=r"could not download http://.*binarized_mnist_train\.amat.*Name or"
    ):
        load_data("binarized_mnist", tmp_path, download=True)
    assert leftovers(tmp_path) == []


def test_offline_the_error_names_the_files_the_folder_and_the_option(tmp_path, monkeypatch):
    def fetch(url: str, dest: Path) -> None:
        raise AssertionError("nothing is downloaded unless asked")

    monkeypatch.setattr(larochelle, "fetch", fetch)
    with pytest.raises(MissingDataError) as e:
        load_data("binarized_mnist", tmp_path)
    message = str(e.value)
    assert f"binarized_mnist.npz in {tmp_path}/binarized_mnist/" in message
    assert "data.options.download = true" in message
    assert "--set data.options.download=true" in message
    for name, _, _ in larochelle.AMAT.values():
        assert name in message
    assert leftovers(tmp_path) == []


def test_a_malformed_amat_file_is_refused(tmp_path):
    good = amat_bytes(np.zeros((2, 784), dtype=np.uint8))
    (tmp_path / "short.amat").write_bytes(good[:-1])
    with pytest.raises(DataError, match="not the 3136 of 2 rows"):
        larochelle.read_amat(tmp_path / "short.amat", 2)
    (tmp_path / "bad.amat").write_bytes(good.replace(b"0 0", b"0,0", 1))
    with pytest.raises(DataError, match="is not 2 rows of 784 space-separated"):
        larochelle.read_amat(tmp_path / "bad.amat", 2)
    (tmp_path / "good.amat").write_bytes(good)
    assert larochelle.read_amat(tmp_path / "good.amat", 2).shape == (2, 784)
