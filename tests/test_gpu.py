"""``--device cuda`` end to end. Without a GPU these tests skip, except the fallback check."""

from __future__ import annotations

import json

import pytest
import torch
from _smoke import MODELS, SMOKE

from ppl_vae import LinearGaussian, build_guide, build_model, fit, load_run
from ppl_vae.bounds import evaluate, log_weights
from ppl_vae.cli import main
from ppl_vae.guides import ExactPosterior
from ppl_vae.model import linear_vae

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a CPU machine")
def test_cuda_falls_back_to_the_cpu_with_a_warning(tmp_path, capsys):
    with pytest.warns(UserWarning, match="no GPU is available"):
        code = main(
            [
                "train",
                str(MODELS / "linear_gaussian.toml"),
                "--out",
                str(tmp_path / "r"),
                "--device",
                "cuda",
                *SMOKE,
            ]
        )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 3


def _train_and_evaluate(tmp_path, capsys, device):
    out = tmp_path / "run"
    recipe = str(MODELS / "mnist_bernoulli_mlp.toml")
    assert main(["train", recipe, "--out", str(out), "--device", device, *SMOKE]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--device",
                device,
                "--k",
                "1",
                "10",
                "100",
                "--subset",
                "50",
                "--no-progress",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {r["estimator"] for r in result["estimates"]} >= {"elbo", "iwae"}
    run = load_run(out, device=device)
    assert next(run.model.parameters()).device.type == device
    assert run.data.test.device.type == device


def _fit(device):
    x = torch.bernoulli(torch.full((256, 784), 0.2))
    model = build_model(784, 8, likelihood="bernoulli", hidden=[64])
    guide = build_guide("diagonal", 784, 8, hidden=[64])
    result = fit(model, guide, x, epochs=1, batch_size=64, device=device, progress=False)
    assert result.steps == 4
    assert all(p.device.type == device for p in [*model.parameters(), *guide.parameters()])


def _exact_log_px(device):
    truth = LinearGaussian.random(x_dim=6, z_dim=2, dtype=torch.float64)
    x = truth.sample(20)
    vae, exact = linear_vae(truth).to(device), ExactPosterior(truth).to(device)
    log_w = log_weights(vae, exact, x.to(device), 50, chunk_size=20)
    assert log_w.device.type == device
    assert torch.allclose(log_w.cpu(), truth.log_prob(x).expand(50, -1), atol=1e-6)
    bounds = evaluate(vae, exact, x.to(device), ks=[1, 100], khat=False)
    assert torch.allclose(bounds.iwae[:, 1], truth.log_prob(x), atol=1e-6)


@needs_gpu
def test_train_and_evaluate_on_the_gpu(tmp_path, data_root, capsys):
    _train_and_evaluate(tmp_path, capsys, "cuda")


@needs_gpu
def test_fit_keeps_everything_on_the_gpu():
    _fit("cuda")


@needs_gpu
def test_exact_log_px_on_the_gpu():
    _exact_log_px("cuda")


def test_the_same_checks_pass_on_the_cpu(tmp_path, data_root, capsys):
    """The GPU tests' bodies, run here on the CPU so that they are known to be right."""
    _train_and_evaluate(tmp_path, capsys, "cpu")
    _fit("cpu")
    _exact_log_px("cpu")
