"""Label fidelity: the share of conditional samples a reference classifier reads as the asked
class. Exact on a stub classifier; the reference net learns a task it can solve; ``ppl-vae
sample --label`` reports it, or says why not."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _smoke import MODELS, SMOKE

from ppl_vae.analysis.fidelity import (
    ReferenceNet,
    label_fidelity,
    predict,
    save_reference,
    train_reference,
)
from ppl_vae.cli import main
from ppl_vae.core.errors import InputError


class _Stub(torch.nn.Module):
    """Reads the class off the first pixel: round(9 x pixel 0)."""

    def forward(self, x):
        return torch.nn.functional.one_hot((x[:, 0] * 9).round().long(), 10).float()


def test_fidelity_is_the_share_read_as_the_class():
    x = torch.zeros(40, 784)
    x[:30, 0] = 3 / 9  # 30 of 40 read as 3, 10 as 0
    f = label_fidelity(_Stub(), x, 3)
    assert f["fidelity"] == 0.75 and f["n"] == 40
    assert f["stderr"] == pytest.approx(math.sqrt(0.75 * 0.25 / 40))
    assert f["counts"][3] == 30 and f["counts"][0] == 10 and sum(f["counts"]) == 40
    with pytest.raises(InputError, match="rows of 784 pixels"):
        predict(_Stub(), torch.zeros(3, 50))


def test_the_reference_learns_a_task_it_can_solve():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    x = torch.rand(400, 784, generator=g) * 0.2
    x[y == 1, :392] += 0.7  # class 1: a bright top half
    net, accuracy = train_reference(x[:300], y[:300], x[300:], y[300:], epochs=2, batch_size=50)
    assert accuracy == 1.0
    assert isinstance(net, ReferenceNet)


def test_sample_label_reports_fidelity(tmp_path, capsys):
    run = tmp_path / "cond"
    assert main(["train", str(MODELS / "mnist_conditional.toml"), "--out", str(run), *SMOKE]) == 0
    capsys.readouterr()
    args = ["sample", str(run), "--label", "3", "--n", "4", "--subset", "10"]
    assert main([*args, "--reference", str(tmp_path / "none.pt")]) == 0
    assert "label fidelity skipped: no reference classifier" in capsys.readouterr().err
    ref = tmp_path / "ref.pt"
    save_reference(ref, ReferenceNet(), 0.5)
    assert main([*args, "--reference", str(ref)]) == 0
    captured = capsys.readouterr()
    assert "of 1000 samples of class 3 read as 3" in captured.err
    paths = json.loads(captured.out.strip().splitlines()[-1])
    doc = json.loads(open(paths["label_fidelity"]).read())
    assert doc["n"] == 1000 and 0 <= doc["fidelity"] <= 1 and doc["reference_test_accuracy"] == 0.5
