"""``train.threads``, ``fit(threads=)`` and every command's ``--threads``: torch runs that many
intra-op threads for the job, the count comes back after, and the results record it."""

from __future__ import annotations

import json

import pytest
import torch
from _smoke import MODELS, SMOKE

import ppl_vae as pv
from ppl_vae.cli import main
from ppl_vae.core.errors import InputError
from ppl_vae.core.threads import using_threads
from ppl_vae.data import Splits
from ppl_vae.runs.recipe import load_recipe


def test_fit_trains_in_its_threads_and_gives_them_back():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    seen = []
    model, guide = pv.build_model(12, 2, hidden=[8]), pv.build_guide("diagonal", 12, 2, hidden=[8])
    x = torch.bernoulli(torch.full((40, 12), 0.3))
    data = Splits(x[:20], x[20:30], x[30:])
    hook = lambda m, g, d: seen.append(torch.get_num_threads()) or {}  # noqa: E731
    pv.fit(
        model,
        guide,
        data,
        epochs=2,
        batch_size=10,
        progress=False,
        threads=want,
        epoch_metrics=hook,
    )
    assert seen == [want, want] and torch.get_num_threads() == before


def test_bad_thread_counts_are_refused():
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(InputError, match="threads must be a whole number"):
            with using_threads(bad):
                pass


def test_the_commands_take_threads_and_record_them(tmp_path, capsys):
    run = tmp_path / "run"
    recipe = str(MODELS / "mnist_bernoulli_mlp.toml")
    assert main(["train", recipe, "--out", str(run), *SMOKE, "--threads", "1"]) == 0
    assert load_recipe(run).train.threads == 1
    assert json.loads((run / "summary.json").read_text())["provenance"]["threads"] == 1
    ev = ["evaluate", str(run), "--k", "1", "2", "--subset", "4", "--no-progress"]
    assert main([*ev, "--threads", "1"]) == 0
    assert json.loads((run / "eval.json").read_text())["provenance"]["threads"] == 1
    capsys.readouterr()
    assert main([*ev, "--threads", "-2"]) == 2
    assert "threads must be a whole number" in capsys.readouterr().err
