"""What a run writes is byte for byte what it was before the model side was opened, and a run
dir written then still loads.

``golden/outputs_0.1.json`` holds the digests (``golden/digest.py``) that the code of commit
8e0c285, before the change, printed for the same commands; ``golden/old_run`` is the linear-
Gaussian run dir (recipe and checkpoint) it wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from digest import digest_run  # noqa: E402

EXPECTED = json.loads((GOLDEN / "outputs_0.1.json").read_text())


def _compare(name: str, out: Path) -> None:
    found, want = digest_run(name, out), EXPECTED[name]
    assert sorted(found) == sorted(want)  # the same files, arrays and checkpoint tensors
    assert [k for k in want if found[k] != want[k]] == []


def test_linear_gaussian_outputs_are_unchanged(tmp_path):
    _compare("linear_gaussian", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hierarchical", "m2"])
def test_mnist_outputs_are_unchanged(name, tmp_path, data_root):
    _compare(name, tmp_path)


def test_a_run_dir_written_before_the_change_loads(tmp_path):
    import shutil

    from ppl_vae import evaluate_run, load_run

    run_dir = tmp_path / "old"
    shutil.copytree(GOLDEN / "old_run", run_dir)
    run = load_run(run_dir)
    assert run.recipe.model.prior == "standard"  # an old recipe has no model.prior: the default
    assert run.model.decoder[0].weight.shape == (10, 2)
    # the bounds it gives now are the ones written then (same points, seed and K)
    old = json.loads((run_dir / "eval.json").read_text())["estimates"]
    new = evaluate_run(run_dir, [1, 5], subset=40, out=tmp_path / "again")["estimates"]
    want = {(e["estimator"], e["k"]): e["mean"] for e in old}
    got = {(e["estimator"], e["k"]): e["mean"] for e in new}
    assert got == want
