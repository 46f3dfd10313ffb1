"""torch.distributed (gloo, CPU): sharded evaluation equals a single process exactly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ppl_vae.bounds import read_inference_data
from ppl_vae.cli import main

MODELS = Path(__file__).resolve().parents[1] / "models"


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
        "-m",
        "ppl_vae",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "lg"
    assert (
        main(
            [
                "train",
                str(MODELS / "linear_gaussian.toml"),
                "--out",
                str(out),
                "--set",
                "train.epochs=1",
                "--set",
                "data.subset=250",
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def test_sharded_evaluation_equals_one_process(run_dir):
    args = [
        "evaluate",
        str(run_dir),
        "--k",
        "1",
        "10",
        "40",
        "--batch-size",
        "30",
        "--chunk-size",
        "16",
        "--no-progress",
    ]
    assert main(args) == 0
    single = read_inference_data(run_dir)["bounds"].load()
    torchrun(2, *args)
    sharded = read_inference_data(run_dir)["bounds"].load()
    assert sharded.sizes["datapoint"] == 250
    for name in ("iwae", "elbo", "ess", "khat"):
        assert torch.equal(
            torch.as_tensor(single[name].values), torch.as_tensor(sharded[name].values)
        ), name


WORKER = Path(__file__).with_name("_dp_worker.py")


def test_two_ranks_with_batch_b_step_like_one_process_with_batch_2b(tmp_path):
    """Every step of a 2-rank run (batch 8 each, gradients summed, per-point noise) equals the
    same step of a 1-process run with batch 16, to float64 rounding; each step after the first
    is a resume from the checkpoint, so resume is covered too."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(WORKER), str(one), "16", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(two),
        "8",
        "4",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(one / "trajectory.pt", weights_only=True)
    b = torch.load(two / "trajectory.pt", weights_only=True)
    assert len(a) == len(b) == 4
    for step, (pa, pb) in enumerate(zip(a, b, strict=True)):
        for name in pa:
            assert torch.allclose(pa[name], pb[name], atol=1e-12, rtol=0), (step, name)
    moved = max((a[-1][n] - a[0][n]).abs().max().item() for n in a[0])
    assert moved > 0.05  # the parameters really moved
