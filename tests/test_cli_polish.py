"""What a user sees from ``ppl-vae``: help, version, one-line errors that blame the right
input, the no-GPU warning once, Ctrl-C messages, and the permissions of written files."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.nn import PyroModule

import ppl_vae
from ppl_vae import build_model, fit, storage
from ppl_vae.bounds import evaluate
from ppl_vae.cli import COMMANDS, main
from ppl_vae.core.errors import RecipeError
from ppl_vae.runs import recipe as config
from ppl_vae.training.checkpoint import load_weights

MODELS = Path(__file__).resolve().parents[1] / "models"
QUICK = ["--set", "train.max_steps=2", "--set", "data.subset=100", "--set", "train.batch_size=50"]


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"ppl-vae {ppl_vae.__version__}\n"


def test_top_level_help_is_written_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "argparse" not in out and "Variational autoencoders" in out
    assert "example:" in out and "ppl-vae train models/" in out
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_help(command):
    parser = argparse.ArgumentParser()
    COMMANDS[command][0](parser)
    missing = [a.dest for a in parser._actions if not a.help]
    assert not missing, f"ppl-vae {command}: no help for {missing}"


def test_a_set_typo_is_blamed_on_the_set_not_the_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[train]\nepochs = 3\n")
    with pytest.raises(
        RecipeError,
        match=r"^--set train\.epoch=2: unknown key 'train\.epoch'\. Did you mean 'train\.epochs'\?",
    ):
        config.load(path, ["train.epoch=2"])
    with pytest.raises(RecipeError, match=r"^--set trian\.epochs=2: unknown key 'trian'\."):
        config.load(path, ["trian.epochs=2"])  # a table the override created
    with pytest.raises(RecipeError, match=r"^--set train\.epochs=abc: key 'train\.epochs' must"):
        config.load(path, ["train.epochs=abc"])  # the file's key, the override's value
    with pytest.raises(RecipeError, match=r"^--set model\.decoder=\{hiden=\[3\]\}: unknown key"):
        config.load(path, ["model.decoder={hiden=[3]}"])  # a key inside the override's value
    path.write_text("[train]\nepoch = 3\n")
    with pytest.raises(RecipeError, match=r"r\.toml: unknown key 'train\.epoch'"):
        config.load(path, ["train.lr=0.1"])  # a typo in the file stays the file's


def test_a_set_typo_through_the_cli(tmp_path, capsys):
    recipe = str(MODELS / "linear_gaussian.toml")
    code = main(["train", recipe, "--out", str(tmp_path / "r"), "--set", "train.epoch=2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "ppl-vae train: error: --set train.epoch=2: unknown key 'train.epoch'." in err
    assert "Did you mean 'train.epochs'?" in err and "linear_gaussian.toml" not in err


def test_a_missing_run_dir_is_said_to_not_exist(tmp_path, capsys):
    missing = tmp_path / "does_not_exist"
    assert main(["evaluate", str(missing)]) == 2
    assert capsys.readouterr().err == f"ppl-vae evaluate: error: {missing} does not exist; " + (
        "give a run dir written by ppl-vae train (runs/<recipe name> by default).\n"
    )
    assert main(["sample", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a run dir: it has no recipe.toml" in capsys.readouterr().err


class HandWrittenGuide(PyroModule):
    """q(z|x) = Normal(W x, exp(s)): a guide that no recipe can name."""

    def __init__(self, x_dim: int, z_dim: int):
        super().__init__()
        self.loc = torch.nn.Linear(x_dim, z_dim)
        self.log_scale = torch.nn.Parameter(torch.zeros(z_dim))

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(self.loc(x), self.log_scale.exp()).to_event(1))


def test_a_run_fit_from_python_says_how_to_evaluate_it(tmp_path, capsys):
    x = torch.bernoulli(torch.full((40, 12), 0.3), generator=torch.Generator().manual_seed(0))
    model, guide = build_model(12, 2, likelihood="bernoulli", hidden=[8]), HandWrittenGuide(12, 2)
    fit(model, guide, x, epochs=1, batch_size=20, run_dir=tmp_path, progress=False)
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} was written by ppl_vae.fit from Python, without a recipe" in err
    assert "ppl_vae.bounds.evaluate(model, guide, x)" in err
    assert f"ppl_vae.training.checkpoint.load_weights('{tmp_path}/checkpoint.pt'" in err
    # what the message says works
    model2, guide2 = build_model(12, 2, likelihood="bernoulli", hidden=[8]), HandWrittenGuide(12, 2)
    load_weights(tmp_path / "checkpoint.pt", model2, guide2)
    assert torch.equal(guide2.loc.weight, guide.loc.weight)
    estimates = evaluate(model2, guide2, x, ks=[1, 5]).estimates()
    assert {e["estimator"] for e in estimates} >= {"elbo", "iwae"}


def test_the_no_gpu_warning_is_one_clean_line(tmp_path):
    """In a real process (pytest records warnings instead of printing them), with no GPU."""
    cmd = [sys.executable, "-m", "ppl_vae", "train", str(MODELS / "linear_gaussian.toml")]
    cmd += ["--out", str(tmp_path / "r"), "--device", "cuda", *QUICK]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # the first thing shown, before the library and the data load
    assert lines[0] == "ppl-vae train: loading linear_gaussian and building the model ..."
    warned = [line for line in lines if "no GPU is available" in line]
    assert warned == [
        "ppl-vae train: warning: device 'cuda' was asked for but no GPU is available; running "
        "on the CPU."
    ]
    assert "UserWarning" not in done.stderr and "resolve_device(" not in done.stderr


def test_no_progress_prints_no_start_line(tmp_path, capsys):
    recipe = str(MODELS / "linear_gaussian.toml")
    assert main(["train", recipe, "--out", str(tmp_path / "r"), *QUICK, "--no-progress"]) == 0
    assert "loading" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "interrupt,message",
    [
        (KeyboardInterrupt(), "interrupted"),  # a second Ctrl-C: no message of its own
        (
            KeyboardInterrupt("interrupted after step 3; saved r/checkpoint.pt."),
            "interrupted after step 3; saved r/checkpoint.pt.",
        ),
    ],
)
def test_ctrl_c_prints_its_message_or_interrupted(monkeypatch, capsys, interrupt, message):
    def run(a):
        raise interrupt

    monkeypatch.setitem(COMMANDS, "train", (COMMANDS["train"][0], run, "train"))
    assert main(["train", "r.toml"]) == 130
    assert capsys.readouterr().err == f"ppl-vae train: {message}\n"


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_written_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert storage.umask() == mask
        storage.write_text(tmp_path / "a.txt", "new")
        storage.write_text(tmp_path / "a.txt", "again")  # replacing a file too
        with open(tmp_path / "plain.txt", "w") as f:  # what a picture gets
            f.write("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "a.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~mask == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_resume_of_a_folder_that_is_no_run_names_the_command_that_works(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--resume", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and f"ppl-vae train RECIPE --out {empty}" in err
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
