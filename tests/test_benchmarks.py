"""The speed suite runs from its one command (small sizes here; figures come from a full run).

The run itself takes one to two minutes on two cores, so it is behind the ``slow`` marker
(``python -m pytest -m slow``); the default suite imports every benchmark script, which is what
a change to the library most often breaks.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.stem)
def test_every_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # they import their shared helper module
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)  # defines its functions; main() runs only as __main__


@pytest.mark.slow
def test_run_all_quick_writes_every_report(tmp_path, data_root):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sys.path.insert(0, str(BENCHMARKS))
    from run_all import SUITE

    assert {p.stem for p in tmp_path.glob("*.json")} == {*SUITE, "summary"}
    figures = json.loads((tmp_path / "summary.json").read_text())
    assert figures == json.loads(done.stdout)
    assert 0 < figures["iwae_fraction_of_matmul_peak"] < 1.5
    assert set(figures["iwae_peak_mib_by_k"]) == {"100", "200", "1000"}
    for batch in (128, 1024):
        assert figures[f"svi_slowdown_vs_plain_loop_batch{batch}"] > 0
    ev = json.loads((tmp_path / "iwae_eval.json").read_text())
    assert ev["ppl_vae"]["iwae"] < 0 and ev["plain_loop"]["iwae"] < 0


def test_ais_accuracy_sweeps_the_grid_and_stays_below_the_exact_log_p(capsys):
    sys.path.insert(0, str(BENCHMARKS))
    import ais_accuracy

    args = ["--n", "12", "--steps", "15", "--chains", "4", "--leapfrog", "2", "4"]
    plain = ["--plain-leapfrog", "3", "--plain-step", "0.1", "0.2"]
    assert ais_accuracy.main([*args, "--accept", "0.65", "--repeats", "1", *plain]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["leapfrog"], r["schedule"]) for r in out["rows"]] == [
        ("ppl_vae", 2, "sigmoid"),
        ("ppl_vae", 2, "linear"),
        ("ppl_vae", 4, "sigmoid"),
        ("ppl_vae", 4, "linear"),
        ("plain", 3, "sigmoid"),
        ("plain", 3, "sigmoid"),
    ]
    for r in out["rows"]:  # AIS is a stochastic lower bound: the gap is >= 0 in expectation
        assert r["gap"] > -5 * r["gap_se"]
    assert out["ppl_vae_time_vs_plain_at_equal_variance"] > 0


def test_plain_ais_is_exact_when_q_is_the_posterior():
    """With q the exact posterior, every incremental weight is (b_k - b_k-1) log p(x), whatever
    the HMC moves do: each log weight is log p(x). The posterior is diagonal (W's columns are
    orthonormal), as the plain AIS's q is."""
    import torch

    sys.path.insert(0, str(BENCHMARKS))
    from plain_ais import linear_gaussian, plain_ais

    from ppl_vae import LinearGaussian

    W = torch.eye(6, 3, dtype=torch.float64) * 1.5
    truth = LinearGaussian(W, torch.linspace(-1, 1, 6, dtype=torch.float64), 0.7)
    x = truth.sample(4, torch.Generator().manual_seed(0))
    post = truth.posterior(x)
    scale = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    torch.manual_seed(0)
    log_p, log_w = plain_ais(linear_gaussian(truth, x), post.loc, scale, 10, 3, 2, 0.3)
    exact = truth.log_prob(x)
    assert torch.allclose(log_w, exact.expand_as(log_w), atol=1e-9, rtol=0)
    assert torch.allclose(log_p, exact, atol=1e-9, rtol=0)


def test_the_plain_m2_losses_are_ours_in_expectation():
    """m2_speed's plain PyTorch M2 step computes SemiSupervisedELBO's loss: the means of 200
    draws of each agree within 5 standard errors, unlabelled (y summed) and labelled."""
    import torch

    sys.path.insert(0, str(BENCHMARKS))
    import m2_speed

    from ppl_vae.objectives.semi_supervised import SemiSupervisedELBO

    model, guide = m2_speed.m2_parts()
    plain = m2_speed.plain_losses(model, guide)
    ours = SemiSupervisedELBO(alpha=m2_speed.ALPHA)
    x = torch.bernoulli(torch.full((6, 784), 0.2), generator=torch.Generator().manual_seed(0))
    y = torch.arange(6)
    for kind, cond in (("unlabelled", torch.full_like(y, -1)), ("labelled", y)):
        a = [ours.differentiable_loss(model, guide, x, cond).item() for _ in range(200)]
        b = [plain[kind](x, y).item() for _ in range(200)]
        a, b = torch.tensor(a), torch.tensor(b)
        se = ((a.var() + b.var()) / 200).sqrt()
        assert abs(a.mean() - b.mean()) < 5 * se, kind
