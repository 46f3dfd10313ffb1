"""Every recipe in models/ trains for a few steps through the CLI, on a small subset."""

import csv
import json
import subprocess
import sys

import pytest
import torch
from _smoke import MODELS, SMOKE

from ppl_vae import load_run
from ppl_vae.cli import main
from ppl_vae.runs import recipe as config


@pytest.mark.parametrize("recipe", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_recipe_trains_through_the_cli(recipe, tmp_path, data_root, capsys):
    out = tmp_path / "run"
    extra = []
    if config.load(recipe).model.name == "m1m2":  # M2 on the codes of a trained M1 run
        m1 = tmp_path / "m1"
        assert main(["train", str(MODELS / "mnist_m1.toml"), "--out", str(m1), *SMOKE]) == 0
        capsys.readouterr()
        extra = ["--set", f'model.options.m1_run="{m1}"']
    assert main(["train", str(recipe), "--out", str(out), *SMOKE, *extra]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["test_elbo"] < 0
    assert config.load(out / "recipe.toml").data.subset == 200
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {"epoch", "step", "train_elbo", "valid_elbo", "seconds"} <= set(rows[0])
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["position"]["step"] == 3
    run = load_run(out)
    assert run.model.x_dim == run.data.x_dim


def test_existing_run_dir_is_refused(tmp_path, capsys):
    recipe = str(MODELS / "linear_gaussian.toml")
    out = str(tmp_path / "run")
    assert main(["train", recipe, "--out", out, *SMOKE]) == 0
    assert main(["train", recipe, "--out", out, *SMOKE]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", recipe, "--out", out, "--overwrite", *SMOKE]) == 0


def test_resume_continues_the_run(tmp_path, capsys):
    recipe = str(MODELS / "linear_gaussian.toml")
    out = tmp_path / "run"
    args = ["--set", "data.subset=200", "--set", "train.batch_size=50", "--no-progress"]
    assert main(["train", recipe, "--out", str(out), "--set", "train.epochs=2", *args]) == 0
    assert main(["train", "--resume", str(out), "--set", "train.epochs=3", *args[4:]]) == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["step"]) for r in rows] == [4, 8, 12]


def test_bad_recipe_value_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "train",
            str(MODELS / "linear_gaussian.toml"),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "train.epochs=abc",
        ]
    )
    assert code == 2
    assert "train.epochs" in capsys.readouterr().err


def test_console_script_runs_as_a_module(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ppl_vae",
        "train",
        str(MODELS / "linear_gaussian.toml"),
        "--out",
        str(out),
        *SMOKE,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "checkpoint.pt").is_file()


def test_the_docs_command_table_lists_every_command_and_option():
    """docs/recipes.md's table names each ``ppl-vae`` command with every option it takes."""
    import argparse
    import re

    from ppl_vae.cli import COMMANDS

    table = (MODELS.parent / "docs" / "recipes.md").read_text()
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `ppl-vae (\w+) .*$", table, re.M)}
    assert set(rows) == set(COMMANDS)
    for name, (add_args, _, _) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        add_args(parser)
        # one spelling of each option is enough (bdmc's --n is also --points)
        spellings = [a.option_strings for a in parser._actions if a.option_strings]
        spellings = [f for f in spellings if "--help" not in f]
        missing = sorted(f[-1] for f in spellings if not any(o in rows[name] for o in f))
        assert not missing, f"docs/recipes.md: ppl-vae {name} lacks {missing}"
