"""What a run writes is byte for byte what it was before the model side was opened, and a run
dir written then still loads.

``golden/outputs_0.1.json`` holds the digests (``golden/digest.py``) that the code of commit
8e0c285, before the change, printed for the same commands; ``golden/old_run`` is the linear-
Gaussian run dir (recipe and checkpoint) it wrote. Training's floating-point results differ
between CPU kernel families (the same code gives other bits on a machine with AVX-512 FP16 than on
the one the first file came from), so each ``golden/outputs_0.1*.json`` holds what that code
printed on one machine (``outputs_0.1_avx512.json``: a Xeon with AVX-512 FP16, from a worktree
of 8e0c285), and the outputs must equal one of them in full."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from digest import digest_run  # noqa: E402

EXPECTED = [json.loads(p.read_text()) for p in sorted(GOLDEN.glob("outputs_0.1*.json"))]


def _compare(name: str, out: Path) -> None:
    found = digest_run(name, out)
    # the recorded machine whose digests differ from these in the fewest entries
    want = min((e[name] for e in EXPECTED), key=lambda w: sum(found.get(k) != w[k] for k in w))
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
    assert sorted(got) == sorted(want)
    # bit for bit on the machine that wrote it; on another CPU kernel family the float32 sums
    # round differently: within 16 float32 ulps of the mean's size (measured: 1.6e-7 relative)
    rounding = 16 * torch.finfo(torch.float32).eps
    assert all(abs(got[k] - want[k]) <= rounding * abs(want[k]) for k in want)
