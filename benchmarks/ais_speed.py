"""AIS speed and memory: ``ppl_vae.bounds.ais`` vs a hand-written PyTorch HMC/AIS loop.

Both anneal the same chains over the same networks (the run's decoder and encoder, or random
ones of the default MNIST shape), the same data, schedule, number of chains, leapfrog steps
and one fixed step size (so that the pilot run, which only the toolkit has, is not timed), in
one process, alternating, best of ``--repeats``. Prints JSON: seconds of each, the speed ratio
(goal >= 0.8), the mean log p(x) of each (they must agree within their Monte Carlo error), and
the peak memory of the toolkit's AIS at ``--steps`` and ten times that, each in a fresh
process, above that process's baseline (flat in T).

    python benchmarks/ais_speed.py --run runs/mnist_bernoulli_mlp   # about a minute
    python benchmarks/ais_speed.py --n 20 --steps 5 --repeats 1      # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared helpers: iwae_eval, plain_ais

from plain_ais import bernoulli_vae, plain_ais  # noqa: E402

import ppl_vae as pv  # noqa: E402
from ppl_vae.bounds.ais import ais  # noqa: E402


def plain_loop(model, guide, x, num_steps, num_chains, num_leapfrog, step):
    """The reference: forward AIS from q with HMC, written out in PyTorch for this VAE."""
    with torch.no_grad():
        loc, scale = guide.loc_scale(x)
    log_joint = bernoulli_vae(model, x)
    return plain_ais(log_joint, loc, scale, num_steps, num_chains, num_leapfrog, step)[0]


def peak_in_fresh_process(a: argparse.Namespace, steps: int) -> float:
    """The peak rise of resident memory (MiB) while AIS runs ``steps`` steps (leapfrog 1), in
    a fresh process, so that no earlier run's freed memory is reused."""
    cmd = [sys.executable, __file__, "--peak", "--n", str(a.n), "--steps", str(steps)]
    cmd += ["--chains", str(a.chains), "--step-size", str(a.step_size)]
    cmd += ["--run", a.run] if a.run else []
    cmd += ["--data-dir", a.data_dir] if a.data_dir else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return round(float(done.stdout.strip().splitlines()[-1]), 1)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run dir (default: random MNIST-shaped networks)")
    p.add_argument("--n", type=int, default=100, help="MNIST test images")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--leapfrog", type=int, default=10)
    p.add_argument("--step-size", type=float, default=0.05)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-dir")
    p.add_argument("--peak", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run:
        run = pv.load_run(a.run, a.data_dir)
        model, guide, x = run.model, run.guide, run.data.split("test")[: a.n]
    else:
        torch.manual_seed(0)
        model, guide = pv.build_model(784, 20), pv.build_guide("diagonal", 784, 20)
        x = torch.bernoulli(torch.full((a.n, 784), 0.2))
    if a.peak:  # a child of peak_in_fresh_process: print AIS's peak resident rise (MiB)
        from iwae_eval import peak_memory  # the benchmarks' RSS sampler (every 5 ms)

        m = {}
        with peak_memory(m):
            ais(model, guide, x, a.steps, a.chains, num_leapfrog=1, step_size=a.step_size)
        print(m["mib"])
        return
    args = dict(num_steps=a.steps, num_chains=a.chains)
    toolkit, plain = [], []
    for r in range(a.repeats):
        torch.manual_seed(r)
        toolkit.append(
            timed(
                lambda: (
                    ais(
                        model, guide, x, **args, num_leapfrog=a.leapfrog, step_size=a.step_size
                    ).log_p
                )
            )
        )
        torch.manual_seed(r)
        plain.append(
            timed(lambda: plain_loop(model, guide, x, a.steps, a.chains, a.leapfrog, a.step_size))
        )
    t_tool, t_plain = min(t for t, _ in toolkit), min(t for t, _ in plain)
    diff = torch.stack([o for _, o in toolkit]).mean(0) - torch.stack([o for _, o in plain]).mean(0)
    memory = {str(t): peak_in_fresh_process(a, t) for t in (a.steps, 10 * a.steps)}
    print(
        json.dumps(
            {
                "n": a.n,
                "steps": a.steps,
                "chains": a.chains,
                "leapfrog": a.leapfrog,
                "threads": torch.get_num_threads(),
                "ppl_vae_seconds": round(t_tool, 3),
                "plain_seconds": round(t_plain, 3),
                "speed_vs_plain": round(t_plain / t_tool, 3),
                "mean_log_p_difference": diff.mean().item(),
                "mean_log_p_difference_stderr": (diff.std() / len(diff) ** 0.5).item(),
                "peak_memory_by_steps (leapfrog 1, fresh processes)": memory,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
