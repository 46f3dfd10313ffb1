"""``ppl-vae diagnose RUN``, the per-epoch latent log (``train.log_latent``), ``compare`` with
diagnostics, and the optional TensorBoard log, on a run trained in smoke mode."""

from __future__ import annotations

import csv
import json
import sys

import pytest
import torch
from _smoke import MODELS, SMOKE

from ppl_vae.cli import main
from ppl_vae.core.errors import InputError
from ppl_vae.training import fit

RECIPE = str(MODELS / "mnist_bernoulli_mlp.toml")


def test_diagnose_a_run_through_the_cli(tmp_path, data_root, capsys):
    run = tmp_path / "run"
    args = ["train", RECIPE, "--out", str(run), *SMOKE, "--set", "train.log_latent=true"]
    assert main([*args, "--set", "model.z_dim=4"]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert 0 <= float(rows[-1]["active_units"]) <= 4 and float(rows[-1]["kl"]) > 0
    assert rows[-1]["active_units"].isdigit()  # a count, written as one: 7, not 7.0
    assert main(["diagnose", str(run), "--subset", "100"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("active units ") and "k-means NMI" in out
    doc = json.loads((run / "diagnostics.json").read_text())
    assert doc["n"] == 100 and doc["units"] == 4 and doc["clusters"]["k"] == 10
    assert doc["sites"]["z"]["kl_method"] == "closed form"
    assert doc["kl"] == pytest.approx(doc["information"]["kl"], abs=5 * doc["information"]["kl_se"])
    for name in ("traversals", "clusters", "kl_units"):
        assert (run / "pictures" / f"{name}.png").is_file() or doc["active_units"] == 0
    assert main(["evaluate", str(run), "--k", "1", "5", "--subset", "20", "--no-progress"]) == 0
    assert main(["compare", str(run), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| active units | KL | MI |" in table.splitlines()[0] + " |"
    assert f"| {doc['active_units']} | {doc['kl']:.2f} | " in table


def _tiny():
    from ppl_vae.guides import build_guide
    from ppl_vae.model import build_model

    x = torch.bernoulli(torch.rand(40, 16, generator=torch.Generator().manual_seed(0)))
    return build_model(16, 2, hidden=[8]), build_guide("diagonal", 16, 2, hidden=[8]), x


def test_tensorboard_without_the_extra_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    model, guide, x = _tiny()
    with pytest.raises(InputError, match=r"pip install 'ppl_vae\[tensorboard\]'"):
        fit(model, guide, x, epochs=1, run_dir=tmp_path, tensorboard=True, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()  # refused before training


def test_tensorboard_log_is_written(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, guide, x = _tiny()
    fit(
        model, guide, x, epochs=2, batch_size=20, run_dir=tmp_path, tensorboard=True, progress=False
    )
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"metrics/train_elbo", "kl_per_unit_z/000", "kl_per_unit_z/001"} <= set(scalars)
    assert [e.step for e in events.Scalars("metrics/train_elbo")] == [1, 2]
    assert "kl_per_unit/z" in events.Tags()["histograms"]
