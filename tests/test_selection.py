"""Epoch selection on the validation split (``train.keep_best``, ``train.patience``).

The validation ELBO of each epoch is scripted (``estimate_elbo`` of the epoch hook is replaced)
so that which epoch is best is known in advance; the training itself is real, and ``best.pt``
must hold, bit for bit, the weights a run that stopped at that epoch ends with.
"""

from pathlib import Path

import pytest
import torch

from ppl_vae import build_guide, build_model, fit
from ppl_vae.core.errors import InputError, RunDirError
from ppl_vae.data import Splits
from ppl_vae.layout import BEST, CHECKPOINT
from ppl_vae.runs import recipe as config
from ppl_vae.runs.evaluate import evaluate_run
from ppl_vae.runs.run import train_recipe
from ppl_vae.storage import load_checkpoint
from ppl_vae.training import metrics
from ppl_vae.training.selection import best_epoch, stalled

REPO = Path(__file__).resolve().parents[1]
X_DIM, Z_DIM = 6, 2


def _data(valid: int = 10) -> Splits:
    gray = torch.rand(60, X_DIM, generator=torch.Generator().manual_seed(0))
    fixed = torch.bernoulli(gray[40:], generator=torch.Generator().manual_seed(1))
    return Splits(gray[:40], fixed[:valid], fixed[10:], binarize="dynamic")


def _train(run_dir, **kw):
    torch.manual_seed(0)
    model = build_model(X_DIM, Z_DIM, likelihood="bernoulli", hidden=[5])
    guide = build_guide("diagonal", X_DIM, Z_DIM, hidden=[5])
    kw = {"batch_size": 16, "lr": 0.01, "progress": False, **kw}
    return fit(model, guide, _data(), run_dir=run_dir, **kw)


@pytest.fixture
def scripted(monkeypatch):
    """Replaces the validation ELBO of each epoch by the given values, in order."""

    def script(values):
        left = list(values)
        monkeypatch.setattr(metrics, "estimate_elbo", lambda *a, **k: left.pop(0))

    return script


def test_best_epoch_is_the_first_highest_and_patience_counts_epochs_since():
    h = [{"valid_elbo": v} for v in (-3.0, -2.0, -2.5, -2.0)]
    assert best_epoch(h) == 2
    assert stalled(h, 2) and not stalled(h, 3) and not stalled(h, 0)
    assert best_epoch([{"train_elbo": -1.0}]) is None and not stalled([{}], 1)


def test_best_pt_holds_the_weights_of_a_run_stopped_at_the_best_epoch(tmp_path, scripted):
    scripted([-5.0, -3.0, -4.0, -4.0, -3.5])
    result = _train(tmp_path / "kept", epochs=5, keep_best=True)
    assert [r["valid_elbo"] for r in result.history] == [-5.0, -3.0, -4.0, -4.0, -3.5]
    best = load_checkpoint(tmp_path / "kept" / BEST)
    last = load_checkpoint(tmp_path / "kept" / CHECKPOINT)
    assert best["position"]["epoch"] == 2 and last["position"]["epoch"] == 5
    scripted([0.0, 0.0])
    _train(tmp_path / "two", epochs=2)
    two = load_checkpoint(tmp_path / "two" / CHECKPOINT)
    for part in ("model", "guide"):
        assert best[part].keys() == two[part].keys()
        assert all(torch.equal(best[part][k], two[part][k]) for k in best[part])
    assert not any(
        torch.equal(best["model"][k], last["model"][k]) for k in best["model"] if "weight" in k
    )


def test_patience_stops_early_and_a_resume_stays_stopped(tmp_path, scripted):
    scripted([-5.0, -4.0, -4.5, -4.6, -1.0, -1.0])
    result = _train(tmp_path / "r", epochs=6, patience=2)
    assert len(result.history) == 4 and result.steps == 4 * 3
    assert not (tmp_path / "r" / BEST).exists()  # kept only with keep_best
    again = _train(tmp_path / "r", epochs=10, patience=2, resume=True)
    assert again.steps == 12 and len(again.history) == 4


def test_selection_without_a_validation_split_is_refused(tmp_path):
    torch.manual_seed(0)
    model = build_model(X_DIM, Z_DIM, likelihood="bernoulli", hidden=[5])
    guide = build_guide("diagonal", X_DIM, Z_DIM, hidden=[5])
    for kw in ({"keep_best": True}, {"patience": 3}):
        with pytest.raises(InputError, match="data.valid_size"):
            fit(model, guide, _data(valid=0), epochs=2, progress=False, **kw)
    with pytest.raises(InputError, match="train.patience must be at least 0"):
        fit(model, guide, _data(), epochs=2, progress=False, patience=-1)


def test_evaluate_best_scores_the_selected_epoch(tmp_path, scripted):
    sets = ["train.epochs=3", "data.options.n_train=300", "train.keep_best=true"]
    recipe = config.load(REPO / "models" / "linear_gaussian.toml", sets)
    scripted([-2.0, -3.0, -4.0])
    train_recipe(recipe, tmp_path / "lg", progress=False)
    best = evaluate_run(tmp_path / "lg", [1], subset=20, weights=BEST)
    assert best["provenance"]["checkpoint"]["epoch"] == 1 and best["weights"] == BEST
    last = evaluate_run(tmp_path / "lg", [1], subset=20)
    assert last["provenance"]["checkpoint"]["epoch"] == 3
    (tmp_path / "lg" / BEST).unlink()
    with pytest.raises(RunDirError, match="train.keep_best"):
        evaluate_run(tmp_path / "lg", [1], subset=20, weights=BEST)


def test_evaluate_best_before_a_whole_epoch_says_so(tmp_path):
    sets = ["train.max_steps=2", "data.options.n_train=300", "train.keep_best=true"]
    recipe = config.load(REPO / "models" / "linear_gaussian.toml", sets)
    train_recipe(recipe, tmp_path / "lg", progress=False)
    with pytest.raises(RunDirError, match="no epoch has finished.*--resume"):
        evaluate_run(tmp_path / "lg", [1], subset=20, weights=BEST)
