"""``ppl-vae evaluate`` on a tiny trained run: table, eval.json and the arviz netCDF."""

import json
from pathlib import Path

import pytest

from ppl_vae.bounds import read_inference_data
from ppl_vae.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lg"
    assert (
        main(
            [
                "train",
                str(MODELS / "linear_gaussian.toml"),
                "--out",
                str(out),
                "--set",
                "train.epochs=2",
                "--set",
                "data.subset=300",
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def test_evaluate_writes_json_and_netcdf(run_dir, capsys):
    args = ["--subset", "120", "--batch-size", "50", "--chunk-size", "20", "--no-progress"]
    code = main(["evaluate", str(run_dir), "--k", "1", "10", "50", "--json", *args])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "eval.json").read_text())
    assert printed == saved and saved["split"] == "test"
    rows = {(r["estimator"], r["k"]): r for r in saved["estimates"]}
    assert {
        ("elbo", 50),
        ("iwae", 1),
        ("iwae", 10),
        ("iwae", 50),
        ("ess", 50),
        ("khat_above_0.7", 50),
    } <= set(rows)
    assert all(
        r["n"] == 120 and r["stderr"] > 0
        for r in saved["estimates"]
        if r["estimator"] != "khat_above_0.7"
    )
    assert rows["iwae", 50]["mean"] >= rows["elbo", 50]["mean"]
    idata = read_inference_data(run_dir)
    ds = idata["bounds"]
    assert ds["iwae"].dims == ("datapoint", "k") and ds["iwae"].shape == (120, 3)
    assert list(ds["k"].values) == [1, 10, 50]
    assert ds["iwae"].sel(k=50).mean().item() == pytest.approx(rows["iwae", 50]["mean"])
    assert not list(run_dir.glob(".*.tmp"))


def test_evaluate_table_and_errors(run_dir, capsys):
    assert (
        main(
            [
                "evaluate",
                str(run_dir),
                "--k",
                "1",
                "5",
                "--no-khat",
                "--subset",
                "30",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["estimator", "K", "mean", "stderr", "n"]
    # k-hat asked for with K < 21 is refused; not asked for, it is skipped (tests/test_api.py)
    assert main(["evaluate", str(run_dir), "--k", "1", "5", "--subset", "30", "--khat"]) == 2
    assert "--no-khat" in capsys.readouterr().err
    assert main(["evaluate", str(run_dir), "--k", "0", "--no-khat"]) == 2
    assert main(["evaluate", str(run_dir.parent / "nope")]) == 2
