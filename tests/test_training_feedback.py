"""What training shows while it runs (a bar "epoch k/N", a line per epoch, where a resume picks
up), silence under --no-progress, and run dirs that stopped before their first checkpoint."""

import json
import re
from pathlib import Path

import pytest
import torch

from ppl_vae.cli import main
from ppl_vae.core.errors import RunDirError
from ppl_vae.runs import recipe as config
from ppl_vae.runs import run as run_module
from ppl_vae.runs.run import prepare_run_dir, train_recipe
from ppl_vae.storage import load_checkpoint

RECIPE = str(Path(__file__).resolve().parents[1] / "models" / "linear_gaussian.toml")
SMALL = ["--set", "train.epochs=2", "--set", "data.subset=200", "--set", "train.batch_size=50"]


def _train(out, *extra):
    return main(["train", RECIPE, "--out", str(out), *SMALL, *extra])


def _lines(err):
    """stderr as the lines a terminal keeps: the bar redraws itself after a carriage return."""
    return [part.strip() for part in re.split(r"[\r\n]", err) if part.strip()]


def _weights(out):
    state = load_checkpoint(out / "checkpoint.pt")
    return state["model"], state["guide"], state["position"]["step"]


def _assert_same_weights(a, b):
    model_a, guide_a, step_a = _weights(a)
    model_b, guide_b, step_b = _weights(b)
    assert step_a == step_b
    for ours, theirs in ((model_a, model_b), (guide_a, guide_b)):
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_progress_shows_a_line_per_epoch_and_the_epoch_of_n(tmp_path, capsys):
    assert _train(tmp_path / "run") == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 and json.loads(out)["steps"] == 8
    line = re.compile(r"epoch (\d)/2  train ELBO -[\d.]+  valid ELBO -[\d.]+  [\d.]+ s")
    assert [m[1] for m in map(line.fullmatch, _lines(err)) if m] == ["1", "2"], err
    assert "epoch 1/2:" in err and "epoch 2/2:" in err  # the bar's description


def test_no_progress_prints_the_json_line_alone(tmp_path, capsys):
    assert _train(tmp_path / "run", "--no-progress") == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(out.splitlines()) == 1 and json.loads(out)["steps"] == 8


def test_resume_says_where_it_picks_up(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--set", "train.max_steps=3", "--no-progress") == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--set", "train.max_steps=0"]) == 0
    err = capsys.readouterr().err
    assert f"resumed {out} from checkpoint.pt: epoch 1/2, batch 3/4 (step 3)" in err, err
    assert any(line.startswith("epoch 1/2  train ELBO") for line in _lines(err)), err


def test_logged_extras_appear_in_the_epoch_line(tmp_path, capsys):
    assert _train(tmp_path / "run", "--set", "objective.options.kl_warmup_epochs=2") == 0
    lines = _lines(capsys.readouterr().err)
    assert any(re.fullmatch(r"epoch 1/2  .*  kl_weight [\d.]+  [\d.]+ s", x) for x in lines)


def test_resume_of_a_run_dir_with_only_its_recipe_trains_it_from_the_start(tmp_path, capsys):
    fresh, restarted = tmp_path / "fresh", tmp_path / "restarted"
    assert _train(fresh, "--no-progress") == 0
    restarted.mkdir()  # what a double Ctrl-C before the first checkpoint leaves
    config.save(config.load(fresh / "recipe.toml"), restarted / "recipe.toml")
    capsys.readouterr()
    assert main(["train", "--resume", str(restarted)]) == 0
    assert "has no checkpoint.pt yet: training it from the start" in capsys.readouterr().err
    _assert_same_weights(fresh, restarted)


def test_ctrl_c_before_training_leaves_a_run_that_resume_restarts(tmp_path, capsys, monkeypatch):
    fresh, out = tmp_path / "fresh", tmp_path / "run"
    assert _train(fresh, "--no-progress") == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(run_module, "build_data", interrupted)  # Ctrl-C while the data load
        assert _train(out) == 130
    assert f"start it again with: ppl-vae train --resume {out}" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["recipe.toml"]
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    _assert_same_weights(fresh, out)
    assert _train(out, "--no-progress") == 2  # now it holds a run: refused, as before


def test_a_run_dir_with_only_its_recipe_can_be_trained_into_again(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "recipe.toml").write_text("")  # e.g. its data were missing the first time
    assert prepare_run_dir(out) is False


def test_resume_of_a_folder_without_a_run_names_the_command_that_works(tmp_path):
    with pytest.raises(RunDirError, match=r"does not exist; start the run with: ppl-vae train"):
        prepare_run_dir(tmp_path / "nothing", resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("")
    with pytest.raises(RunDirError, match=r"no recipe\.toml.*ppl-vae train RECIPE --out .* --ov"):
        prepare_run_dir(tmp_path / "other", resume=True)


def test_progress_off_prints_nothing_from_the_library(tmp_path, capsys):
    recipe = config.load(RECIPE, ["train.epochs=2", "data.subset=200"])
    train_recipe(recipe, tmp_path / "run", progress=False)
    train_recipe(recipe, tmp_path / "run", resume=True, progress=False)
    assert capsys.readouterr() == ("", "")
