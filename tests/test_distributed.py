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
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           "--standalone", "-m", "ppl_vae", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "lg"
    assert main(["train", str(MODELS / "linear_gaussian.toml"), "--out", str(out),
                 "--set", "train.epochs=1", "--set", "data.subset=250",
                 "--no-progress"]) == 0  # fmt: skip
    return out


def test_sharded_evaluation_equals_one_process(run_dir):
    args = ["evaluate", str(run_dir), "--k", "1", "10", "40", "--batch-size", "30",
            "--chunk-size", "16", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    single = read_inference_data(run_dir)["bounds"].load()
    torchrun(2, *args)
    sharded = read_inference_data(run_dir)["bounds"].load()
    assert sharded.sizes["datapoint"] == 250
    for name in ("iwae", "elbo", "ess", "khat"):
        assert torch.equal(torch.as_tensor(single[name].values),
                           torch.as_tensor(sharded[name].values)), name  # fmt: skip
