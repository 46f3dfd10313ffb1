"""Sharded evaluation speed-up: ``ppl-vae evaluate`` in one process against torchrun with N.

Both runs evaluate the same run dir, K and data points; the sharded result is checked to equal
the single-process one exactly. Prints JSON with the wall times (process start included) and
the speed-up.

    python benchmarks/distributed_eval.py runs/mnist_bernoulli_mlp --k 5000 --subset 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from ppl_vae.bounds import read_inference_data


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--subset", type=int, default=0, help="first N test images (0: all)")
    p.add_argument("--nproc", type=int, default=2)
    a = p.parse_args()
    args = ["-m", "ppl_vae", "evaluate", a.run, "--k", str(a.k), "--no-khat", "--no-progress"]
    if a.subset:
        args += ["--subset", str(a.subset)]
    env = dict(os.environ)
    one = _timed([sys.executable, *args], env)
    single = read_inference_data(a.run)["bounds"]["iwae"].values.copy()
    env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // a.nproc))
    many = _timed(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={a.nproc}",
            *args,
        ],
        env,
    )
    sharded = read_inference_data(a.run)["bounds"]["iwae"].values
    print(
        json.dumps(
            {
                "k": a.k,
                "n": int(single.shape[0]),
                "threads_single": torch.get_num_threads(),
                "processes": a.nproc,
                "threads_per_process": int(env["OMP_NUM_THREADS"]),
                "seconds_single": one,
                "seconds_sharded": many,
                "speedup": one / many,
                "identical": bool((single == sharded).all()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
