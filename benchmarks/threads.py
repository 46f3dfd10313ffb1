"""SVI step time with 1 and 2 torch threads, interleaved in one process, on the small batches
where the thread count matters: the seed VAE (``models/mnist_bernoulli_mlp.toml``) at batch 20
and 128, and ``evaluate`` at K = 1000 on 100 test images. Prints JSON with milliseconds per step
(min and median over the repeats) for each thread count, the ratio 2 threads / 1 thread, and
the machine's load average while it ran, since the answer depends on what else runs there.

    python benchmarks/threads.py                       # about a minute
    python benchmarks/threads.py --steps 5 --repeats 1 # a smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from objective_step_time import step_ms

import ppl_vae as pv
from ppl_vae.runs import recipe as config
from ppl_vae.runs.build import build_data, build_parts

RECIPE = Path(__file__).resolve().parents[1] / "models" / "mnist_bernoulli_mlp.toml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-dir")
    a = p.parse_args(argv)
    recipe = config.load(RECIPE, [f"data.subset={128 * (a.steps + 1)}"])
    data = build_data(recipe, a.data_dir)
    x = data.train_epoch(torch.Generator().manual_seed(0))
    model, guide = build_parts(recipe, data)
    times: dict[str, list[float]] = {}
    load = [os.getloadavg()[0]]
    for _ in range(a.repeats):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for batch in (20, 128):
                times.setdefault(f"batch{batch}_t{threads}", []).append(
                    step_ms("elbo", 1, recipe, data, x, a.steps, batch)
                )
            t0 = time.perf_counter()
            pv.evaluate(model, guide, data.test[:100], [1000], khat=False)
            times.setdefault(f"eval_t{threads}", []).append(time.perf_counter() - t0)
        load.append(os.getloadavg()[0])
    out = {k: {"min": min(v), "median": statistics.median(v)} for k, v in times.items()}
    for what in ("batch20", "batch128", "eval"):
        out[f"{what}_2_over_1"] = out[f"{what}_t2"]["min"] / out[f"{what}_t1"]["min"]
    meta = {"steps": a.steps, "repeats": a.repeats, "cores": os.cpu_count()}
    meta |= {"load_average": load, "units": "ms per SVI step; seconds per evaluation"}
    print(json.dumps({**meta, "results": out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
