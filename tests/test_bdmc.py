"""BDMC on linear-Gaussian models (float64): simulated data, lower <= log p(x) <= upper within
the Monte Carlo error, the gap shrinking with the number of steps, bad z refused; the CLI
writes bdmc.json and its picture, also with the AIS estimator in eval.json."""

from __future__ import annotations

import json

import pytest
import torch
from _smoke import MODELS
from test_ais import CASES, Z

from ppl_vae.bounds.bdmc import bdmc
from ppl_vae.bounds.simulate import simulate
from ppl_vae.cli import main
from ppl_vae.core.errors import InputError


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_simulate_draws_from_the_joint():
    truth, model, _, _ = CASES["one_site"]()
    x, z = simulate(model, 4000)
    assert x.shape == (4000, truth.x_dim) and list(z) == ["z"] and z["z"].shape == (4000, 2)
    cov = truth.marginal().covariance_matrix
    assert ((x.mean(0) - truth.b).abs() < Z * (cov.diagonal() / 4000).sqrt()).all()
    resid = x - z["z"] @ truth.W.T - truth.b  # the noise: N(0, s^2) given z
    assert (resid.std(0) - truth.s).abs().max() < Z * truth.s / (2 * 4000) ** 0.5
    _, model2, _, _ = CASES["two_sites"]()
    x2, z2 = simulate(model2, 3, like=x[:1, :5])
    assert x2.shape == (3, 5) and {k: v.shape for k, v in z2.items()} == {
        "z1": (3, 2),
        "z2": (3, 1),
    }
    with pytest.raises(InputError, match="n must be"):
        simulate(model, 0)


@pytest.mark.parametrize("case", CASES)
def test_sandwich_holds_and_shrinks_with_steps(case):
    truth, model, _, poor = CASES[case]()
    x, z = simulate(model, 150, like=truth.b[None])
    log_px = truth.log_prob(x)
    gaps = []
    for steps in (2, 30):
        r = bdmc(model, poor, x, z, num_steps=steps, num_chains=4, num_leapfrog=3)
        for d in (r.lower - log_px, log_px - r.upper):  # lower below, upper above log p(x)
            assert d.mean() < Z * d.std() / len(d) ** 0.5, (steps, d.mean())
        gaps.append(r.gap)
    diff = gaps[0] - gaps[1]
    assert diff.mean() > Z * diff.std() / len(diff) ** 0.5, (gaps[0].mean(), gaps[1].mean())
    assert (r.forward.acceptance > 0.3).all() and (r.reverse.acceptance > 0.3).all()


def test_bad_latents_are_refused():
    truth, model, exact, _ = CASES["two_sites"]()
    x, z = simulate(model, 3, like=truth.b[None])
    with pytest.raises(InputError, match=r"no values for latent site\(s\) \['z2'\]"):
        bdmc(model, exact, x, {"z1": z["z1"]}, num_steps=2)
    with pytest.raises(InputError, match="expected"):
        bdmc(model, exact, x, {"z1": z["z1"], "z2": z["z2"][:, None]}, num_steps=2)
    with pytest.raises(InputError, match="dict"):
        bdmc(model, exact, x, z["z1"], num_steps=2)
    with pytest.raises(InputError, match="num_chains"):
        bdmc(model, exact, x, z, num_steps=2, num_chains=0)


@pytest.mark.slow  # trains a run: about 10 s on two cores
def test_cli_bdmc_and_evaluate_with_ais(tmp_path, capsys):
    run = tmp_path / "lg"
    train = ["train", str(MODELS / "linear_gaussian.toml"), "--out", str(run)]
    assert (
        main([*train, "--set", "train.epochs=1", "--set", "data.subset=100", "--no-progress"]) == 0
    )
    args = [
        "--n",
        "6",
        "--steps",
        "2",
        "4",
        "--chains",
        "3",
        "--leapfrog",
        "2",
        "--batch-size",
        "4",
    ]
    assert main(["bdmc", str(run), *args, "--no-progress"]) == 0
    out = json.loads((run / "bdmc.json").read_text())
    assert [r["steps"] for r in out["results"]] == [2, 4]
    for r in out["results"]:
        assert len(r["lower"]) == 6 and r["gap_mean"] == pytest.approx(
            sum(u - lo for u, lo in zip(r["upper"], r["lower"], strict=True)) / 6
        )
    assert (run / "bdmc.png").stat().st_size > 1000
    assert "| 4 |" in capsys.readouterr().out
    ev = ["evaluate", str(run), "--k", "1", "5", "--subset", "8", "--no-progress", "--json"]
    assert main([*ev, "--ais-steps", "3", "--ais-chains", "2"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["options"] == {"ais": {"num_steps": 3, "num_chains": 2}}
    ais_row = next(r for r in result["estimates"] if r["estimator"] == "ais")
    elbo_row = next(r for r in result["estimates"] if r["estimator"] == "elbo")
    assert ais_row["n"] == 8 and ais_row["mean"] > elbo_row["mean"] - 5 * elbo_row["stderr"]
    assert (ais_row["steps"], ais_row["chains"]) == (3, 2) and "steps" not in elbo_row
    capsys.readouterr()
    assert main([*ev[:-1], "--ais-steps", "3", "--ais-chains", "2"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ais ")]
    assert line.split()[1] == "-" and line.endswith("(3 steps x 2 chains)")
    assert main(["bdmc", str(run), "--steps", "0", "--no-progress"]) == 2
    assert "steps" in capsys.readouterr().err
